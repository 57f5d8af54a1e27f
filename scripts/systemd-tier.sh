#!/usr/bin/env bash
# The systemd tier: evpnd installed from its wheel and run as a systemd service, with Debian 12's
# systemd as PID 1, and `pytest tests/systemd` checking it from the host (README "systemd tier").
#
# Why systemd-nspawn: it boots the real systemd of a debootstrap root (scripts/systemd-root.sh) as
# PID 1 of a container in about 2 s on this host, and the container's kernel is the host's, which
# has everything evpnd needs for one VNI (bridge, vxlan, veth, netns). The alternatives were slower
# or less independent: a QEMU guest under TCG (no usable KVM here) takes minutes to boot systemd
# and Python; a container of dockerd would make this tier depend on a second daemon being up. No
# init system runs on this host, so nspawn runs with --register=no --keep-unit (no machined, no
# scope unit); the container gets its own network namespace (--private-network) and the tests
# enter it with nsenter.
#
# Run as root on Debian 12. Installs what it needs on the first run (systemd-container and
# debootstrap from apt; the root under /var/cache/evpnd-systemd, about 2 min once); later runs
# reuse it. Builds the sdist and wheel (`make dist`) and a wheelhouse of the wheel's dependencies
# (cached by their pins) that the guest installs from offline. Exit code: pytest's (a skip fails
# the tier too), 2 when set-up failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${EVPND_SYSTEMD_CACHE:-/var/cache/evpnd-systemd}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf 'systemd-tier: %s\n' "$*"; }
T0=$(now)

if [ "$(id -u)" -ne 0 ]; then
  log "needs root (it installs packages and boots a container)" >&2
  exit 2
fi
[ -x .venv/bin/python ] || bash scripts/install.sh

# systemd-nspawn is in Debian's systemd-container; fail loudly when it cannot be had.
if ! command -v systemd-nspawn >/dev/null; then
  log "apt-get install systemd-container"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends systemd-container >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends systemd-container >/dev/null
  }
fi
command -v systemd-nspawn >/dev/null || { log "systemd-nspawn missing after install" >&2; exit 2; }

ROOT=$(EVPND_SYSTEMD_CACHE=$CACHE bash scripts/systemd-root.sh) || { log "no root" >&2; exit 2; }

# The wheel, as an operator gets it.
make --no-print-directory -s dist >"$CACHE/dist.log" 2>&1 || {
  tail -n 30 "$CACHE/dist.log" >&2
  log "make dist failed" >&2
  exit 2
}
WHEEL=$(compgen -G "$REPO/dist/evpnd-*.whl" | head -n1)
[ -n "$WHEEL" ] || { log "make dist made no wheel" >&2; exit 2; }

# The wheel's dependencies as wheels, for an offline install in the guest; keyed by the pins.
deps=$(.venv/bin/python - "$WHEEL" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
print("\n".join(sorted(l.split(":", 1)[1].strip() for l in lines if l.startswith("Requires-Dist:") and "extra ==" not in l)))
PY
)
WH=$CACHE/wheelhouse-$(printf '%s' "$deps" | sha256sum | cut -c1-12)
if [ ! -d "$WH" ]; then
  log "building the wheelhouse of evpnd's dependencies (once)"
  mkdir -p "$CACHE"
  whtmp=$(mktemp -d "$CACHE/wheelhouse.XXXXXX")
  # shellcheck disable=SC2086 # one requirement per word
  .venv/bin/pip wheel -q --disable-pip-version-check --wheel-dir "$whtmp" $deps
  mv -T "$whtmp" "$WH" 2>/dev/null || rm -rf "$whtmp" # another run made it meanwhile
fi
log "set-up done in $(since "$T0") s (root $ROOT)"

RESULTS=$(mktemp -d /tmp/evpnd-systemd-tier.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT
T1=$(now)
set +e
EVPND_SYSTEMD_TIER=1 EVPND_SYSTEMD_ROOT=$ROOT EVPND_WHEEL=$WHEEL EVPND_WHEELHOUSE=$WH \
  .venv/bin/python -m pytest -p no:cacheprovider -q -rfE --tb=short --junitxml="$RESULTS/junit.xml" \
  ${PYTEST_ARGS:-} tests/systemd
rc=$?
set -e
log "tests $(since "$T1") s, total $(since "$T0") s, exit code $rc"
if [ -s "$RESULTS/junit.xml" ]; then
  [ -n "${EVPND_TEST_RESULTS:-}" ] && cp "$RESULTS/junit.xml" "$EVPND_TEST_RESULTS/systemd.xml"
  read -r tests failures errors skipped < <(.venv/bin/python - "$RESULTS/junit.xml" <<'EOF2'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
print(*(sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")))
EOF2
  )
  [ "$rc" -eq 0 ] && [ "$skipped" -gt 0 ] && rc=1 # the tier never passes by skipping
  [ "$rc" -eq 0 ] && [ "$tests" -eq 0 ] && rc=1
  log "$((tests - failures - errors - skipped)) passed, $((failures + errors)) failed, $skipped skipped"
else
  log "0 passed, 1 failed (no results)"
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
