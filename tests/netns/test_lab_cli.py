"""`python -m evpnd.lab up|status|down` as separate processes: `down` finds everything `up`
created through the state file and leaves nothing behind (namespaces, processes, /run files)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from evpnd.lab import runner

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "containerlab/evpn-l3/evpn-l3.clab.yml"


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evpnd.lab", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_up_then_down_from_another_process_leaves_nothing():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    name = f"cli{uuid.uuid4().hex[:5]}"
    try:
        up = lab_cli("up", str(TOPOLOGY), "--name", name)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "evpnd: every API socket is up" in up.stdout
        state = runner.LabState.load(name)
        assert set(state.namespaces) == {"spine", "leaf1", "leaf2", "h1", "h2"}
        pids = [r.pid for r in state.procs]
        assert len(pids) == 4 and all(r.alive() for r in state.procs)  # zebra, bgpd, 2x evpnd
        inside = {
            int(p)
            for ns in state.namespaces.values()
            for p in runner.run(["ip", "netns", "pids", ns]).split()
        }
        assert set(pids) <= inside and len(inside) > len(pids), "ExaBGP runs under evpnd"
        again = lab_cli("up", str(TOPOLOGY), "--name", name)
        assert again.returncode == 1 and "already up" in again.stderr
        status = lab_cli("status")
        assert name in status.stdout
        # a crashed daemon (its ExaBGP orphaned inside the namespace) is still cleaned up
        os.kill(next(r.pid for r in state.procs if r.daemon == "evpnd"), signal.SIGKILL)
    finally:
        down = lab_cli("down", name)
    assert down.returncode == 0, down.stderr
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(f"clab-{name}-")]
    assert not (runner.STATE_ROOT / name).exists()
    for pid in inside:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"pid {pid} still runs"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_bad_topology_is_refused_without_creating_anything(tmp_path):
    bad = tmp_path / "bad.clab.yml"
    bad.write_text("name: bad\ntopology:\n  nodes:\n    a: {kind: ceos}\n")
    out = lab_cli("up", str(bad))
    assert out.returncode == 1 and "kind" in out.stderr
    assert not (runner.STATE_ROOT / "bad").exists()


def test_failing_exec_line_aborts_up_and_cleans(tmp_path):
    topo = tmp_path / "broken.clab.yml"
    name = f"brk{uuid.uuid4().hex[:5]}"
    topo.write_text(
        f"name: {name}\ntopology:\n  nodes:\n"
        "    a: {kind: linux, exec: ['ip link set eth1 up']}\n"
        "    b: {kind: linux, exec: ['ip link set eth9 up']}\n"
        "  links:\n    - endpoints: [a:eth1, b:eth1]\n"
    )
    out = lab_cli("up", str(topo))
    assert out.returncode == 1
    assert "ip link set eth9 up" in out.stderr and f"clab-{name}-b" in out.stderr
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(f"clab-{name}-")]
    assert not (runner.STATE_ROOT / name).exists()
