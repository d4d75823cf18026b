#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module
# proxy into a version-stamped cache outside the repo (~/.cache/atoll/bin).
# k8s.io/kubernetes points its staging modules at ./staging via replace
# directives, which do not resolve outside its own repo, so we build from a
# small wrapper module that replaces each staging module with its published
# v0.X.Y. A warm cache makes this a no-op. KUBEBUILDER_ASSETS, when set and
# holding the binaries, wins over everything (the envtest convention).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  echo "[control-plane] using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  exit 0
fi

cache=${ATOLL_CACHE_DIR:-$HOME/.cache/atoll}
k8s_dir="$cache/bin/kubernetes-v$KUBERNETES_VERSION"
etcd_dir="$cache/bin/etcd-v$ETCD_VERSION"
work="$cache/build"
mkdir -p "$k8s_dir" "$etcd_dir" "$work"
# One build at a time: two concurrent runs (npm test and .ci/run, two
# checkouts) would otherwise race on the same temporary outputs.
exec 9>"$cache/.build-control-plane.lock"
flock 9
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

step() { echo "[control-plane] $(date +%H:%M:%S) $*"; }

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager)
  local missing=()
  for b in "${want[@]}"; do [[ -x "$k8s_dir/$b" ]] || missing+=("$b"); done
  if [[ ${#missing[@]} -eq 0 ]]; then step "kubernetes v$KUBERNETES_VERSION cached in $k8s_dir"; return; fi
  local mod="$work/kubernetes-v$KUBERNETES_VERSION"
  mkdir -p "$mod"
  step "reading staging modules from k8s.io/kubernetes@v$KUBERNETES_VERSION go.mod"
  (cd "$mod" && [[ -f go.mod ]] || (cd "$mod" && go mod init atoll.local/build-kubernetes >/dev/null 2>&1))
  local gomod
  gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local minor="${KUBERNETES_VERSION#*.}"
  {
    echo "module atoll.local/build-kubernetes"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    echo
    echo "replace ("
    # Every "k8s.io/x => ./staging/src/k8s.io/x" becomes "k8s.io/x => k8s.io/x v0.<minor>".
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
      | awk -v v="v0.$minor" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$mod/go.mod"
  step "wrapper module: $(grep -c '=> k8s.io' "$mod/go.mod") staging replacements"
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=${KUBERNETES_VERSION%%.*} -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=v$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=${KUBERNETES_VERSION%%.*} -X k8s.io/client-go/pkg/version.gitMinor=${minor%%.*}"
  for b in "${missing[@]}"; do
    step "building $b v$KUBERNETES_VERSION (cold builds take several minutes on 2 cores)"
    (cd "$mod" && go build -v -ldflags "$ldflags" -o "$k8s_dir/$b.tmp" "k8s.io/kubernetes/cmd/$b" 2>&1 \
      | awk '{n++; if (n % 200 == 0) printf "[control-plane]   ... %d packages compiled\n", n; fflush()}')
    [[ -x "$k8s_dir/$b.tmp" ]] || { echo "[control-plane] build of $b failed" >&2; exit 1; }
    mv "$k8s_dir/$b.tmp" "$k8s_dir/$b"
    step "built $k8s_dir/$b"
  done
}

build_etcd() {
  if [[ -x "$etcd_dir/etcd" ]]; then step "etcd v$ETCD_VERSION cached in $etcd_dir"; return; fi
  local mod="$work/etcd-v$ETCD_VERSION"
  mkdir -p "$mod"
  printf 'module atoll.local/build-etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" > "$mod/go.mod"
  step "building etcd v$ETCD_VERSION"
  (cd "$mod" && go build -v -ldflags "-s -w" -o "$etcd_dir/etcd.tmp" go.etcd.io/etcd/server/v3 2>&1 \
      | awk '{n++; if (n % 100 == 0) printf "[control-plane]   ... %d packages compiled\n", n; fflush()}')
  [[ -x "$etcd_dir/etcd.tmp" ]] || { echo "[control-plane] build of etcd failed" >&2; exit 1; }
  mv "$etcd_dir/etcd.tmp" "$etcd_dir/etcd"
  step "built $etcd_dir/etcd"
}

build_etcd
build_kubernetes
step "ready: $k8s_dir $etcd_dir"
