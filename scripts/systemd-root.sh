#!/usr/bin/env bash
# Builds (once) the Debian 12 root that the systemd tier boots with systemd as PID 1: debootstrap
# minbase from the mirror apt is configured with, plus systemd and what evpnd's wheel needs to
# run (python3-venv) and what the tests look at the kernel with (iproute2, procps).
#
# Cached under $EVPND_SYSTEMD_ROOT (default /var/cache/evpnd-systemd/root-<hash of the package
# list>): a rerun with the same list is instant; a changed list builds a new root. The root is
# built into a temporary directory and renamed when complete, so an interrupted build never
# leaves a half root behind. Prints the root's path on stdout.
set -euo pipefail

SUITE=bookworm
PKGS=systemd,systemd-sysv,dbus,python3,python3-venv,iproute2,procps,util-linux
CACHE=${EVPND_SYSTEMD_CACHE:-/var/cache/evpnd-systemd}
key=$(printf '%s %s' "$SUITE" "$PKGS" | sha256sum | cut -c1-12)
ROOT=${EVPND_SYSTEMD_ROOT:-$CACHE/root-$key}
log() { printf 'systemd-root: %s\n' "$*" >&2; }

if [ -x "$ROOT/lib/systemd/systemd" ]; then
  echo "$ROOT"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { log "needs root (debootstrap)"; exit 2; }
if ! command -v debootstrap >/dev/null; then
  log "apt-get install debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
    >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends debootstrap >/dev/null; }
fi
# The host's own Debian mirror (whatever apt uses here), not a hard-coded one.
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
  awk -v s="$SUITE" '$2 == s {print $1; exit}')
if [ -z "$mirror" ]; then
  apt-get update -qq
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
    awk -v s="$SUITE" '$2 == s {print $1; exit}')
fi
[ -n "$mirror" ] || { log "no $SUITE source in apt's configuration"; exit 2; }

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "debootstrap --variant=minbase $SUITE from $mirror (once; a few minutes)"
t0=$(date +%s)
if ! debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$tmp/root" "$mirror" \
  >"$tmp/debootstrap.log" 2>&1; then
  tail -n 20 "$tmp/debootstrap.log" >&2
  log "debootstrap failed"
  exit 2
fi
root=$tmp/root
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
# A test machine: root logs in on the console without a password; nothing else listens.
chroot "$root" passwd -d root >/dev/null
echo evpnd-systemd >"$root/etc/hostname"
: >"$root/etc/machine-id"
# Another run may have finished the same root meanwhile (and may be using it): keep that one.
if [ -x "$ROOT/lib/systemd/systemd" ]; then
  log "$ROOT appeared meanwhile; using it"
else
  rm -rf "$ROOT"
  mv "$root" "$ROOT"
  log "built $ROOT in $(($(date +%s) - t0)) s"
fi
echo "$ROOT"
