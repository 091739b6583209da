#!/usr/bin/env bash
# Installs what weft needs on a Debian machine (as root) and builds it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages weft uses (nftables, iproute2, util-linux) and its tests use (etcd for the store
# conformance suite, ping, busybox for small workloads, dnsmasq as a lab's upstream resolver and dig).
PKGS=(nftables iproute2 util-linux procps iputils-ping busybox-static etcd-server dnsmasq-base bind9-dnsutils conntrack ${WEFT_EXTRA_PKGS:-})
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "==> building"
npm run --silent build
