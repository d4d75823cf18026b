#!/usr/bin/env bash
# Installs the real services the probe tests run against on loopback:
# PostgreSQL, MariaDB (server and the `mariadb` client used by
# test/support/databases.ts), Redis, Prometheus, htpasswd (bcrypt hashes for
# Prometheus' web config), lua5.1 (Argo CD health check tests), tmux (a real
# terminal for the interactive CLI test), nginx (the
# gateway benchmark) and chromium (the console's browser tests drive it with
# playwright-core; no browser download). Tests start their own instances on free ports in
# temporary directories, so the system services these packages would normally
# start are kept from starting and disabled.
# Idempotent: installed packages are skipped; apt-get update runs at most once.
# Installing must run as root (Debian/Ubuntu); checking does not. Waits for the dpkg lock when another
# install is running.
set -euo pipefail

step() { echo "[services] $(date +%H:%M:%S) $*"; }

# package -> the binary that proves it usable
declare -A probe_binary=(
  [postgresql]=/usr/lib/postgresql
  [mariadb-server]=/usr/sbin/mariadbd
  [redis-server]=/usr/bin/redis-server
  [prometheus]=/usr/bin/prometheus
  [apache2-utils]=/usr/bin/htpasswd
  [mariadb-client]=/usr/bin/mariadb
  [lua5.1]=/usr/bin/lua5.1
  [nginx]=/usr/sbin/nginx
  [tmux]=/usr/bin/tmux
  [chromium]=/usr/bin/chromium
)
# package -> init scripts it may install and auto-start
declare -A init_scripts=(
  [postgresql]=postgresql
  [mariadb-server]=mariadb
  [redis-server]=redis-server
  [prometheus]=prometheus
  [apache2-utils]=
  [mariadb-client]=
  [lua5.1]=
  [nginx]=nginx
  [tmux]=
  [chromium]=
)
packages=(postgresql mariadb-server redis-server prometheus apache2-utils mariadb-client lua5.1 nginx tmux chromium)

is_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" && -e ${probe_binary[$1]} ]]
}

missing=()
for p in "${packages[@]}"; do
  if is_installed "$p"; then step "$p already installed"; else missing+=("$p"); fi
done

# Checked before anything else, so a warm machine needs neither root nor apt-get update.
if [[ ${#missing[@]} -eq 0 && $(id -u) -ne 0 ]]; then
  step "all test services installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[services] missing: ${missing[*]}. Install them as root: sudo bash hack/install-services.sh" >&2
  exit 1
fi

# Keep maintainer scripts from starting services during install. An existing
# policy (containers usually ship one that exits 101) is left untouched.
policy=/usr/sbin/policy-rc.d
own_policy=false
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# written by atoll hack/install-services.sh for the duration of the install\nexit 101\n' >"$policy"
    chmod +x "$policy"
    own_policy=true
  fi
  step "apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  step "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Whatever got started anyway (no policy-rc.d, systemd hosts): stop and disable.
for p in "${packages[@]}"; do
  svc=${init_scripts[$p]}
  [[ -n $svc ]] || continue
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    if systemctl is-active --quiet "$svc" 2>/dev/null || systemctl is-enabled --quiet "$svc" 2>/dev/null; then
      step "stopping and disabling system service $svc"
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  elif [[ -x /etc/init.d/$svc ]]; then
    if service "$svc" status >/dev/null 2>&1; then
      step "stopping system service $svc"
      service "$svc" stop >/dev/null 2>&1 || true
    fi
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done

for p in "${packages[@]}"; do
  if ! is_installed "$p"; then
    echo "[services] $p is not usable after install" >&2
    exit 1
  fi
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
step "ready: postgres $("$pg_bin/postgres" --version | awk '{print $3}'), $(/usr/sbin/mariadbd --version | awk '{print $3}'), $(redis-server --version | awk '{print $3}'), prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}'), $(lua5.1 -v 2>&1 | awk '{print $1, $2}'), $(nginx -v 2>&1 | awk '{print $3}'), $(chromium --version 2>/dev/null | awk '{print $1, $2}')"
