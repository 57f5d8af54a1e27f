"""Symmetric IRB end to end with VRFs: two leaves (namespaces, each with a Dataplane given a
desired state by hand, as tests/netns/test_dataplane_traffic.py does for L2), an L3VNI with
`vrf: vrf-blue` on each, and a host in a different subnet behind each. The type-5 route in the
VRF's table, the remote VTEP's router-MAC neighbour and its FDB entry are the only path: no
`ip rule` steers anything (the host tier needs one, as it has no VRF).

Parametrised by underlay family: over IPv6 the VTEPs are 2001:db8:77::1/::2 (no IPv4 on the
underlay link), the IPv4 prefix's route goes `via inet6 VTEP` (RTA_VIA) and the router-MAC
neighbour is an IPv6 one. The VRF is what makes the IPv6 onlink gateway acceptable: the kernel
checks it against the device's l3mdev table (see README, "IPv6 underlay")."""

from __future__ import annotations

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import RMAC, ROUTE, DesiredState, RouteNextHop
from evpnd.dataplane import Dataplane
from tests.netns.test_dataplane_traffic import H1_MAC, H2_MAC, Capture, host, ping

pytestmark = pytest.mark.netns

RMAC1, RMAC2 = "02:ee:00:00:00:01", "02:ee:00:00:00:02"


UNDERLAY = {
    4: (("10.0.0.1/24", "10.0.0.2/24"), ("10.0.0.1", "10.0.0.2")),
    6: (("2001:db8:77::1/64", "2001:db8:77::2/64"), ("2001:db8:77::1", "2001:db8:77::2")),
}


def vrf_config(vtep: str, vni: int, svi: str, rmac: str, router_id: str = ""):
    return parse_config(
        {
            "router_id": router_id or vtep,
            "asn": 65001,
            "vtep": vtep,
            "sweep_hold_time": 0,
            "l2vnis": [
                {"vni": vni, "bridge": f"br{vni}", "access_ports": ["p1"], "svi_address": svi}
            ],
            "l3vnis": [{"vni": 200, "vrf": "vrf-blue", "router_mac": rmac, "l2vnis": [vni]}],
        }
    )


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4-underlay", "ipv6-underlay"])
async def test_routed_ping_between_subnets_over_the_l3vni_with_vrfs(lab, family):
    (addr1, addr2), (vtep1, vtep2) = UNDERLAY[family]
    l1, l2 = lab.netns("leaf1"), lab.netns("leaf2")
    lab.link(l1, "u0", l2, "u0")
    l1.ip("addr", "add", addr1, "dev", "u0", "nodad")
    l2.ip("addr", "add", addr2, "dev", "u0", "nodad")
    h1 = host(lab, l1, "h1", "p1", H1_MAC, "10.1.0.11")
    h2 = host(lab, l2, "h2", "p1", H2_MAC, "10.2.0.12")
    h1.ip("route", "add", "default", "via", "10.1.0.1")
    h2.ip("route", "add", "default", "via", "10.2.0.1")
    sides = []
    for leaf, vtep, vni, svi, rmac, rid in (
        (l1, vtep1, 100, "10.1.0.1/24", RMAC1, "10.0.0.1"),
        (l2, vtep2, 101, "10.2.0.1/24", RMAC2, "10.0.0.2"),
    ):
        leaf.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        d = DesiredState()
        cfg = vrf_config(vtep, vni, svi, rmac, rid)
        dp = Dataplane(cfg, lambda e: None, netns=leaf.name)
        await dp.start(d)
        assert dp.stats()["device_problems"] == []
        sides.append((leaf, d, dp))
    try:
        assert not await ping(h1, "10.2.0.12", count=1)  # no type-5 route yet: no path
        assert "10.2.0.0/24" not in l1.ip("route", "show", "table", "all")
        for (_leaf, d, dp), prefix, vtep, rmac in (
            (sides[0], "10.2.0.0/24", vtep2, RMAC2),
            (sides[1], "10.1.0.0/24", vtep1, RMAC1),
        ):
            d.routes[200] = {prefix: RouteNextHop(vtep, rmac)}
            d.rmacs[200] = {vtep: rmac}
            d.dirty |= {(ROUTE, 200, prefix), (RMAC, 200, vtep)}
            dp.wanted_changed()
            await dp.idle()
        via = vtep2 if family == 4 else f"inet6 {vtep2}"
        assert f"10.2.0.0/24 via {via} dev br200 proto 235 onlink" in l1.ip(
            "route", "show", "vrf", "vrf-blue"
        )
        assert RMAC2 in l1.ip("neigh", "show", vtep2, "dev", "br200").lower()
        cap = Capture(l2, "u0", ["udp", "port", "4789"])
        assert await ping(h1, "10.2.0.12", count=2)
        frames = "\n".join(cap.stop())
        # Routed over the L3VNI: the inner frames carry the router MACs and VNI 200 both ways,
        # never the hosts' MACs (those stay on each leaf's own subnet).
        assert "vni 200" in frames and f"{RMAC1} > {RMAC2}" in frames, frames
        assert f"{RMAC2} > {RMAC1}" in frames, frames
        assert H1_MAC not in frames and H2_MAC not in frames
        assert "vni 100" not in frames and "vni 101" not in frames

        # The type-5 route withdrawn on leaf1: the path is gone again.
        _leaf, d, dp = sides[0]
        d.routes[200] = {}
        d.dirty.add((ROUTE, 200, "10.2.0.0/24"))
        dp.wanted_changed()
        await dp.idle()
        assert not await ping(h1, "10.2.0.12", count=1)
        assert all(dp.stats()["errors"] == 0 for _l, _d, dp in sides)
    finally:
        for _leaf, _d, dp in sides:
            await dp.stop()
