#!/usr/bin/env bash
# Installs everything evpnd's demo and tests need on a fresh Debian 12 machine (as root):
# Debian packages (FRR as the reference peer, iproute2, ping, tcpdump, GoBGP) and .venv with the
# pinned Python dependencies. Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(frr iproute2 iputils-ping tcpdump gobgpd procps psmisc kmod python3-venv systemd tshark iperf3 ethtool
  nftables python3-nftables openvswitch-switch) # OVS: the GENEVE interop peer of tests/vm/test_static_tunnels.py
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The frr package starts its own daemons from the init system on some machines; evpnd's tests
# run their own instances with private paths and never need the system's.

PY=${PYTHON:-python3}
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "install: creating .venv with the pinned Python dependencies"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Network policy (evpnd/policy/nft.py) uses libnftables through Debian's binding, which pip
# cannot install (it is a ctypes wrapper shipped with nftables itself): the venv gets a link
# to that one package, not the whole system site-packages.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -d /usr/lib/python3/dist-packages/nftables ] && [ ! -e "$site/nftables" ]; then
  ln -s /usr/lib/python3/dist-packages/nftables "$site/nftables"
fi
