"""containerlab/evpn-l3 through the namespace runner: type-5 routes (RFC 9136) between two
evpnd leaves across an FRR spine, installed in the tenant table (no VRF on this kernel) with the
right VTEP and router MAC, and carrying a routed ping (symmetric IRB over L3VNI 1000)."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest

from evpnd.lab import runner
from evpnd.lab.netns import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]

TOPOLOGY = Path(__file__).resolve().parents[2] / "containerlab/evpn-l3/evpn-l3.clab.yml"
LEAVES = {  # leaf: (VTEP, router MAC, tenant prefix, host address)
    "leaf1": ("10.0.0.11", "02:00:00:00:10:01", "10.1.0.0/24", "10.1.0.10"),
    "leaf2": ("10.0.0.12", "02:00:00:00:10:02", "10.2.0.0/24", "10.2.0.10"),
}
OTHER = {"leaf1": "leaf2", "leaf2": "leaf1"}
TABLE, L3VNI = 100, 1000


@pytest.fixture(scope="module")
def l3():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    name = f"l3t{uuid.uuid4().hex[:5]}"
    lines: list[str] = []
    try:
        lab = runner.up(TOPOLOGY, name=name, progress=lines.append)
        runner.wait_converged(lab, timeout=60, progress=lines.append)
        yield lab
    finally:
        runner.down(name, progress=lines.append)
        left = [ns for ns in os.listdir("/run/netns") if ns.startswith(f"clab-{name}-")]
        assert not left and not (runner.STATE_ROOT / name).exists(), left


def test_sessions_up(l3):
    assert runner.sessions_converged(l3) == []
    assert set(runner.evpnd_sessions(l3)) == {"leaf1", "leaf2"}


def test_spine_carries_both_type5_routes_with_router_macs(l3):
    def type5():
        return {
            (f"{p['ip']}/{p['ipLen']}", p["nexthops"][0]["ip"],
             re.search(r"Rmac:(\S+)", p["extendedCommunity"]["string"])[1])
            for p in runner.frr_evpn_paths(l3, "spine") if p.get("routeType") == 5
        }  # fmt: skip

    want = {(prefix, vtep, rmac) for vtep, rmac, prefix, _ in LEAVES.values()}
    wait_for(lambda: type5() == want, timeout=15, what="type-5 routes on the FRR spine")


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_type5_installed_via_vtep_and_router_mac(l3, leaf):
    vtep, rmac, prefix, _ = LEAVES[OTHER[leaf]]
    ns = l3.ns(leaf)
    bridge, vxlan = f"br{L3VNI}", f"vx{L3VNI}"

    def route():
        return ns.run(["ip", "route", "show", "table", str(TABLE), prefix]).strip()

    text = wait_for(route, timeout=15, what=f"{prefix} in {leaf}'s table {TABLE}")
    assert f"via {vtep} dev {bridge}" in text and "onlink" in text, text
    assert f"{vtep} lladdr {rmac}" in ns.run(["ip", "neigh", "show", "dev", bridge])
    assert f"{rmac} dst {vtep} self" in ns.run(["bridge", "fdb", "show", "dev", vxlan])
    own_mac = LEAVES[leaf][1]
    assert own_mac in ns.run(["ip", "link", "show", bridge]), "bridge carries our router MAC"
    routes = runner.evpnd_json(l3, leaf, "show", "routes")["routes"]
    remote = [r for r in routes if r["type"] == 5 and r["ip"] == prefix]
    assert remote and remote[0]["next_hop"] == vtep and remote[0]["router_mac"] == rmac


def _vxlan_tx(lab, leaf) -> int:
    out = lab.ns(leaf).run(["ip", "-s", "-j", "link", "show", f"vx{L3VNI}"])
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


@pytest.mark.parametrize("src, dst", [("h1", "leaf2"), ("h2", "leaf1")])
def test_routed_ping_between_tenant_subnets(l3, src, dst):
    src_leaf = OTHER[dst]
    before = _vxlan_tx(l3, src_leaf)
    target = LEAVES[dst][3]
    assert any(l3.ns(src).ping(target, count=1, timeout=1.0) for _ in range(10)), target
    out = l3.ns(src).run(["ping", "-c", "3", "-i", "0.2", "-W", "1", target])
    assert " 0% packet loss" in out and "ttl=62" in out, out  # routed twice: leaf, leaf
    assert _vxlan_tx(l3, src_leaf) >= before + 3, "the packets went over the L3VNI"


def test_tenant_table_is_what_routes(l3):
    """Without the tenant rule the leaf has no route to the other subnet: the type-5 route in
    table 100 is what carries the traffic, not something in the main table."""
    ns = l3.ns("leaf1")
    ns.ip("rule", "del", "iif", "eth2", "lookup", str(TABLE), "priority", "100")
    try:
        assert not l3.ns("h1").ping(LEAVES["leaf2"][3], count=1, timeout=1.0)
    finally:
        ns.ip("rule", "add", "iif", "eth2", "lookup", str(TABLE), "priority", "100")
    assert any(l3.ns("h1").ping(LEAVES["leaf2"][3], timeout=1.0) for _ in range(5))
