#!/usr/bin/env bash
# npm test's pretest: everything the suites need, installed or built once and
# cached (~/.cache/atoll), so `npm ci && npm test` works on a fresh clone.
# Each step checks "already there" first, so a warm machine spends seconds here.
# A step that cannot run (e.g. packages missing and no root) stops the test run
# before any suite starts, with one message naming the command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "" >&2
  echo "npm test cannot start: $1" >&2
  echo "  fix: $2, then run npm test again" >&2
  exit 1
}

step() { echo "[pretest] $*"; }

step "build (TypeScript, console bundle)"
npm run build --silent || fail "the build failed (errors above)" "fix the errors"

step "test services (PostgreSQL, MariaDB, Redis, Prometheus, nginx, htpasswd, Lua, tmux)"
bash hack/install-services.sh >/dev/null || fail "test services are missing" "sudo bash hack/install-services.sh"

step "KMS and S3 emulator (moto)"
bash hack/install-python-tools.sh >/dev/null || fail "moto could not be installed" "bash hack/install-python-tools.sh (needs python3 with venv and pip)"

step "control-plane binaries (first build takes several minutes)"
bash hack/build-control-plane.sh || fail "the control-plane binaries could not be built" "bash hack/build-control-plane.sh (needs Go and the Go module proxy)"

step "toxiproxy (network faults of the chaos suite)"
bash hack/build-toxiproxy.sh >/dev/null || fail "toxiproxy could not be built" "bash hack/build-toxiproxy.sh (needs Go and the Go module proxy)"

step "helm"
bash hack/build-helm.sh >/dev/null 2>&1 || fail "helm could not be built" "bash hack/build-helm.sh (needs Go and the Go module proxy)"

step "vault (for the vault-transit KMS provider; first build takes a long while)"
bash hack/build-vault.sh >/dev/null || fail "vault could not be built" "bash hack/build-vault.sh (needs Go and the Go module proxy)"

command -v kubectl >/dev/null || fail "kubectl is not on PATH" "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
step "ready"
