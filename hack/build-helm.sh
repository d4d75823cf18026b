#!/usr/bin/env bash
# Builds helm (HELM_VERSION from hack/versions.env) from the Go module proxy
# into a version-stamped cache outside the repo (~/.cache/atoll/bin), the same
# way hack/build-control-plane.sh builds the control plane: a tiny wrapper
# module requires helm.sh/helm/v3 at the pinned version and `go build -mod=mod`
# resolves everything else from the proxy. A warm cache makes this a no-op.
# HELM_BIN, when set and executable, wins over everything.
# Prints the path of the helm binary as its last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

step() { echo "[helm] $(date +%H:%M:%S) $*" >&2; }

if [[ -n "${HELM_BIN:-}" ]]; then
  if [[ -x "$HELM_BIN" ]]; then step "using HELM_BIN=$HELM_BIN"; echo "$HELM_BIN"; exit 0; fi
  echo "[helm] HELM_BIN=$HELM_BIN is not executable" >&2
  exit 1
fi

cache=${ATOLL_CACHE_DIR:-$HOME/.cache/atoll}
bin_dir="$cache/bin/helm-v$HELM_VERSION"
helm="$bin_dir/helm"
if [[ -x "$helm" ]]; then step "helm v$HELM_VERSION cached in $bin_dir"; echo "$helm"; exit 0; fi

mod="$cache/build/helm-v$HELM_VERSION"
mkdir -p "$bin_dir" "$mod"
# One build at a time; a concurrent run may have finished it while we waited.
exec 9>"$cache/.build-helm.lock"
flock 9
if [[ -x "$helm" ]]; then step "helm v$HELM_VERSION cached in $bin_dir"; echo "$helm"; exit 0; fi
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
printf 'module atoll.local/build-helm\n\ngo 1.26\n\nrequire helm.sh/helm/v3 v%s\n' "$HELM_VERSION" > "$mod/go.mod"
pkg="helm.sh/helm/v3/internal/version"
ldflags="-s -w -X $pkg.version=v$HELM_VERSION -X $pkg.gitTreeState=clean"
step "building helm v$HELM_VERSION from the Go module proxy (a cold build takes a few minutes on 2 cores)"
(cd "$mod" && go build -v -ldflags "$ldflags" -o "$helm.tmp" helm.sh/helm/v3/cmd/helm 2>&1 \
  | awk '{n++; if (n % 100 == 0) printf "[helm]   ... %d packages compiled\n", n; fflush()}' >&2)
[[ -x "$helm.tmp" ]] || { echo "[helm] build of helm v$HELM_VERSION failed" >&2; exit 1; }
mv "$helm.tmp" "$helm"
step "built $helm ($("$helm" version --short 2>/dev/null || echo unknown))"
echo "$helm"
