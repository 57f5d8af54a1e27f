"""Fault containment with the real daemon: all-or-nothing reloads, refused settings, and the
owner task dying.

Leaf A runs evpnd (AS 65001, VTEP 10.0.0.1, VNI 100); leaf B runs FRR (AS 65002, VNI 100).
A bad change in one part of a reload (a new VNI whose bridge name is taken by a veth: the
dataplane cannot make it, which only applying finds out) must leave the old configuration in
force: the good changes in the same file are rolled back, FRR's view of A's routes and A's
kernel entries do not change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import (
    add_host,
    evpnd_config,
    host_mac,
    make_frr_leaf,
    start_evpnd,
    two_leaves,
)
from tests.netns.speaker_lab import frr_evpn_routes

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]
ROOT = Path(__file__).parent.parent.parent


@pytest.fixture(scope="module")
def fab():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="flt")
    try:
        a, b = two_leaves(lab)
        add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        make_frr_leaf(lab, b, [a], {100: ["p2"]})
        cfg = evpnd_config(a, [b], [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}])
        node = start_evpnd(lab, a, cfg)
        wait_for(lambda: peer_up(node, b.vtep), 60, interval=0.5, what="session A-B up")
        yield {"lab": lab, "a": a, "b": b, "node": node}
    finally:
        lab.cleanup()


def peer_up(node, addr: str) -> bool:
    peers = node.data("show peers")["peers"]
    return any(p["address"] == addr and p["state"] == "up" for p in peers)


def reloads(node) -> int:
    return int(node.data("show status")["reloads"])


def from_a(fab) -> set:
    """FRR B's EVPN routes whose RD is A's: what A announces, as B sees it."""
    return {key for key in frr_evpn_routes(fab["b"].frr) if key[0].startswith("10.0.0.1:")}


def sighup_and_wait(node, marker: str, count_before: int) -> None:
    os.kill(node.proc.pid, signal.SIGHUP)
    wait_for(lambda: node.log().count(marker) > count_before, 30, what=f"{marker} in the log")


def test_a_bad_part_rolls_the_whole_reload_back(fab):
    node, a, b = fab["node"], fab["a"], fab["b"]
    wait_for(lambda: len(from_a(fab)) >= 2, 30, what="A's IMET and MAC at B")
    # and B's at A, in A's kernel: the snapshot below is what the rollback must keep (taken
    # before they arrived, it was empty and the later arrival looked like a change: CI)
    wait_for(lambda: a.remote_macs("vx100") and a.flood("vx100"), 30, what="B's at A")
    routes_before = from_a(fab)
    fdb_before = a.remote_macs("vx100"), a.flood("vx100")
    n = reloads(node)
    a.ns.ip("link", "add", "br300", "type", "veth", "peer", "name", "br300p")  # not a bridge
    good = json.loads(json.dumps(node.config))
    node.config["l2vnis"] = [*good["l2vnis"], {"vni": 200, "bridge": "br200"},
                             {"vni": 300, "bridge": "br300"}]  # fmt: skip
    node.config["duplicate_detection"] = {"max_moves": 3}
    node.write_config()
    try:
        sighup_and_wait(node, "reload_rolled_back", node.log().count("reload_rolled_back"))
        log = node.log()
        assert '"part": "dataplane"' in log and "br300 exists but is a veth" in log
        assert node.proc.poll() is None and reloads(node) == n
        # the good change in the same file (VNI 200) was undone, nothing of it stays
        assert not a.ns.ip("link", "show", "br200", check=False)
        assert not a.ns.ip("link", "show", "vx200", check=False)
        assert [v["vni"] for v in node.data("show vni")["vnis"]] == [100]
        assert from_a(fab) == routes_before
        assert (a.remote_macs("vx100"), a.flood("vx100")) == fdb_before
        assert peer_up(node, b.vtep)
        assert "Traceback" not in log
    finally:
        node.config = good
        node.write_config()
        a.ns.ip("link", "del", "br300", check=False)
    # the same file without the bad part applies, and VNI 100 keeps its RD
    node.config["l2vnis"] = [{"vni": 50, "bridge": "br50"}, *good["l2vnis"]]
    node.write_config()
    os.kill(node.proc.pid, signal.SIGHUP)
    wait_for(lambda: reloads(node) == n + 1, 30, what="reload applied")
    wait_for(lambda: any(k[0] == "10.0.0.1:2" for k in from_a(fab)), 30, what="VNI 50 at B")
    assert {k for k in from_a(fab) if k[0] == "10.0.0.1:1"} == {
        k for k in routes_before if k[0] == "10.0.0.1:1"
    }  # VNI 100 is still 10.0.0.1:1 although VNI 50 is now first in the file
    node.config = good
    node.write_config()
    os.kill(node.proc.pid, signal.SIGHUP)
    wait_for(lambda: reloads(node) == n + 2, 30, what="reload back")


def test_a_setting_that_needs_a_restart_refuses_the_reload_by_name(fab):
    node = fab["node"]
    n = reloads(node)
    text = node.config_path.read_text()
    changed = dict(node.config, api={**node.config["api"], "socket": "/run/elsewhere.sock"},
                   log_level="debug")  # fmt: skip
    node.config_path.write_text(yaml.safe_dump(changed, sort_keys=False))
    try:
        before = node.log().count("reload_refused")
        sighup_and_wait(node, "reload_refused", before)
        line = next(ln for ln in node.log().splitlines()[::-1] if "reload_refused" in ln)
        assert '"setting": "api.socket"' in line and "needs a restart" in line
        assert reloads(node) == n and node.socket.exists()
    finally:
        node.config_path.write_text(text)


def test_the_owner_task_dying_ends_the_process_non_zero_with_one_line(tmp_path):
    # Provoked by tests/netns/owner_death.py: evpnd with a bug injected into publishing the
    # core's effects; a SIGHUP adding a VNI makes the core announce, and the owner task dies.
    lab = Lab(prefix="fod")
    try:
        ns = lab.netns("a")
        peer = lab.netns("b")
        lab.link(ns, "uplink", peer, "uplink", "10.0.0.1/30", "10.0.0.2/30")
        cfg = {"router_id": "10.0.0.1", "asn": 65001, "vtep": "10.0.0.1",
               "l2vnis": [{"vni": 100, "bridge": "br100"}], "runtime_dir": str(tmp_path / "run"),
               "api": {"socket": str(tmp_path / "evpnd.sock")}}  # fmt: skip
        path = tmp_path / "evpnd.yaml"
        path.write_text(yaml.safe_dump(cfg))
        log_path = tmp_path / "evpnd.log"
        with open(log_path, "wb") as out:
            proc = lab.start(ns, [sys.executable, "-m", "tests.netns.owner_death", "-c", str(path)],
                             stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))  # fmt: skip
        wait_for(lambda: '"event": "ready"' in log_path.read_text() or proc.poll() is not None,
                 30, what="evpnd ready")  # fmt: skip
        assert proc.poll() is None, log_path.read_text()
        cfg["l2vnis"].append({"vni": 200, "bridge": "br200"})
        path.write_text(yaml.safe_dump(cfg))
        os.kill(proc.pid, signal.SIGHUP)
        code = proc.wait(30)
        log = log_path.read_text()
        assert code == 70, log
        died = [ln for ln in log.splitlines() if "essential_task_died" in ln]
        assert len(died) == 1, log
        assert '"task": "owner"' in died[0] and "injected by the test" in died[0]
        assert "Traceback" not in log
        assert not (tmp_path / "evpnd.sock").exists()  # the API stopped serving
    finally:
        lab.cleanup()
