#!/usr/bin/env bash
# Builds the HashiCorp Vault server (VAULT_VERSION from hack/versions.env) from
# the Go module proxy into a version-stamped cache outside the repo
# (~/.cache/atoll/bin/vault-v<version>/vault), for the vault-transit KMS
# provider's tests and `atoll dev --kms vault-transit`.
#
# github.com/hashicorp/vault's go.mod points its api, sdk and api/auth/*
# submodules at ./api, ./sdk, ... via replace directives. Those directories are
# separate modules, absent from the vault module's zip, and a dependency's
# replace directives are ignored anyway; so, as hack/build-control-plane.sh does
# for Kubernetes' staging modules, we build from a small wrapper module that
# requires each submodule at the published version vault's go.mod names, and
# mirrors vault's non-local replace directives (which Go applies only in the
# main module). A warm cache makes this a no-op. VAULT_BINARY, when set and
# executable, wins over everything. Prints the binary's path as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

step() { echo "[vault] $(date +%H:%M:%S) $*" >&2; }

if [[ -n "${VAULT_BINARY:-}" ]]; then
  if [[ -x "$VAULT_BINARY" ]]; then step "using VAULT_BINARY=$VAULT_BINARY"; echo "$VAULT_BINARY"; exit 0; fi
  echo "[vault] VAULT_BINARY=$VAULT_BINARY is not executable" >&2
  exit 1
fi

cache=${ATOLL_CACHE_DIR:-$HOME/.cache/atoll}
bin_dir="$cache/bin/vault-v$VAULT_VERSION"
vault="$bin_dir/vault"
if [[ -x "$vault" ]]; then step "vault v$VAULT_VERSION cached in $bin_dir"; echo "$vault"; exit 0; fi

mod="$cache/build/vault-v$VAULT_VERSION"
mkdir -p "$bin_dir" "$mod"
# One build at a time; a concurrent run may have finished it while we waited.
exec 9>"$cache/.build-vault.lock"
flock 9
if [[ -x "$vault" ]]; then step "vault v$VAULT_VERSION cached in $bin_dir"; echo "$vault"; exit 0; fi
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

# The published version standing in for a submodule vault builds from its own
# tree: the newer of the version vault's go.mod requires and the newest one
# published before this vault release. The second matters because some
# requires are placeholders (api/auth/approle v0.1.0, from 2021) whose old
# module graphs drag in a pre-split envoyproxy/go-control-plane and make
# grpc's imports ambiguous. Deterministic for a pinned VAULT_VERSION.
version_time() { (cd "$mod" && go list -m -json "$1@$2" | sed -n 's/.*"Time": "\(.*\)".*/\1/p'); }
submodule_version() {
  local m=$1 required best released
  required=$(grep -E "^\s+$m v" "$gomod" | awk '{print $2}' | head -1)
  [[ -n "$required" ]] || { echo "[vault] vault's go.mod replaces $m but requires no version of it" >&2; exit 1; }
  best=$required
  for v in $(cd "$mod" && go list -m -versions "$m" | cut -d' ' -f2- | tr ' ' '\n' | sort -rV); do
    released=$(version_time "$m" "$v")
    if [[ -n "$released" && "$released" < "$vault_time" ]]; then best=$v; break; fi
  done
  printf '%s\n%s\n' "$required" "$best" | sort -V | tail -1
}

step "reading github.com/hashicorp/vault@v$VAULT_VERSION go.mod"
printf 'module atoll.local/build-vault\n\ngo 1.25\n' > "$mod/go.mod"
gomod=$(cd "$mod" && go mod download -json "github.com/hashicorp/vault@v$VAULT_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f "$gomod" ]] || { echo "[vault] could not download github.com/hashicorp/vault@v$VAULT_VERSION from the Go module proxy" >&2; exit 1; }
go_line=$(grep -E '^go [0-9]' "$gomod" | head -1)
vault_time=$(version_time github.com/hashicorp/vault "v$VAULT_VERSION")
# Local replaces ("github.com/hashicorp/vault/x => ./x"): the modules they name.
mapfile -t local_mods < <(grep -E '^replace github\.com/hashicorp/vault/[^ ]+ => \./' "$gomod" | awk '{print $2}')
pinned=()
for m in "${local_mods[@]}"; do pinned+=("$m $(submodule_version "$m")"); done
# Written in one go after every `go list` above, which read the module in $mod.
{
  echo "module atoll.local/build-vault"
  echo
  echo "$go_line"
  echo
  echo "require ("
  echo "	github.com/hashicorp/vault v$VAULT_VERSION"
  printf '\t%s\n' "${pinned[@]}"
  echo ")"
  echo
  # Non-local replaces are kept as they are: Go honours them only in the main module.
  grep -E '^replace ' "$gomod" | grep -v ' => \./' || true
} > "$mod/go.mod.new"
mv "$mod/go.mod.new" "$mod/go.mod"
step "wrapper module: ${#local_mods[@]} submodules required at published versions, $(grep -c '^replace ' "$mod/go.mod" || true) replace directives mirrored"

pkg="github.com/hashicorp/vault/version"
ldflags="-s -w -X $pkg.GitCommit=v$VAULT_VERSION -X $pkg.BuildDate=1970-01-01T00:00:00Z"
step "building vault v$VAULT_VERSION from the Go module proxy (a cold build takes a long while on 2 cores)"
started=$(date +%s)
(cd "$mod" && go build -v -ldflags "$ldflags" -o "$vault.tmp" github.com/hashicorp/vault 2>&1 \
  | awk '{n++; if (n % 200 == 0) printf "[vault]   ... %d packages compiled\n", n; if ($0 ~ /^(#|.*\.go:[0-9]+)/) print "[vault] " $0; fflush()}' >&2)
[[ -x "$vault.tmp" ]] || { echo "[vault] build of vault v$VAULT_VERSION failed" >&2; exit 1; }
mv "$vault.tmp" "$vault"
step "built $vault in $(( $(date +%s) - started ))s, $(du -h "$vault" | cut -f1) ($("$vault" version 2>/dev/null || echo unknown))"
echo "$vault"
