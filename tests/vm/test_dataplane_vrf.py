"""An L3VNI with `vrf: vrf-blue` on a kernel with VRFs: the Dataplane creates the VRF (table =
the VNI when none is configured, marked with evpnd's ifalias), puts the L3VNI's bridge and its
L2VNIs' SVIs into it, installs type-5 routes into the VRF's table with the router-MAC FDB and
neighbour entries, repairs all that when the VRF is deleted by hand, withdraws routes, adopts
the VRF after a restart and removes it with its VNI."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import RMAC, ROUTE, DesiredState, RouteNextHop
from evpnd.dataplane import Dataplane
from evpnd.lab.netns import Netns

pytestmark = pytest.mark.netns

RMAC1, RMAC2 = "02:ee:00:00:00:01", "02:ee:00:00:00:02"
VTEP2 = "10.0.0.2"


def config(with_l3: bool = True, **l3):
    return parse_config(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "vtep": "10.0.0.1",
            "sweep_hold_time": 0,
            "l2vnis": [{"vni": 100, "bridge": "br100", "svi_address": "10.1.0.1/24"}],
            "l3vnis": [{"vni": 200, "vrf": "vrf-blue", "router_mac": RMAC1, "l2vnis": [100], **l3}]
            if with_l3
            else [],
        }
    )


def leaf(lab) -> Netns:
    ns = lab.netns("vrf")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    ns.ip("link", "set", "u0", "up")
    ns.ip("link", "set", "u1", "up")
    return ns


def link(ns: Netns, dev: str) -> dict:
    return json.loads(ns.ip("-d", "-j", "link", "show", dev))[0]


def all_back(ns: Netns) -> bool:
    try:
        masters = [link(ns, dev).get("master") for dev in ("br200", "br100")]
    except RuntimeError:  # a device not there (yet)
        return False
    return (
        masters == ["vrf-blue", "vrf-blue"]
        and "10.2.0.0/24 via 10.0.0.2 dev br200" in ns.ip("route", "show", "vrf", "vrf-blue")
        and RMAC2 in ns.ip("neigh", "show", "10.0.0.2", "dev", "br200")
    )


async def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def program(dp: Dataplane, desired: DesiredState, routes: dict[str, RouteNextHop]) -> None:
    old = desired.routes.get(200, {})
    desired.routes[200] = dict(routes)
    desired.rmacs[200] = {nh.vtep: nh.router_mac for nh in routes.values() if nh.router_mac}
    desired.dirty |= {(ROUTE, 200, p) for p in old.keys() | routes.keys()}
    desired.dirty |= {(RMAC, 200, nh.vtep) for nh in [*old.values(), *routes.values()]}
    dp.wanted_changed()


async def test_vrf_is_made_bridges_enslaved_and_type5_routes_land_in_its_table(lab):
    ns = leaf(lab)
    desired = DesiredState()
    nh = RouteNextHop(VTEP2, RMAC2)
    program_now = {"10.2.0.0/24": nh, "fd00:2::/64": nh, "0.0.0.0/0": nh}
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(desired)
    try:
        assert dp.stats()["device_problems"] == []
        vrf = link(ns, "vrf-blue")
        assert vrf["linkinfo"]["info_kind"] == "vrf"
        assert vrf["linkinfo"]["info_data"]["table"] == 200  # no table configured: the VNI
        assert vrf["ifalias"] == "evpnd:vni=200" and "UP" in vrf["flags"]
        for dev in ("br200", "br100"):  # the L3VNI's bridge and the L2VNI's SVI
            assert link(ns, dev)["master"] == "vrf-blue", dev
        assert link(ns, "vx200")["master"] == "br200"
        # The SVI's subnet moved into the VRF's table with it.
        assert "10.1.0.0/24 dev br100" in ns.ip("route", "show", "vrf", "vrf-blue")
        # A miss in the VRF does not fall through to the main table (the underlay).
        ns.ip("route", "add", "default", "via", "10.0.0.2")
        for family in ("-4", "-6"):
            catch_all = ns.ip(family, "route", "show", "vrf", "vrf-blue", "default")
            assert "unreachable default" in catch_all and "metric 4278198272" in catch_all
        assert "dev u0" not in ns.run(["ip", "route", "get", "vrf", "vrf-blue", "10.9.9.9"], False)

        program(dp, desired, program_now)
        await dp.idle()
        v4 = ns.ip("route", "show", "vrf", "vrf-blue")
        assert "10.2.0.0/24 via 10.0.0.2 dev br200 proto 235 onlink" in v4, v4
        v6 = ns.ip("-6", "route", "show", "vrf", "vrf-blue")
        assert "fd00:2::/64 via ::ffff:10.0.0.2 dev br200 proto 235" in v6, v6
        assert "10.2.0.0/24" in ns.ip("route", "show", "table", "200")
        # A type-5 default goes in front of the VRF's catch-all (no conflict between them).
        assert "default via 10.0.0.2 dev br200 proto 235 onlink" in v4, v4
        got = ns.ip("route", "get", "vrf", "vrf-blue", "10.9.9.9")
        assert "via 10.0.0.2 dev br200" in got, got
        assert "10.2.0.0/24" not in ns.ip("route", "show")  # not in main
        neigh = ns.ip("neigh", "show", "dev", "br200")
        assert f"10.0.0.2 lladdr {RMAC2} extern_learn NOARP proto 235" in neigh, neigh
        assert RMAC2 in ns.ip("-6", "neigh", "show", "::ffff:10.0.0.2", "dev", "br200")
        fdb = ns.run(["bridge", "fdb", "show", "dev", "vx200"])
        assert f"{RMAC2} dst 10.0.0.2 self extern_learn" in fdb, fdb
        # (the bridge half; a kernel with bridge VLAN support also adds one for the port's pvid)
        assert f"{RMAC2} extern_learn master br200" in fdb, fdb
        assert dp.kernel_diff()["counts"] == {
            "missing": 0, "extra": 0, "different": 0, "conflicts": 0
        }  # fmt: skip

        # Drift: the VRF deleted by hand, a bridge taken out of it. Both come back (with the
        # route and the router MAC's neighbour, which leaving the VRF flushed) within seconds.
        for drift in (["link", "del", "vrf-blue"], ["link", "set", "br100", "nomaster"]):
            ns.ip(*drift)
            await wait_until(lambda: all_back(ns), what=f"repair after {drift}")
        assert dp.kernel_diff()["counts"]["missing"] == 0

        # Withdrawn: the v4 routes go (not the catch-all), the v6 route and the router MAC stay.
        program(dp, desired, {"fd00:2::/64": nh})
        await dp.idle()
        v4 = ns.ip("route", "show", "vrf", "vrf-blue")
        assert "10.2.0.0/24" not in v4 and "proto 235" not in v4, v4
        assert "unreachable default" in v4, v4
        assert "fd00:2::/64" in ns.ip("-6", "route", "show", "vrf", "vrf-blue")
        assert RMAC2 in ns.run(["bridge", "fdb", "show", "dev", "vx200"])
        assert dp.stats()["errors"] == 0
    finally:
        await dp.stop()

    # A restart adopts the VRF (same device, nothing re-made) and keeps the installed route.
    vrf_index = link(ns, "vrf-blue")["ifindex"]
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(desired)
    try:
        assert dp.dm.vnis[200].created == [] and dp.dm.vnis[200].table == 200
        assert link(ns, "vrf-blue")["ifindex"] == vrf_index
        assert "fd00:2::/64" in ns.ip("-6", "route", "show", "vrf", "vrf-blue")
        # The L3VNI leaves the configuration: evpnd's VRF and devices go, the L2 SVI stays.
        await dp.reconfigure(config(with_l3=False))
        links = ns.ip("-br", "link")
        assert "vrf-blue" not in links and "br200" not in links and "vx200" not in links
        assert "master" not in ns.ip("link", "show", "br100")
        assert dp.stats()["device_problems"] == []
        for family in ("-4", "-6"):  # the VRF's catch-all went with it
            assert "unreachable" not in ns.ip(family, "route", "show", "table", "200")
    finally:
        await dp.stop()


async def test_adopted_vrf_with_another_table_is_a_device_problem(lab):
    ns = leaf(lab)
    ns.ip("link", "add", "vrf-blue", "type", "vrf", "table", "7")
    dp = Dataplane(config(table=42), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        problems = dp.stats()["device_problems"]
        want = "vni 200: l3vnis[0]: VRF vrf-blue uses table 7, configured 42"  # field path named
        assert problems == [want], problems
        assert "br200" not in ns.ip("-br", "link")  # nothing made for it
        # Without a configured table the adopted VRF's own is used.
        await dp.reconfigure(config())
        assert dp.stats()["device_problems"] == []
        assert dp.dm.vnis[200].table == 7 and dp.dm.vnis[200].created == ["br200", "vx200"]
        assert link(ns, "br200")["master"] == "vrf-blue"
    finally:
        await dp.stop()
    assert "vrf-blue" in ns.ip("-br", "link")  # the operator's VRF is never deleted
