#!/usr/bin/env bash
# Installs the Debian packages callgate needs to build and test, skipping
# those already present. Runs as root (apt-get); prints what it installs.
set -euo pipefail

packages=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
          libevent-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev libssl-dev
          libcmocka-dev redis-server redis-tools curl valgrind nginx-light systemd openssl
          chromium tzdata)
if [ "${1:-}" = "--bench" ]; then
    packages+=(wrk nginx-light linux-perf strace)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages and not root; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
