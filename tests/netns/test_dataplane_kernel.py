"""The dataplane against real kernel devices in a namespace: devices, programming, ownership,
drift repair and restart without churn. Checked with iproute2, as an operator would."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import threading
import time

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import FDB, FLOOD, NEIGH, RMAC, ROUTE, DesiredState, RouteNextHop
from evpnd.dataplane import Dataplane
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.worker import enter_netns
from evpnd.lab.netns import Netns
from tests.collect import collect

pytestmark = pytest.mark.netns

M1, M2, M3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
RMAC2 = "02:ee:00:00:00:02"


def config(vtep: str = "10.0.0.1", hold: float = 0.0, **extra):
    return parse_config(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "vtep": vtep,
            "sweep_hold_time": hold,
            "l2vnis": [
                {
                    "vni": 100,
                    "bridge": "br100",
                    "access_ports": ["p1"],
                    "svi_address": "10.1.0.1/24",
                }
            ],
            "l3vnis": [{"vni": 200, "table": 200, "router_mac": "02:ee:00:00:00:01"}],
            **extra,
        }
    )


def leaf(lab) -> Netns:
    ns = lab.netns("dp")
    ns.ip("link", "add", "p1", "type", "veth", "peer", "name", "h1")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    for dev in ("u0", "u1", "h1"):
        ns.ip("link", "set", dev, "up")
    return ns


def details(ns: Netns, dev: str) -> dict:
    return json.loads(ns.ip("-d", "-j", "link", "show", dev))[0]


def fdb_lines(ns: Netns, dev: str) -> list[str]:
    return ns.run(["bridge", "fdb", "show", "dev", dev], check=False).splitlines()


def remote(ns: Netns, dev: str) -> dict[str, str]:
    out = {}
    for line in fdb_lines(ns, dev):
        m = re.match(r"([0-9a-f:]{17}) dst (\S+) self extern_learn", line)
        if m and m.group(1) != "00:00:00:00:00:00":
            out[m.group(1)] = m.group(2)
    return out


def bridged(ns: Netns, dev: str) -> set[str]:
    return {
        ln.split()[0]
        for ln in fdb_lines(ns, dev)
        if "extern_learn master" in ln and " dst " not in ln
    }


def flood(ns: Netns, dev: str) -> set[str]:
    return {
        m.group(1)
        for ln in fdb_lines(ns, dev)
        if (m := re.match(r"00:00:00:00:00:00 dst (\S+) self permanent", ln))
    }


async def wait_until(predicate, timeout: float = 3.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def mark(desired: DesiredState, kind: str, vni: int, key: str) -> None:
    desired.dirty.add((kind, vni, key))


async def test_devices_are_created_marked_and_configured(lab):
    ns = leaf(lab)
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        vx = details(ns, "vx100")
        info = vx["linkinfo"]
        assert info["info_kind"] == "vxlan"
        data = info["info_data"]
        assert (data["id"], data["local"], data["port"], data["learning"]) == (
            100, "10.0.0.1", 4789, False,
        )  # fmt: skip
        assert vx["mtu"] == 1450 and vx["ifalias"] == "evpnd:vni=100"
        assert vx["master"] == "br100" and "UP" in vx["flags"]
        port = info["info_slave_data"]
        assert port["learning"] is False and port["neigh_suppress"] is True
        br = details(ns, "br100")
        assert br["ifalias"] == "evpnd:vni=100" and "UP" in br["flags"]
        assert details(ns, "p1")["master"] == "br100"
        assert "10.1.0.1/24" in ns.ip("addr", "show", "br100")
        # L3VNI: its own bridge and vxlan device carrying the router MAC
        assert details(ns, "br200")["address"] == "02:ee:00:00:00:01"
        assert details(ns, "vx200")["address"] == "02:ee:00:00:00:01"
        assert details(ns, "vx200")["master"] == "br200"
    finally:
        await dp.stop()


async def test_a_port_joining_changes_neither_the_bridge_mac_nor_its_neighbours(lab):
    """A bridge whose MAC the kernel chose takes its lowest port's; a port joining with a lower
    MAC (a VM's tap) would change it, and a changed bridge MAC flushes every neighbour on the
    bridge, a person's permanent ones included. evpnd sets its bridges' MACs at creation."""
    ns = leaf(lab)
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        before = details(ns, "br100")["address"]
        ns.ip("neigh", "add", "10.1.0.77", "lladdr", M3, "dev", "br100", "nud", "permanent")
        ns.ip("link", "add", "tap9", "address", "02:00:00:00:00:00", "type", "veth", "peer",
              "name", "tap9p")  # fmt: skip
        ns.ip("link", "set", "tap9", "master", "br100")
        ns.ip("link", "set", "tap9", "up")
        assert details(ns, "br100")["address"] == before
        assert "10.1.0.77" in ns.ip("neigh", "show", "dev", "br100")
    finally:
        await dp.stop()


async def test_ipv6_underlay_mtu_and_adoption_of_existing_devices(lab):
    ns = leaf(lab)
    ns.ip("link", "add", "br100", "type", "bridge")
    ns.ip("link", "add", "vx100", "type", "vxlan", "id", "100", "dstport", "4789",
          "local", "fd00::1", "nolearning")  # fmt: skip
    ns.ip("link", "set", "br100", "alias", "operator bridge")
    cfg = config(vtep="fd00::1", l3vnis=[])
    dp = Dataplane(cfg, lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        vx = details(ns, "vx100")
        assert vx["mtu"] == 1430  # 70 bytes of VXLAN over IPv6
        assert vx["master"] == "br100" and "UP" in vx["flags"]
        assert details(ns, "br100").get("ifalias") == "operator bridge"  # adopted, not re-marked
        # The VNI leaves the configuration: adopted devices stay, created ones would go.
        await dp.reconfigure(config(vtep="fd00::1", l2vnis=[], l3vnis=[]))
        assert details(ns, "br100")["ifname"] == "br100"
        assert details(ns, "vx100")["ifname"] == "vx100"
    finally:
        await dp.stop()


async def test_created_devices_go_when_their_vni_is_removed(lab):
    ns = leaf(lab)
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        await dp.reconfigure(config(l3vnis=[]))
        names = {link["ifname"] for link in json.loads(ns.ip("-j", "link", "show"))}
        assert "vx200" not in names and "br200" not in names
        assert {"vx100", "br100"} <= names
    finally:
        await dp.stop()


async def test_programming_from_desired_state_and_withdrawal(lab):
    ns = leaf(lab)
    d = DesiredState()
    d.fdb[100] = {M1: "10.0.0.2", M2: "10.0.0.3"}
    d.flood[100] = {"10.0.0.2", "10.0.0.3"}
    d.neigh[100] = {"10.1.0.50": M1, "fd00:1::50": M2}
    d.routes[200] = {
        "192.168.5.0/24": RouteNextHop("10.0.0.2", RMAC2),
        "2001:db8:5::/64": RouteNextHop("10.0.0.2", RMAC2),
    }
    d.rmacs[200] = {"10.0.0.2": RMAC2}
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(d)
    try:
        assert remote(ns, "vx100") == {M1: "10.0.0.2", M2: "10.0.0.3"}
        assert bridged(ns, "vx100") == {M1, M2}
        assert flood(ns, "vx100") == {"10.0.0.2", "10.0.0.3"}
        neigh = ns.ip("neigh", "show", "dev", "br100")
        assert f"10.1.0.50 lladdr {M1} extern_learn NOARP proto 235" in neigh
        assert f"fd00:1::50 lladdr {M2} extern_learn NOARP proto 235" in ns.ip(
            "-6", "neigh", "show", "dev", "br100"
        )
        routes = ns.ip("route", "show", "table", "200")
        assert "192.168.5.0/24 via 10.0.0.2 dev br200 proto 235 onlink" in routes
        assert "2001:db8:5::/64 via ::ffff:10.0.0.2 dev br200 proto 235" in ns.ip(
            "-6", "route", "show", "table", "200"
        )
        assert remote(ns, "vx200") == {RMAC2: "10.0.0.2"}
        assert f"10.0.0.2 lladdr {RMAC2} extern_learn NOARP proto 235" in ns.ip(
            "neigh", "show", "dev", "br200"
        )
        assert f"::ffff:10.0.0.2 lladdr {RMAC2} extern_learn NOARP proto 235" in ns.ip(
            "-6", "neigh", "show", "dev", "br200"
        )
        assert dp.kernel_diff()["counts"] == {
            "missing": 0, "extra": 0, "different": 0, "conflicts": 0,
        }  # fmt: skip

        # A MAC moves to another VTEP, one is withdrawn, a flood entry and a route go.
        d.fdb[100][M1] = "10.0.0.4"
        del d.fdb[100][M2]
        d.flood[100].discard("10.0.0.3")
        del d.neigh[100]["10.1.0.50"]
        del d.routes[200]["192.168.5.0/24"]
        for key in [(FDB, 100, M1), (FDB, 100, M2), (FLOOD, 100, "10.0.0.3"),
                    (NEIGH, 100, "10.1.0.50"), (ROUTE, 200, "192.168.5.0/24")]:  # fmt: skip
            mark(d, *key)
        dp.wanted_changed()
        await dp.idle()
        assert remote(ns, "vx100") == {M1: "10.0.0.4"}
        assert bridged(ns, "vx100") == {M1}
        assert flood(ns, "vx100") == {"10.0.0.2"}
        assert "10.1.0.50" not in ns.ip("neigh", "show", "dev", "br100")
        assert "192.168.5.0" not in ns.ip("route", "show", "table", "200")
        # The last route to that VTEP goes and so does its router MAC.
        d.routes[200].clear()
        d.rmacs[200].clear()
        mark(d, ROUTE, 200, "2001:db8:5::/64")
        mark(d, RMAC, 200, "10.0.0.2")
        dp.wanted_changed()
        await dp.idle()
        assert remote(ns, "vx200") == {} and bridged(ns, "vx200") == set()
        assert "10.0.0.2" not in ns.ip("neigh", "show", "dev", "br200")
        assert "10.0.0.2" not in ns.ip("-6", "neigh", "show", "dev", "br200")
        assert dp.stats()["errors"] == 0
    finally:
        await dp.stop()


async def test_drift_repair_and_hand_made_entries_left_alone(lab):
    ns = leaf(lab)
    d = DesiredState()
    d.fdb[100] = {M1: "10.0.0.2", M2: "10.0.0.2"}
    d.neigh[100] = {"10.1.0.50": M1}
    d.routes[200] = {"192.168.5.0/24": RouteNextHop("10.0.0.2", RMAC2)}
    d.rmacs[200] = {"10.0.0.2": RMAC2}
    d.flood[100] = {"10.0.0.2", "10.0.0.3"}
    dp = Dataplane(config(hold=0), lambda e: None, netns=ns.name)
    await dp.start(d)
    try:
        # A person's entries: a static MAC on evpnd's vxlan device, a permanent neighbour,
        # and one that collides with a MAC evpnd will be asked for later.
        ns.run(["bridge", "fdb", "add", M3, "dev", "vx100", "dst", "10.0.0.9", "self"])
        ns.ip("neigh", "add", "10.1.0.99", "lladdr", M3, "dev", "br100")
        hand = "02:00:00:00:00:77"
        ns.run(["bridge", "fdb", "add", hand, "dev", "vx100", "dst", "10.0.0.8", "self"])
        await asyncio.sleep(0.1)
        d.fdb[100][hand] = "10.0.0.2"
        mark(d, FDB, 100, hand)
        dp.wanted_changed()
        await dp.idle()

        t0 = time.monotonic()
        ns.run(["bridge", "fdb", "del", M1, "dev", "vx100", "self"])
        ns.run(["bridge", "fdb", "del", M2, "dev", "vx100", "master"])
        ns.ip("neigh", "del", "10.1.0.50", "dev", "br100")
        ns.ip("route", "del", "192.168.5.0/24", "table", "200")
        ns.ip("neigh", "del", "10.0.0.2", "dev", "br200")
        ns.run(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx100", "dst", "10.0.0.3"])

        def repaired() -> bool:
            return (
                remote(ns, "vx100").get(M1) == "10.0.0.2"
                and M2 in bridged(ns, "vx100")
                and "10.1.0.50" in ns.ip("neigh", "show", "dev", "br100")
                and "192.168.5.0/24" in ns.ip("route", "show", "table", "200")
                and "10.0.0.2" in ns.ip("neigh", "show", "dev", "br200")
                and flood(ns, "vx100") == {"10.0.0.2", "10.0.0.3"}
            )

        await wait_until(repaired, timeout=1.0, what="deleted entries back within 1 s")
        repair_time = time.monotonic() - t0
        await dp.reconcile_all(redump=True)  # a full pass with the hold time over
        lines = "\n".join(fdb_lines(ns, "vx100"))
        assert f"{M3} dst 10.0.0.9 self permanent" in lines
        assert f"{hand} dst 10.0.0.8 self permanent" in lines  # not taken over
        assert "10.1.0.99" in ns.ip("neigh", "show", "dev", "br100")
        assert dp.stats()["conflicts"] >= 1
        assert any(c["key"] == hand for c in dp.kernel_diff()["conflicts"])
        print(f"drift repaired in {repair_time * 1000:.0f} ms")
    finally:
        await dp.stop()


def fill(d: DesiredState, n: int, vteps: int = 16) -> list[str]:
    macs = [f"02:10:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(n)]
    d.fdb[100] = {m: f"10.0.0.{2 + i % vteps}" for i, m in enumerate(macs)}
    d.neigh[100] = {f"10.1.{1 + i // 250}.{1 + i % 250}": macs[i] for i in range(500)}
    d.neigh[100] |= {f"fd00:1::{i + 1:x}": macs[i] for i in range(500)}
    d.routes[200] = {
        f"192.168.{i}.0/24": RouteNextHop(f"10.0.0.{2 + i % vteps}", None) for i in range(200)
    }
    d.routes[200]["2001:db8:1::/64"] = RouteNextHop("10.0.0.2", None)
    d.rmacs[200] = {f"10.0.0.{2 + i}": f"02:ee:00:00:00:{2 + i:02x}" for i in range(vteps)}
    return macs


class NeighWatch:
    """Every RTM_NEWNEIGH/RTM_DELNEIGH in a namespace, on a socket with a large buffer (iproute2's
    `bridge monitor` can drop events under a burst)."""

    def __init__(self, netns: str) -> None:
        self.events: list[tuple[bool, str | None, int]] = []  # (deleted, MAC, flags)
        self.overrun = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(netns,), daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self, netns: str) -> None:
        enter_netns(netns)
        sock = nl.open_socket(groups=(nl.RTNLGRP_NEIGH,), rcvbuf=64 << 20)
        sock.settimeout(0.05)
        self._ready.set()
        buf = bytearray(1 << 16)
        with sock:
            while not self._stop.is_set():
                try:
                    size = sock.recv_into(buf)
                except TimeoutError:
                    continue
                except OSError:
                    self.overrun = True
                    continue
                for mtype, _f, _s, off, end in nl.iter_messages(buf, size):
                    if mtype in (nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH):
                        n = nl.parse_neigh(mtype, buf, off, end)
                        if n.family == nl.AF_BRIDGE:
                            self.events.append((n.deleted, n.mac, n.flags))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.slow
async def test_restart_over_installed_entries_keeps_wanted_and_sweeps_after_hold(lab):
    ns = leaf(lab)
    first = DesiredState()
    macs = fill(first, 10_000)
    first.flood[100] = {"10.0.0.2", "10.0.0.3"}
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(first)
    await dp.stop()
    assert len(remote(ns, "vx100")) == 10_000
    assert dp.stats()["errors"] == 0

    watch = NeighWatch(ns.name)
    try:
        second = DesiredState()
        fill(second, 10_000)
        for mac in macs[9_000:]:  # 1000 no longer wanted after the restart
            del second.fdb[100][mac]
        second.flood[100] = {"10.0.0.2"}
        hold = 2.0
        dp2 = Dataplane(config(hold=hold), lambda e: None, netns=ns.name)
        t0 = time.monotonic()
        await dp2.start(second)
        try:
            await asyncio.sleep(max(0.0, hold - 0.5 - (time.monotonic() - t0)))
            st = dp2.stats()
            assert st["ops"] == 0, st  # nothing re-added, nothing deleted yet
            assert st["owned"]["neigh"] == 1000 + 2 * 16 and st["owned"]["route"] == 201
            assert watch.events == []
            assert len(remote(ns, "vx100")) == 10_000
            # Within the hold time the core's own withdrawals still apply at once, also when a
            # full pass picks them up; only the sweep of unconfirmed leftovers waits.
            del second.fdb[100][macs[0]]
            mark(second, FDB, 100, macs[0])
            await dp2.reconcile_all()
            assert macs[0] not in remote(ns, "vx100") and len(remote(ns, "vx100")) == 9_999
            await wait_until(lambda: len(remote(ns, "vx100")) == 8_999, timeout=5.0,
                             what="sweep after the hold time")  # fmt: skip
            await asyncio.sleep(0.3)
        finally:
            await dp2.stop()
    finally:
        watch.stop()
    assert not watch.overrun
    added = [e for e in watch.events if not e[0]]
    deleted = {(e[1], bool(e[2] & nl.NTF_SELF)) for e in watch.events if e[0]}
    gone = set(macs[9_000:]) | {macs[0]}
    assert added == []  # no wanted entry was deleted and re-added
    # each unwanted MAC's vxlan and bridge halves, and the one unwanted flood entry
    assert deleted == {(m, s) for m in gone for s in (True, False)} | {(nl.ZERO_MAC, True)}
    assert len(remote(ns, "vx100")) == 8_999 and flood(ns, "vx100") == {"10.0.0.2"}


async def test_deleted_device_comes_back_with_its_entries_and_late_ports_are_enslaved(lab):
    ns = lab.netns("dp")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    d = DesiredState()
    d.fdb[100] = {M1: "10.0.0.2"}
    d.flood[100] = {"10.0.0.2"}
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(d)  # access port p1 does not exist yet
    try:
        assert "p1" not in ns.ip("link", "show")
        ns.ip("link", "add", "p1", "type", "veth", "peer", "name", "h1")  # e.g. a VM's tap
        await wait_until(lambda: "master br100" in ns.ip("link", "show", "p1"), 2.0, "enslaved")
        ns.ip("link", "del", "vx100")
        await wait_until(
            lambda: remote(ns, "vx100") == {M1: "10.0.0.2"} and flood(ns, "vx100") == {"10.0.0.2"},
            3.0,
            "vx100 recreated and reprogrammed",
        )
        assert details(ns, "vx100")["master"] == "br100"
    finally:
        await dp.stop()


async def test_reconfigured_vtep_address_is_applied_to_existing_devices(lab):
    ns = leaf(lab)
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        await dp.reconfigure(config(vtep="10.0.0.5", underlay_mtu=9000))
        vx = details(ns, "vx100")
        assert vx["linkinfo"]["info_data"]["local"] == "10.0.0.5" and vx["mtu"] == 8950
        assert details(ns, "vx200")["linkinfo"]["info_data"]["local"] == "10.0.0.5"
        assert dp.stats()["device_problems"] == []
    finally:
        await dp.stop()


async def test_vtep_moved_to_ipv6_remakes_owned_vxlan_devices_with_their_entries(lab):
    """Issue 16: the kernel refuses to change a VXLAN device's address family in place; a
    device evpnd made is made again (and its entries re-installed), an adopted one is a named
    device problem."""
    ns = leaf(lab)
    ns.ip("addr", "add", "fd00::1/64", "dev", "u0", "nodad")
    ns.ip("link", "add", "vx300", "type", "vxlan", "id", "300", "dstport", "4789",
          "local", "10.0.0.1", "nolearning")  # fmt: skip
    d = DesiredState()
    d.fdb[100], d.flood[100] = {M1: "10.0.0.2"}, {"10.0.0.2"}
    v4 = config(l3vnis=[], l2vnis=[{"vni": 100, "bridge": "br100"},
                                   {"vni": 300, "bridge": "br300"}])  # fmt: skip
    dp = Dataplane(v4, lambda e: None, netns=ns.name)
    await dp.start(d)
    try:
        assert remote(ns, "vx100") == {M1: "10.0.0.2"} and flood(ns, "vx100") == {"10.0.0.2"}
        v6 = config(vtep="fd00::1", l3vnis=[], l2vnis=v4.model_dump()["l2vnis"])
        d.fdb[100], d.flood[100] = {M1: "fd00::2"}, {"fd00::2"}
        for kind, key in ((FDB, M1), (FLOOD, "10.0.0.2"), (FLOOD, "fd00::2")):
            mark(d, kind, 100, key)
        await dp.reconfigure(v6)
        await dp.idle()
        assert details(ns, "vx100")["linkinfo"]["info_data"]["local6"] == "fd00::1"
        assert details(ns, "vx100")["ifalias"] == "evpnd:vni=100"
        assert remote(ns, "vx100") == {M1: "fd00::2"} and flood(ns, "vx100") == {"fd00::2"}
        problems = dp.stats()["device_problems"]
        assert (
            len(problems) == 1
            and "vni 300: l2vnis[1].vxlan_device: vx300 sends from 10.0.0.1" in problems[0]
        )
        assert details(ns, "vx300")["linkinfo"]["info_data"]["local"] == "10.0.0.1"  # untouched
    finally:
        await dp.stop()


async def test_devices_of_vnis_dropped_while_down_go_after_the_hold_time(lab):
    ns = leaf(lab)
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    await dp.stop()
    ns.ip("link", "add", "brx", "type", "bridge")  # someone else's device: never touched
    dp = Dataplane(config(hold=0.5, l3vnis=[]), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:

        def names() -> set[str]:
            return {link["ifname"] for link in json.loads(ns.ip("-j", "link", "show"))}

        assert {"vx200", "br200"} <= names()  # kept while the hold time runs
        await wait_until(lambda: not {"vx200", "br200"} & names(), 3.0, "stale devices removed")
        assert {"vx100", "br100", "brx"} <= names()
    finally:
        await dp.stop()


async def test_monitor_overrun_leads_to_a_fresh_dump_and_nothing_is_missed(lab):
    ns = leaf(lab)
    events: list = []
    d = DesiredState()
    d.fdb[100] = {M1: "10.0.0.2"}
    dp = Dataplane(config(), collect(events), netns=ns.name)
    await dp.start(d)
    try:
        assert dp.backend is not None
        dp.backend.monitor.setsockopt(socket.SOL_SOCKET, nl.SO_RCVBUFFORCE, 4096)
        batch = "\n".join(
            f"fdb add 02:55:00:00:{i >> 8:02x}:{i & 255:02x} dev p1 master static"
            for i in range(500)
        )
        ns.run(["bridge", "fdb", "del", M1, "dev", "vx100", "self"])  # lost in the overrun
        subprocess.run(ns.cmd("bridge", "-batch", "-"), input=batch, text=True, check=True)
        time.sleep(0.2)  # the loop is busy elsewhere: notifications pile up and overflow
        await wait_until(lambda: dp.stats()["overruns"] >= 1, 3.0, "an overrun")
        await wait_until(
            lambda: len({e.mac for e in events if e.sticky}) == 500, 5.0, "all MACs learned"
        )
        await wait_until(lambda: remote(ns, "vx100") == {M1: "10.0.0.2"}, 3.0, "repaired")
        assert dp.stats()["dumps"] >= 2
    finally:
        await dp.stop()


async def test_adding_a_vni_leaves_the_others_alone(lab):
    ns = leaf(lab)
    d = DesiredState()
    d.fdb[100] = {M1: "10.0.0.2", M2: "10.0.0.3"}
    dp = Dataplane(config(l3vnis=[]), lambda e: None, netns=ns.name)
    await dp.start(d)
    try:
        ops = dp.stats()["ops"]
        watch = NeighWatch(ns.name)
        await dp.reconfigure(config())  # adds L3VNI 200
        watch.stop()
        assert details(ns, "vx200")["master"] == "br200"
        assert dp.stats()["ops"] == ops  # nothing rewritten...
        assert [e for e in watch.events if e[1] in (M1, M2)] == []  # ...nor touched
        assert remote(ns, "vx100") == {M1: "10.0.0.2", M2: "10.0.0.3"}
    finally:
        await dp.stop()


async def test_one_refused_operation_does_not_stop_its_batch(lab):
    ns = leaf(lab)
    d = DesiredState()
    # The middle one is refused by the kernel (an IPv6 remote on an IPv4 VXLAN device).
    d.fdb[100] = {M1: "10.0.0.2", M2: "fd00::2", M3: "10.0.0.3"}
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(d)
    try:
        st = dp.stats()
        assert st["errors"] == 1 and st["last_errors"][0]["key"] == M2
        assert remote(ns, "vx100") == {M1: "10.0.0.2", M3: "10.0.0.3"}
        missing = dp.kernel_diff()["missing"]
        assert [(m["kind"], m["key"]) for m in missing] == [("fdb", M2)]
    finally:
        await dp.stop()
