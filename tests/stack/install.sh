#!/usr/bin/env bash
# Install the Debian packages the real test stack (tests/stack) needs.
#
# Idempotent and fast when everything is already present: a package is only
# installed when its command (or dpkg record) is missing. `apt-get update` is run
# only when a first install attempt fails (for example on a fresh machine whose
# package lists are empty or stale).
#
# Usage: bash tests/stack/install.sh   (as root; CI runs as root)
set -euo pipefail

# package -> command that proves it is installed (empty: check dpkg only)
declare -A CHECK=(
  [docker.io]=dockerd
  [docker-registry]=docker-registry
  [redis-server]=redis-server
  [apache2-utils]=htpasswd
  [busybox-static]=""
  [openssl]=openssl
  [chromium]=chromium
  [docker-compose]=docker-compose
  [postgresql]=pg_ctlcluster
)
# docker-compose: tests/e2e/test_compose.py validates docker-compose.yml with it.
# postgresql: the fleet tests' console database (tests/stack/postgres.py runs initdb and pg_ctl from
# /usr/lib/postgresql/<version>/bin; pg_ctlcluster, from the same packages, is on the PATH to check).
ORDER=(docker.io docker-registry redis-server apache2-utils busybox-static openssl chromium docker-compose postgresql)

is_installed() {
  local pkg=$1 cmd=${CHECK[$1]}
  if [[ -n "$cmd" ]] && ! command -v "$cmd" >/dev/null 2>&1 \
       && [[ ! -x "/usr/sbin/$cmd" && ! -x "/usr/bin/$cmd" ]]; then
    return 1
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for pkg in "${ORDER[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

# busybox-static ships /bin/busybox; the stack copies it into a test image.
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "tests/stack/install.sh: all stack packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "tests/stack/install.sh: missing packages: ${missing[*]}" >&2
  echo "tests/stack/install.sh: run this script as root (sudo bash tests/stack/install.sh)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
echo "tests/stack/install.sh: installing ${missing[*]}"
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "tests/stack/install.sh: first install failed; running apt-get update and retrying"
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

still=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still+=("$pkg")
done
if [[ ${#still[@]} -ne 0 ]]; then
  echo "tests/stack/install.sh: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "tests/stack/install.sh: done"
