#!/usr/bin/env bash
# The full-kernel test tier: boots ONE QEMU VM with Debian 12's stock kernel (virtme-ng, the
# host's root filesystem shared read-only over 9p) and runs `pytest tests/vm` in it with the
# project's own .venv. For what this host's kernel lacks: VRF, geneve, gretap (see README,
# "Full-kernel test tier").
#
# Run as root on Debian 12 (amd64). Installs what it needs on the first run (apt packages, the
# kernel .deb unpacked under /opt/evpnd-vm/kernel, virtme-ng in /opt/evpnd-vm/vng); later runs
# skip that. Exit code: pytest's in the guest (0 all passed, 1 failures, 5 no tests: a failure
# here too), 255 the guest died, 124 the VM timed out, 2 set-up failed.
#
# Knobs: VM_TIMEOUT (s, default 900), VM_MEM (2G), VM_CPUS (2), EVPND_VM_ROOT (/opt/evpnd-vm),
# PYTEST_ARGS (extra pytest arguments, words without spaces, e.g. "-k vrf"), VM_TESTS (the test
# files, default tests/vm; e.g. "tests/vm/test_policy.py tests/vm/test_capture_tunnels.py"), VM_RWDIR (a host directory the guest may
# write, e.g. docs/bench for `make bench-overlay-vm`; the rest of the root is read-only there).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

VM_ROOT=${EVPND_VM_ROOT:-/opt/evpnd-vm}
KROOT=$VM_ROOT/kernel
VNG_VENV=$VM_ROOT/vng
VNG_VERSION=1.42
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_MEM=${VM_MEM:-2G}
VM_CPUS=${VM_CPUS:-2}
APT_PKGS=(qemu-system-x86 kmod busybox-static udev iproute2 file)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf 'vm-tier: %s\n' "$*"; }
T0=$(now)

if [ "$(id -u)" -ne 0 ]; then
  log "needs root (it installs packages and boots a VM)" >&2
  exit 2
fi
[ -x .venv/bin/python ] || bash scripts/install.sh

# ---- host packages. qemu-system-x86: the VM (TCG: /dev/kvm here is PVM, which cannot run a
# stock kernel); kmod: the guest autoloads modules with the host's /sbin/modprobe;
# busybox-static: virtme-ng's initramfs; udev: without systemd-udevd virtme-ng-init finds no
# virtio ports and neither the output nor the exit code of the command comes back; file:
# virtme-ng runs it to tell the kernel image's type (a pristine Debian root lacks it).
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- the kernel: the .deb unpacked, not installed (nothing in the host's /boot or
# /lib/modules). The ABI name changes with security updates: resolve it through the metapackage.
kernel_pkg() {
  apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}
if ! compgen -G "$KROOT/boot/vmlinuz-*" >/dev/null; then
  apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt-get update -qq
  pinned=${KPKG:-}
  KPKG=${pinned:-$(kernel_pkg)}
  dl=$(mktemp -d)
  chown _apt "$dl" 2>/dev/null || true
  log "downloading $KPKG"
  if ! (cd "$dl" && apt-get download -q "$KPKG" >/dev/null); then
    # a stale package list may name a kernel the archive no longer has: refresh, retry once
    apt-get update -qq
    KPKG=${pinned:-$(kernel_pkg)}
    log "downloading $KPKG (after apt-get update)"
    (cd "$dl" && apt-get download -q "$KPKG" >/dev/null)
  fi
  rm -rf "$KROOT.tmp" && mkdir -p "$KROOT.tmp"
  dpkg-deb -x "$dl"/*.deb "$KROOT.tmp"
  rm -rf "$dl" "$KROOT" && mv "$KROOT.tmp" "$KROOT" # all or nothing: a rerun starts over
fi
KIMG=$(compgen -G "$KROOT/boot/vmlinuz-*" | head -n1)
KVER=${KIMG##*/vmlinuz-}
# The .deb ships no modules.dep (its postinst would run depmod).
[ -s "$KROOT/lib/modules/$KVER/modules.dep" ] || depmod -b "$KROOT" "$KVER"

