#!/usr/bin/env bash
# End-to-end on kind, for users with Docker (not run in CI, which has none):
# creates the cluster (hack/kind-config.yaml), builds the image and loads it
# into the nodes, installs the chart, applies the samples, and waits until the
# sample connections report Ready (the http-api sample points at a placeholder
# URL, so expect it to settle on a probe failure reason instead; the script
# prints every connection's conditions either way).
# Env: CLUSTER (atoll), IMAGE (atoll:e2e), KEEP=1 keeps the cluster afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cluster=${CLUSTER:-atoll}
image=${IMAGE:-ghcr.io/atoll-dev/atoll:e2e}
step() { echo "[e2e-kind] $(date +%H:%M:%S) $*"; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "[e2e-kind] $tool is required" >&2; exit 1; }
done
helm=$(bash "$here/build-helm.sh")

cleanup() {
  if [[ "${KEEP:-0}" != 1 ]]; then step "deleting cluster $cluster (KEEP=1 keeps it)"; kind delete cluster --name "$cluster"; fi
}

cd "$repo"
if ! kind get clusters | grep -qx "$cluster"; then
  step "creating kind cluster $cluster"
  # kind mounts docs/audit-policy.yaml into the control plane: give it an absolute path.
  config=$(mktemp)
  sed "s#hostPath: ./docs/audit-policy.yaml#hostPath: $repo/docs/audit-policy.yaml#" hack/kind-config.yaml > "$config"
  kind create cluster --name "$cluster" --config "$config" --wait 120s
  rm -f "$config"
fi
trap cleanup EXIT
kubectl config use-context "kind-$cluster" >/dev/null

step "building $image"
docker build -t "$image" .
step "loading $image into the nodes"
kind load docker-image "$image" --name "$cluster"

step "installing the chart"
"$helm" upgrade --install atoll charts/atoll \
  --namespace atoll-system --create-namespace \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" --set image.pullPolicy=Never \
  --wait --timeout 5m
kubectl label namespace atoll-system pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
kubectl -n atoll-system rollout status deploy/atoll-controller --timeout=3m
kubectl -n atoll-system rollout status deploy/atoll-gateway --timeout=3m

step "applying the sample Namespace and Workspace"
kubectl apply -f config/samples/00-namespace.yaml
kubectl apply -f config/samples/01-workspace.yaml

step "waiting for the sealing webhook to answer (caBundle patched by the controller)"
for i in $(seq 1 60); do
  kubectl create --dry-run=server -o name -f config/samples/02-externalconnection-http-api.yaml >/dev/null 2>&1 && break
  [[ $i == 60 ]] && { echo "[e2e-kind] the webhook never answered" >&2; kubectl -n atoll-system logs deploy/atoll-controller --tail=50 >&2; exit 1; }
  sleep 2
done

step "applying the sample connections"
kubectl apply -f config/samples/02-secret-orders-db.yaml
kubectl apply -f config/samples/02-externalconnection-http-api.yaml -f config/samples/03-externalconnection-postgresql.yaml

step "workload samples (docs/using-connections.md): ServiceAccounts and RBAC applied, workloads dry-run"
kubectl apply -f config/samples/workloads/10-serviceaccounts.yaml -f config/samples/workloads/11-rbac.yaml
kubectl apply --server-side --dry-run=server -f config/samples/workloads/

step "waiting for Workspace acme to be Ready"
kubectl -n acme wait workspace/acme --for=condition=Ready --timeout=3m
step "waiting for the sample connections to be reconciled"
kubectl -n acme wait externalconnection --all --for=jsonpath='{.status.observedGeneration}'=1 --timeout=3m || true
kubectl -n acme get externalconnections
kubectl -n acme get externalconnections -o jsonpath='{range .items[*]}{.metadata.name}{": "}{range .status.conditions[*]}{.type}={.status}({.reason}) {end}{"\n"}{end}'
step "the managed Secrets hold ciphertext only:"
kubectl -n acme get secrets -l app.kubernetes.io/managed-by=atoll
step "done"
