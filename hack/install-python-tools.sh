#!/usr/bin/env bash
# Installs the Python tools the tests need into a venv outside the repo:
# moto's server, which emulates AWS KMS (and S3) on loopback so the aws-kms
# provider is tested against a real HTTP endpoint instead of mocks.
# Idempotent: a venv that already holds the pinned version is left alone.
set -euo pipefail

MOTO_VERSION=5.2.1

cache=${ATOLL_CACHE_DIR:-$HOME/.cache/atoll}
venv="$cache/venv"
python=${PYTHON:-python3}

step() { echo "[python-tools] $(date +%H:%M:%S) $*"; }

if [[ -x "$venv/bin/moto_server" ]] \
  && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
  step "moto $MOTO_VERSION cached in $venv"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  step "creating venv $venv with $($python --version 2>&1)"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
fi

step "upgrading pip"
"$venv/bin/python" -m pip install --quiet --upgrade pip

step "installing moto[server]==$MOTO_VERSION"
"$venv/bin/python" -m pip install --quiet "moto[server]==$MOTO_VERSION"

"$venv/bin/moto_server" --help >/dev/null
step "moto $MOTO_VERSION ready: $venv/bin/moto_server"