# ---- virtme-ng in its own venv
if [ ! -x "$VNG_VENV/bin/vng" ]; then
  log "pip install virtme-ng==$VNG_VERSION"
  rm -rf "$VNG_VENV"
  python3 -m venv "$VNG_VENV"
  "$VNG_VENV/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VNG_VERSION"
fi
# virtme-ng mounts the shared root with 9p's default cache=none: every stat, open and exec is a
# host round trip, which under TCG made runs ~4x slower. The root is exported read-only and does
# not change during the run, so cache=loose is safe there (--rwdir mounts stay uncached).
MKI=$("$VNG_VENV/bin/python" -c 'import virtme.mkinitramfs as m; print(m.__file__)')
if ! grep -q 'msize=524288,cache=loose /dev/root' "$MKI"; then
  sed -i 's|trans=virtio,access=any,msize=524288 /dev/root /newroot/|trans=virtio,access=any,msize=524288,cache=loose /dev/root /newroot/|' "$MKI"
  grep -q 'msize=524288,cache=loose /dev/root' "$MKI" || {
    log "could not patch $MKI (virtme-ng changed?)"
    exit 2
  }
fi
export PATH="$VNG_VENV/bin:$PATH" # vng execs virtme-run from PATH

# ---- boot once, one pytest process
RESULTS=$(mktemp -d /tmp/evpnd-vm-tier.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT
# udev coldplug would load ~30 hardware modules the tests never use; each costs time under TCG.
BL=kvm,kvm_amd,kvm_intel,ccp,ahci,libahci,libata,sr_mod,cdrom,sg,i2c_i801,i2c_smbus,lpc_ich
BL+=,iTCO_wdt,iTCO_vendor_support,intel_pmc_bxt,i6300esb,psmouse,pcspkr,serio_raw,evdev,button
BL+=,qemu_fw_cfg,aesni_intel,ghash_clmulni_intel,sha512_ssse3,sha256_ssse3,sha1_ssse3
BL+=,crc32_pclmul,crct10dif_pclmul,crc32c_intel
log "set-up done in $(since "$T0") s; booting $KVER (TCG, $VM_CPUS CPUs, $VM_MEM)"
T_VM=$(now)
# Host environment variables do not reach the guest: absolute paths, settings through `env`.
# stdin </dev/null: vng wires stdin to a virtio port. `| cat`: qemu reopens /proc/self/fd/1 and
# 2 with O_TRUNC; if they are a file (a CI log) earlier output is wiped.
set +e
# shellcheck disable=SC2086 # PYTEST_ARGS and VM_TESTS are lists of words
timeout -k 10 "$VM_TIMEOUT" vng --run "$KIMG" --disable-kvm --force-9p \
  --memory "$VM_MEM" --cpus "$VM_CPUS" --rwdir="$RESULTS" ${VM_RWDIR:+--rwdir="$VM_RWDIR"} --cwd "$REPO" \
  --append "modprobe.blacklist=$BL" \
  -- env EVPND_VM_TIER=1 "$REPO/.venv/bin/python" -m pytest -p no:cacheprovider -q -rfE --durations=10 \
  --junitxml="$RESULTS/junit.xml" ${PYTEST_ARGS:-} ${VM_TESTS:-tests/vm} </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
set -e

vm_s=$(since "$T_VM")
total_s=$(since "$T0")
case $rc in
  124) why=" (timed out after $VM_TIMEOUT s)" ;;
  255) why=" (the guest died)" ;;
  5) why=" (no tests ran)" ;;
  *) why="" ;;
esac
log "VM ${vm_s} s, total ${total_s} s, exit code $rc$why"
if [ -s "$RESULTS/junit.xml" ]; then
  # make test adds this tier's results to the suite's summary
  [ -n "${EVPND_TEST_RESULTS:-}" ] && cp "$RESULTS/junit.xml" "$EVPND_TEST_RESULTS/vm.xml"
  read -r tests failures errors skipped < <("$REPO/.venv/bin/python" - "$RESULTS/junit.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
print(*(sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")))
EOF
  )
  [ "$rc" -eq 0 ] && [ "$skipped" -gt 0 ] && rc=1 # the tier never passes by skipping
  log "$((tests - failures - errors - skipped)) passed, $((failures + errors)) failed, $skipped skipped"
else
  log "0 passed, 1 failed (no results from the guest)"
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
