"""systemd/evpnd.service is valid, hardened (exposure <= 2.5), and sd_notify really notifies.

This machine's PID 1 is not systemd, so the unit cannot be started here; `systemd-analyze
verify` and `systemd-analyze security --offline=true` work on the file without a manager.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from evpnd import sdnotify

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "evpnd.service"
SYSUSERS = UNIT.with_name("evpnd.sysusers")
INSTALLED_EVPND = "/usr/local/bin/evpnd"


def analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze missing: apt-get install systemd (scripts/install.sh)")
    return exe


def unit_options() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_verify_is_clean(tmp_path):
    # verify checks that ExecStart's program exists: point it at this checkout's evpnd (the
    # only change), since /usr/local/bin/evpnd exists only where evpnd is installed.
    evpnd = Path(sys.executable).with_name("evpnd")
    text = UNIT.read_text()
    assert INSTALLED_EVPND in text
    copy = tmp_path / "evpnd.service"
    copy.write_text(text.replace(INSTALLED_EVPND, str(evpnd)))
    proc = subprocess.run([analyze(), "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", proc.stderr


def test_security_exposure_at_most_2_5():
    proc = subprocess.run(
        [analyze(), "security", "--offline=true", "--threshold=25", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    m = re.search(r"Overall exposure level for evpnd.service: ([0-9.]+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= 2.5 and proc.returncode == 0, proc.stdout


def test_unit_asks_for_what_the_brief_says():
    o = unit_options()
    assert o["Type"] == ["notify"] and o["NotifyAccess"] == ["main"]
    assert o["WatchdogSec"] and o["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert o["User"] == ["evpnd"] and o["RuntimeDirectory"] == ["evpnd"]
    # CAP_NET_BIND_SERVICE because evpnd listens on :179 by default (config exabgp.listen)
    caps = ["CAP_NET_ADMIN CAP_NET_BIND_SERVICE"]
    assert o["CapabilityBoundingSet"] == caps and o["AmbientCapabilities"] == caps
    assert o["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges",
                "SystemCallFilter", "ProtectKernelModules", "RestrictNamespaces"):  # fmt: skip
        assert key in o, key
    assert o["ProtectSystem"] == ["strict"]
    # The socket may be handed to api.group (fchown): @chown must stay allowed.
    assert not any("@privileged" in f or "@chown" in f for f in o["SystemCallFilter"])


def test_sysusers_file_is_valid(tmp_path):
    exe = shutil.which("systemd-sysusers")
    assert exe, "systemd-sysusers missing"
    (tmp_path / "etc").mkdir()
    proc = subprocess.run([exe, f"--root={tmp_path}", "--dry-run", str(SYSUSERS)],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Creating user 'evpnd'" in proc.stdout + proc.stderr


def _listen(address: str | bytes) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(address)
    s.settimeout(2)
    return s


def test_notify_sends_datagrams(tmp_path):
    path = str(tmp_path / "notify")
    with _listen(path) as s:
        assert sdnotify.notify("READY=1\nSTATUS=running", env={"NOTIFY_SOCKET": path})
        assert s.recv(4096) == b"READY=1\nSTATUS=running"
    name = f"evpnd-test-{os.getpid()}"
    with _listen(b"\0" + name.encode()) as s:
        assert sdnotify.notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        assert s.recv(4096) == b"WATCHDOG=1"


def test_notify_outside_systemd_is_a_no_op(tmp_path):
    assert sdnotify.notify("READY=1", env={}) is False
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_watchdog_interval():
    pid = str(os.getpid())
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None


def test_a_config_error_is_not_restarted():
    """evpnd exits 2 on a bad config; systemd must not retry it (the systemd tier checks this
    under a real systemd). Not as ExecStartPre: RestartPreventExitStatus covers the main process
    only, and a failing pre-command was retried up to the start limit."""
    o = unit_options()
    assert o["RestartPreventExitStatus"] == ["2"] and o["Restart"] == ["on-failure"]
    assert "ExecStartPre" not in o
    assert o["StartLimitIntervalSec"] == ["60s"] and o["StartLimitBurst"] == ["5"]
