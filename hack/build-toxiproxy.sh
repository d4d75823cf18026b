#!/usr/bin/env bash
# Builds toxiproxy-server (TOXIPROXY_VERSION from hack/versions.env) from the
# Go module proxy into a version-stamped cache outside the repo
# (~/.cache/atoll/bin/toxiproxy-v<ver>/), the same way hack/build-helm.sh builds
# helm: a tiny wrapper module requires github.com/Shopify/toxiproxy/v2 at the
# pinned version and `go build -mod=mod` resolves the rest. The chaos suite
# (test/chaos.test.ts) puts it between the operator and the API server / KMS.
# A warm cache makes this a no-op. TOXIPROXY_BIN, when set and executable,
# wins over everything. Prints the binary's path as its last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

step() { echo "[toxiproxy] $(date +%H:%M:%S) $*" >&2; }

if [[ -n "${TOXIPROXY_BIN:-}" ]]; then
  if [[ -x "$TOXIPROXY_BIN" ]]; then step "using TOXIPROXY_BIN=$TOXIPROXY_BIN"; echo "$TOXIPROXY_BIN"; exit 0; fi
  echo "[toxiproxy] TOXIPROXY_BIN=$TOXIPROXY_BIN is not executable" >&2
  exit 1
fi

cache=${ATOLL_CACHE_DIR:-$HOME/.cache/atoll}
bin_dir="$cache/bin/toxiproxy-v$TOXIPROXY_VERSION"
server="$bin_dir/toxiproxy-server"
if [[ -x "$server" ]]; then step "toxiproxy v$TOXIPROXY_VERSION cached in $bin_dir"; echo "$server"; exit 0; fi

mod="$cache/build/toxiproxy-v$TOXIPROXY_VERSION"
mkdir -p "$bin_dir" "$mod"
# One build at a time; a concurrent run may have finished it while we waited.
exec 9>"$cache/.build-toxiproxy.lock"
flock 9
if [[ -x "$server" ]]; then step "toxiproxy v$TOXIPROXY_VERSION cached in $bin_dir"; echo "$server"; exit 0; fi
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
printf 'module atoll.local/build-toxiproxy\n\ngo 1.26\n\nrequire github.com/Shopify/toxiproxy/v2 v%s\n' "$TOXIPROXY_VERSION" > "$mod/go.mod"
ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=v$TOXIPROXY_VERSION"
step "building toxiproxy-server v$TOXIPROXY_VERSION from the Go module proxy (a cold build takes a minute or two on 2 cores)"
(cd "$mod" && go build -v -ldflags "$ldflags" -o "$server.tmp" github.com/Shopify/toxiproxy/v2/cmd/server 2>&1 \
  | awk '{n++; if (n % 50 == 0) printf "[toxiproxy]   ... %d packages compiled\n", n; fflush()}' >&2)
[[ -x "$server.tmp" ]] || { echo "[toxiproxy] build of toxiproxy-server v$TOXIPROXY_VERSION failed" >&2; exit 1; }
mv "$server.tmp" "$server"
step "built $server ($("$server" -version 2>/dev/null || echo unknown))"
echo "$server"
