"""containerlab/evpn-l2 driven through the namespace runner, checked like netlab's validation:
sessions, routes on every router, pings inside and across VNIs, a MAC move from the FRR leaf to
an evpnd leaf, and an evpnd restart that must not disturb unrelated traffic.

One lab per module (it takes ~10 s to converge); the fixture removes it even when a test fails
and then checks that nothing (namespaces, processes, files under /run) is left.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from evpnd.lab import runner
from evpnd.lab.netns import Lab, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]

TOPOLOGY = Path(__file__).resolve().parents[2] / "containerlab/evpn-l2/evpn-l2.clab.yml"
HOSTS = {  # host: (address, MAC, VNI, leaf)
    "h1": ("10.10.0.1", "02:00:0a:0a:00:01", 100, "leaf1"),
    "h2": ("10.10.0.2", "02:00:0a:0a:00:02", 100, "leaf2"),
    "h3": ("10.10.0.3", "02:00:0a:0a:00:03", 100, "leaf3"),
    "h4": ("10.10.0.4", "02:00:0a:0a:00:04", 200, "leaf1"),
    "h5": ("10.10.0.5", "02:00:0a:0a:00:05", 200, "leaf3"),
}
VTEPS = {"leaf1": "10.0.0.11", "leaf2": "10.0.0.12", "leaf3": "10.0.0.13"}
LEAVES_OF_VNI = {100: {"leaf1", "leaf2", "leaf3"}, 200: {"leaf1", "leaf3"}}
SAME_VNI = [("h1", "h2"), ("h2", "h1"), ("h2", "h3"), ("h3", "h2"), ("h1", "h3"), ("h4", "h5"),
            ("h5", "h4")]  # fmt: skip
ACROSS_VNI = [("h2", "h4"), ("h3", "h5"), ("h5", "h1"), ("h4", "h2")]


def nothing_left(name: str) -> list[str]:
    left = [ns for ns in os.listdir("/run/netns") if ns.startswith(f"clab-{name}-")]
    if (runner.STATE_ROOT / name).exists():
        left.append(str(runner.STATE_ROOT / name))
    return left


@pytest.fixture(scope="module")
def l2():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    name = f"l2t{uuid.uuid4().hex[:5]}"
    lines: list[str] = []
    try:
        lab = runner.up(TOPOLOGY, name=name, progress=lines.append)
        try:
            runner.wait_converged(lab, timeout=60, progress=lines.append)
        except runner.LabError as exc:
            pytest.fail(f"{exc}\n" + "\n".join(lab.log(n) for n in ("leaf2", "leaf3"))[-4000:])
        yield lab
    finally:
        runner.down(name, progress=lines.append)
        assert not nothing_left(name), f"left behind: {nothing_left(name)}"


def ping(lab: runner.RunningLab, src: str, dst: str, tries: int = 10) -> bool:
    """The first packets wait for ARP and MAC learning: give it a few tries."""
    return any(lab.ns(src).ping(HOSTS[dst][0], count=1, timeout=1.0) for _ in range(tries))


@pytest.fixture(scope="module")
def learned(l2):
    """Every host has spoken once, so every leaf has learned and advertised its MACs."""
    for src, dst in SAME_VNI:
        ping(l2, src, dst)
    return l2


def test_bgp_sessions_up(l2):
    frr = runner.frr_sessions(l2)
    assert set(frr["spine"]) >= {f"l2VpnEvpn 10.1.{i}.1" for i in (1, 2, 3)}
    assert all(state == "Established" for states in frr.values() for state in states.values())
    evpnd = runner.evpnd_sessions(l2)
    assert evpnd == {"leaf2": {"10.1.2.0": "up"}, "leaf3": {"10.1.3.0": "up"}}


def test_type3_flood_lists_complete(l2):
    assert runner.flood_lists_converged(l2) == []


@pytest.mark.parametrize("src, dst", SAME_VNI, ids=lambda x: x)
def test_ping_within_vni(learned, src, dst):
    assert ping(learned, src, dst), f"{src} ({HOSTS[src][3]}) cannot reach {dst} ({HOSTS[dst][3]})"


@pytest.mark.parametrize("src, dst", ACROSS_VNI, ids=lambda x: x)
def test_ping_across_vnis_fails(learned, src, dst):
    # same IP subnet, different VNI: only layer-2 separation can stop it
    assert not ping(learned, src, dst, tries=2)


def test_full_size_frames_cross_the_1500_link(learned):
    # 1422 + 28 = 1450-byte IP packets, 1500 bytes with VXLAN: exactly the pinned link's MTU
    for src, dst in (("h1", "h3"), ("h4", "h5"), ("h2", "h3")):
        out = learned.ns(src).run(
            ["ping", "-c", "2", "-W", "1", "-M", "do", "-s", "1422", HOSTS[dst][0]], check=False
        )
        assert " 0% packet loss" in out, f"{src} -> {dst}: {out}"


def _frr_macs(lab, node) -> dict[tuple[int, str], dict]:
    data = lab.frr(node).json("show evpn mac vni all json")
    return {(int(v), m): e for v, d in data.items() for m, e in d.get("macs", {}).items()}


def test_evpn_routes_on_every_router(learned):
    routes_on_every_router(learned)


def routes_on_every_router(lab) -> None:
    """Every type-2/3 route on the spine, FRR leaf1's MAC table, both evpnd leaves' RIB and MAC
    table (shared with the docker runtime's test)."""
    # wait for the last learned MACs to travel; then every router has every MAC of its VNIs
    type2 = {(HOSTS[h][2], HOSTS[h][1], VTEPS[HOSTS[h][3]]) for h in HOSTS}

    def spine_type2():
        return {
            (int(p["extendedCommunity"]["string"].split("RT:")[1].split()[0].split(":")[1]),
             p["mac"], p["nexthops"][0]["ip"])
            for p in runner.frr_evpn_paths(lab, "spine") if p.get("routeType") == 2
        }  # fmt: skip

    wait_for(lambda: spine_type2() >= type2, timeout=15, what="all type-2 routes on the spine")
    spine_type3 = {p["ip"] for p in runner.frr_evpn_paths(lab, "spine") if p["routeType"] == 3}
    assert spine_type3 == set(VTEPS.values())

    def leaf1_ok():
        macs = _frr_macs(lab, "leaf1")
        return all(
            (vni, mac) in macs
            and macs[(vni, mac)]["type"] == ("local" if vtep == VTEPS["leaf1"] else "remote")
            and macs[(vni, mac)].get("remoteVtep", vtep) == vtep
            for vni, mac, vtep in type2
        )

    wait_for(leaf1_ok, timeout=15, what="every MAC in FRR leaf1's MAC table")

    for leaf in ("leaf2", "leaf3"):
        routes = runner.evpnd_json(lab, leaf, "show", "routes")["routes"]
        have2 = {(r["vni"], r["mac"].lower(), r["next_hop"]) for r in routes if r["type"] == 2}
        want2 = {t for t in type2 if leaf in LEAVES_OF_VNI[t[0]]}
        missing = {t for t in want2 if t not in have2 and t[2] != VTEPS[leaf]}
        assert not missing, f"{leaf} lacks type-2 routes {missing}"
        have3 = {r["origin"] for r in routes if r["type"] == 3}
        assert have3 >= set(VTEPS.values()) - {VTEPS[leaf]}, f"{leaf} type-3: {have3}"
        macs = runner.evpnd_json(lab, leaf, "show", "macs")["macs"]
        remote = {(m["vni"], m["mac"].lower()): m["vtep"] for m in macs if m["type"] == "remote"}
        for vni, mac, vtep in want2:
            if vtep != VTEPS[leaf]:
                assert remote.get((vni, mac)) == vtep, f"{leaf}: {mac} in VNI {vni}"


def _ping_loss(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m[1]), int(m[2])


def test_restart_evpnd_leaf_keeps_unrelated_traffic(learned):
    """leaf2's evpnd restarts; h1<->h3 (VNI 100) and h4<->h5 (VNI 200) never lose a packet."""
    lab = learned
    pingers = [
        lab.ns(src).popen(
            ["ping", "-i", "0.05", "-W", "1", "-w", "8", HOSTS[dst][0]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for src, dst in (("h1", "h3"), ("h5", "h4"))
    ]
    try:
        time.sleep(1.0)
        old = lab.pid("leaf2", "evpnd")
        lab.restart("leaf2")
        assert lab.pid("leaf2", "evpnd") not in (None, old)
        assert lab.wait_evpnd_ready("leaf2")
        outs = [p.communicate(timeout=20)[0] for p in pingers]
    finally:
        for p in pingers:
            if p.poll() is None:
                p.kill()
                p.wait()
    for out in outs:
        sent, got = _ping_loss(out)
        assert sent > 50 and got == sent, out
    runner.wait_converged(lab, timeout=30)
    assert ping(lab, "h1", "h2") and ping(lab, "h2", "h3"), "leaf2 is back in the fabric"


def _quiet(lab, host: str, quiet: bool) -> None:
    """A host that sends nothing (no ARP, no IPv6 chatter) cannot claim its MAC back."""
    lab.ns(host).ip("link", "set", "eth1", "arp", "off" if quiet else "on")
    lab.ns(host).run(["sysctl", "-qw", f"net.ipv6.conf.eth1.disable_ipv6={int(quiet)}"])


def _move_h1_to_leaf2(lab, extra: Lab) -> int:
    """h1 (behind FRR leaf1) reappears behind evpnd leaf2 with the same MAC and address: a
    macvlan on h2's uplink (leaf2's access port), while the old h1 stays up but quiet, as a
    migrated VM's old copy would. Returns FRR's sequence number for the MAC after the move."""
    addr, mac, vni, _ = HOSTS["h1"]
    _quiet(lab, "h1", False)
    assert ping(lab, "h1", "h3")  # h1's MAC is local to leaf1 right now
    wait_for(lambda: _frr_macs(lab, "leaf1").get((vni, mac), {}).get("type") == "local",
             timeout=10, what="h1's MAC local on leaf1")  # fmt: skip
    seq_before = _frr_macs(lab, "leaf1")[(vni, mac)]["localSequence"]
    _quiet(lab, "h1", True)
    moved = extra.netns("h1")
    lab.ns("h2").ip("link", "add", "mv1", "link", "eth1", "type", "macvlan", "mode", "bridge")
    lab.ns("h2").ip("link", "set", "mv1", "netns", moved.name)
    moved.ip("link", "set", "mv1", "address", mac, "mtu", "1450")
    moved.ip("addr", "add", f"{addr}/24", "dev", "mv1")
    moved.ip("link", "set", "mv1", "up")
    assert any(moved.ping(HOSTS["h3"][0], timeout=1.0) for _ in range(10))

    def frr_sees_move():
        entry = _frr_macs(lab, "leaf1").get((vni, mac), {})
        return entry.get("type") == "remote" and entry.get("remoteVtep") == VTEPS["leaf2"]

    wait_for(frr_sees_move, timeout=15, what="FRR leaf1 to see h1's MAC behind leaf2")
    entry = _frr_macs(lab, "leaf1")[(vni, mac)]
    assert entry["remoteSequence"] > seq_before, entry  # RFC 7432 section 15.1
    return entry["remoteSequence"]


def _spine_routes_for(lab, mac: str) -> dict[str, str]:
    """{next hop: extended communities} of the spine's type-2 paths for a MAC."""
    return {
        p["nexthops"][0]["ip"]: p["extendedCommunity"]["string"]
        for p in runner.frr_evpn_paths(lab, "spine")
        if p.get("mac") == mac
    }


def _evpnd_sees(lab, leaf: str, mac: str, vtep: str) -> bool:
    macs = runner.evpnd_json(lab, leaf, "show", "macs").get("macs", [])
    return any(m["mac"].lower() == mac and m["vtep"] == vtep for m in macs)


def test_mac_move_from_frr_leaf_to_evpnd_leaf(learned):
    """leaf2 (evpnd) advertises h1's MAC with a higher sequence number, FRR takes it as a move
    and so does the other evpnd leaf; the host answers from its new place."""
    lab = learned
    mac = HOSTS["h1"][1]
    extra = Lab(prefix="l2move")
    try:
        seq = _move_h1_to_leaf2(lab, extra)
        routes = _spine_routes_for(lab, mac)
        assert f"MM:{seq}" in routes.get(VTEPS["leaf2"], ""), routes
        wait_for(lambda: _evpnd_sees(lab, "leaf3", mac, VTEPS["leaf2"]), timeout=15,
                 what="evpnd leaf3 to follow the move")  # fmt: skip
        fdb = lab.ns("leaf1").run(["bridge", "fdb", "show", "dev", "vxlan100"])
        assert f"{mac} dst {VTEPS['leaf2']}" in fdb
        assert ping(lab, "h3", "h1"), "the moved host answers from its new place"
    finally:
        extra.cleanup()
        _quiet(lab, "h1", False)


def test_mac_moves_back_from_evpnd_leaf_to_frr_leaf(learned):
    """The reverse: h1 speaks again behind FRR leaf1, which advertises a higher sequence
    number; evpnd leaf2 must give the MAC up (withdraw its route, point its FDB at leaf1)."""
    lab = learned
    mac = HOSTS["h1"][1]
    extra = Lab(prefix="l2back")
    try:
        seq = _move_h1_to_leaf2(lab, extra)
    finally:
        extra.cleanup()  # the moved copy is gone; leaf2's bridge may still remember the MAC
    _quiet(lab, "h1", False)
    assert ping(lab, "h1", "h3")

    def frr_local_again():
        entry = _frr_macs(lab, "leaf1").get((HOSTS["h1"][2], mac), {})
        return entry.get("type") == "local" and entry.get("localSequence", 0) > seq

    wait_for(frr_local_again, timeout=15, what="FRR leaf1 to take h1's MAC back")
    wait_for(lambda: set(_spine_routes_for(lab, mac)) == {VTEPS["leaf1"]}, timeout=15,
             what="leaf2 to withdraw its route for h1's MAC")  # fmt: skip
    for leaf in ("leaf2", "leaf3"):
        wait_for(lambda leaf=leaf: _evpnd_sees(lab, leaf, mac, VTEPS["leaf1"]), timeout=15,
                 what=f"evpnd {leaf} to see h1's MAC behind leaf1 again")  # fmt: skip
    assert ping(lab, "h2", "h1"), "leaf2 forwards to leaf1, not to its stale local port"
