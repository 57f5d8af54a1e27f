"""GoBGP 3.10 (Debian gobgpd) as evpnd's peer: eBGP route exchange, and iBGP route reflector.

GoBGP has no dataplane of its own: routes are injected with the `gobgp` CLI exactly as an
operator or an SDN controller would, with GoBGP's namespace address as next hop and VTEP.
"""

from __future__ import annotations

import pytest

from evpnd.lab.gobgp import GoBgp, GoBgpNeighbor, gobgp_conf
from evpnd.lab.netns import wait_for
from tests.netns.fabric import (
    Leaf,
    add_host,
    evpnd_config,
    host_mac,
    start_evpnd,
    two_leaves,
    wait_ping,
)

pytestmark = pytest.mark.netns

GOBGP_MAC = "02:bb:00:00:00:01"
GOBGP_MAC_IP = ("02:bb:00:00:00:02", "10.100.0.12")
RT = "65002:100"
RMAC_A = "02:00:00:00:ee:01"
RMAC_GOBGP = "02:bb:00:00:ee:02"
VXLAN_TUNNEL_TYPE = 8  # RFC 9012 section 14.1 (BGP encapsulation extended community)


def routes(node, **filters) -> list[dict]:
    return node.data("show routes", **filters)["routes"]


def attr(path: dict, code: int) -> dict | list | None:
    for a in path.get("attrs", []):
        if a.get("type") == code:
            return a
    return None


def gobgp_paths(gobgp: GoBgp, route_type: int, **fields) -> list[dict]:
    """GoBGP's EVPN paths of one type whose NLRI fields match (e.g. mac=..., ip=...)."""
    out = []
    for p in gobgp.evpn_rib():
        nlri = p.get("nlri", {})
        value = nlri.get("value", {})
        if nlri.get("type") == route_type and all(value.get(k) == v for k, v in fields.items()):
            out.append(p)
    return out


def ext_communities(path: dict) -> tuple[set[str], set[int]]:
    """(route targets, encapsulation tunnel types) from GoBGP's JSON of attribute 16."""
    rts, tunnels = set(), set()
    for c in (attr(path, 16) or {}).get("value", []):
        if c.get("subtype") == 2 and "value" in c:
            rts.add(c["value"])
        if c.get("type") == 3 and c.get("subtype") == 12:
            tunnels.add(c.get("tunnel_type"))
    return rts, tunnels


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4-underlay", "ipv6-underlay"])
def test_evpnd_and_gobgp_exchange_types_2_and_3_over_ebgp(lab, family):
    """Over IPv6 (issue 16): an IPv6-only link, the session over IPv6, every next hop, type-3
    originator and PMSI tunnel endpoint an IPv6 VTEP, both ways; RDs use the IPv4 router ids."""
    # a: evpnd AS 65001 (10.0.0.1 or 2001:db8:77::1), b: GoBGP AS 65002 (10.0.0.2 or ::2)
    a, b = two_leaves(lab, family)
    a_id, b_id = a.router_id or a.vtep, b.router_id or b.vtep
    gobgp = GoBgp(b.ns, gobgp_conf(b.asn, b_id, [GoBgpNeighbor(a.vtep, a.asn)])).start()
    lab.on_cleanup(gobgp.remove)
    h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    start_evpnd(
        lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}])
    )
    wait_for(lambda: gobgp.established(a.vtep), 20, interval=0.2, what="GoBGP <-> evpnd session")

    # --- GoBGP -> evpnd: type 2 (MAC only, and MAC+IP) and type 3, label = VNI 100
    common = ["etag", "0", "label", "100", "rd", f"{b_id}:100", "rt", RT, "encap", "vxlan"]
    gobgp.add_evpn("macadv", GOBGP_MAC, "0.0.0.0", *common, "nexthop", b.vtep)
    # the MAC+IP route with a type-0 RD (ASN:number), the others with type 1 (IP:number)
    common_rd0 = [w if w != f"{b_id}:100" else "65002:7" for w in common]
    gobgp.add_evpn("macadv", *GOBGP_MAC_IP, *common_rd0, "nexthop", b.vtep)
    gobgp.add_evpn(
        "multicast", b.vtep, "etag", "0", "rd", f"{b_id}:100", "rt", RT, "encap", "vxlan",
        "pmsi", "ingress-repl", "100", b.vtep, "nexthop", b.vtep,
    )  # fmt: skip

    def received_type2() -> dict[tuple[str, str | None], dict]:
        return {(r["mac"], r["ip"]): r for r in routes(a.node, type=2) if r["peer"] == b.vtep}

    got = wait_for(lambda: len(received_type2()) == 2 and received_type2(), 15, interval=0.2,
                   what="GoBGP's type-2 routes in evpnd's RIB")  # fmt: skip
    mac_only = got[(GOBGP_MAC, None)]
    mac_ip = got[GOBGP_MAC_IP]
    assert mac_only["rd"] == f"{b_id}:100" and mac_ip["rd"] == "65002:7"
    for r in (mac_only, mac_ip):
        assert r["vni"] == 100 and r["next_hop"] == b.vtep and RT in r["route_targets"], r
        assert r["as_path"] == [b.asn] and "best" in r["flags"], r
    r3 = wait_for(lambda: [r for r in routes(a.node, type=3) if r["peer"] == b.vtep], 10,
                  what="GoBGP's type-3 route in evpnd's RIB")  # fmt: skip
    assert len(r3) == 1 and r3[0]["origin"] == b.vtep and r3[0]["vni"] == 100, r3
    assert r3[0]["next_hop"] == b.vtep and RT in r3[0]["route_targets"], r3

    # ... and in evpnd's kernel: FDB entries towards GoBGP's VTEP, and a flood entry for it
    wait_for(lambda: a.remote_macs("vx100").get(GOBGP_MAC) == b.vtep, 10,
             what="FDB entry for GoBGP's MAC")  # fmt: skip
    wait_for(lambda: a.remote_macs("vx100").get(GOBGP_MAC_IP[0]) == b.vtep, 10,
             what="FDB entry for GoBGP's MAC+IP route")  # fmt: skip
    wait_for(lambda: a.flood("vx100") == {b.vtep}, 10, what="flood entry for GoBGP's VTEP")
    # the MAC+IP route also gives an ARP-suppression neighbour entry on the bridge
    wait_for(
        lambda: GOBGP_MAC_IP[0] in a.ns.run(["ip", "neigh", "show", GOBGP_MAC_IP[1], "dev",
                                             "br100"]),
        10, what="neighbour entry for GoBGP's MAC+IP",
    )  # fmt: skip

    # --- evpnd -> GoBGP: h1 learned locally on evpnd, and evpnd's type 3
    h1.ns.run(["ping", "-c", "1", "-W", "0.2", "10.100.0.99"], check=False)  # h1 speaks once

    def h1_in_gobgp() -> list[dict]:
        return gobgp_paths(gobgp, 2, mac=h1.mac)

    p2 = wait_for(h1_in_gobgp, 15, interval=0.2, what="h1's MAC in GoBGP's RIB")
    assert len(p2) == 1, p2
    value = p2[0]["nlri"]["value"]
    assert value["labels"][0] == 100 and value["etag"] == 0, value
    assert value["rd"]["admin"] == a_id, value
    rts, tunnels = ext_communities(p2[0])
    assert rts == {"65001:100"} and tunnels == {VXLAN_TUNNEL_TYPE}, (rts, tunnels)
    assert (attr(p2[0], 14) or {}).get("nexthop") == a.vtep, p2[0]

    p3 = wait_for(lambda: gobgp_paths(gobgp, 3, ip=a.vtep), 10, what="evpnd's type 3 in GoBGP")
    assert len(p3) == 1, p3
    rts, tunnels = ext_communities(p3[0])
    assert rts == {"65001:100"} and tunnels == {VXLAN_TUNNEL_TYPE}, (rts, tunnels)
    assert (attr(p3[0], 14) or {}).get("nexthop") == a.vtep, p3[0]
    pmsi = attr(p3[0], 22) or {}
    # RFC 8365 section 5.1.3: ingress replication (tunnel type 6), label = VNI, tunnel id = VTEP
    assert pmsi.get("tunnel-type") == 6 and pmsi.get("label") == 100, pmsi
    assert pmsi.get("tunnel-id") == a.vtep, pmsi

    # --- a route withdrawn in GoBGP leaves evpnd's RIB and kernel
    gobgp.del_evpn("macadv", GOBGP_MAC, "0.0.0.0", "etag", "0", "label", "100", "rd",
                   f"{b_id}:100")  # fmt: skip
    wait_for(lambda: GOBGP_MAC not in a.remote_macs("vx100"), 10,
             what="withdrawn MAC removed from evpnd's FDB")  # fmt: skip
    assert (GOBGP_MAC, None) not in received_type2()
    assert a.remote_macs("vx100").get(GOBGP_MAC_IP[0]) == b.vtep  # the other one stays
    gobgp.del_evpn("multicast", b.vtep, "etag", "0", "rd", f"{b_id}:100")
    wait_for(lambda: not a.flood("vx100"), 10, what="flood entry removed after type-3 withdraw")

    # GoBGP goes away (SIGTERM: it sends a Cease NOTIFICATION): its remaining route goes too
    assert a.remote_macs("vx100").get(GOBGP_MAC_IP[0]) == b.vtep
    gobgp.stop()
    wait_for(lambda: GOBGP_MAC_IP[0] not in a.remote_macs("vx100"), 15,
             what="GoBGP's routes removed from evpnd's FDB after the session ended")  # fmt: skip
    assert not [r for r in routes(a.node) if r["peer"] == b.vtep]


def test_two_evpnd_leaves_through_gobgp_route_reflector(lab):
    spine = Leaf(lab.netns("sp"), "10.0.9.9", 65000)
    a = Leaf(lab.netns("la"), "10.0.1.1", 65000)
    b = Leaf(lab.netns("lb"), "10.0.2.1", 65000)
    lab.link(a.ns, "uplink", spine.ns, "pa", "10.0.1.1/30", "10.0.1.2/30")
    lab.link(b.ns, "uplink", spine.ns, "pb", "10.0.2.1/30", "10.0.2.2/30")
    spine.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    a.ns.ip("route", "add", "10.0.2.0/30", "via", "10.0.1.2")
    b.ns.ip("route", "add", "10.0.1.0/30", "via", "10.0.2.2")
    clients = [GoBgpNeighbor(a.vtep, 65000, rr_client=True),
               GoBgpNeighbor(b.vtep, 65000, rr_client=True)]  # fmt: skip
    rr = GoBgp(spine.ns, gobgp_conf(65000, spine.vtep, clients, cluster_id=spine.vtep)).start()
    lab.on_cleanup(rr.remove)

    h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    spine_a = Leaf(spine.ns, "10.0.1.2", 65000)
    spine_b = Leaf(spine.ns, "10.0.2.2", 65000)
    vni = {"vni": 100, "bridge": "br100"}
    start_evpnd(lab, a, evpnd_config(a, [spine_a], [{**vni, "access_ports": ["p1"]}]))
    start_evpnd(lab, b, evpnd_config(b, [spine_b], [{**vni, "access_ports": ["p2"]}]))

    wait_ping(h1, h2, timeout=30)
    wait_for(lambda: a.remote_macs("vx100").get(h2.mac) == b.vtep, 10)
    wait_for(lambda: b.remote_macs("vx100").get(h1.mac) == a.vtep, 10)
    assert a.flood("vx100") == {b.vtep} and b.flood("vx100") == {a.vtep}
    # the reflector holds both leaves' routes; reflected paths keep the leaf's next hop and carry
    # ORIGINATOR_ID / CLUSTER_LIST (RFC 4456 section 8), which evpnd shows
    assert gobgp_paths(rr, 2, mac=h1.mac) and gobgp_paths(rr, 2, mac=h2.mac)
    r = [r for r in routes(a.node, type=2) if r["mac"] == h2.mac]
    assert len(r) == 1 and r[0]["next_hop"] == b.vtep and r[0]["peer"] == spine_a.vtep, r
    assert r[0]["originator_id"] == b.vtep, r
    assert [r["origin"] for r in routes(a.node, type=3) if r["peer"] != "local"] == [b.vtep]


def test_type5_between_evpnd_and_gobgp(lab):
    a, b = two_leaves(lab)
    gobgp = GoBgp(b.ns, gobgp_conf(b.asn, b.vtep, [GoBgpNeighbor(a.vtep, a.asn)])).start()
    lab.on_cleanup(gobgp.remove)
    l3 = {"vni": 5000, "table": 5000, "router_mac": RMAC_A, "l2vnis": [100],
          "advertise_prefixes": ["10.201.0.0/24"]}  # fmt: skip
    start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100"}], l3vnis=[l3]))
    wait_for(lambda: gobgp.established(a.vtep), 20, interval=0.2, what="GoBGP <-> evpnd session")

    # GoBGP -> evpnd: a prefix in L3VNI 5000 with GoBGP's router MAC (RFC 9136 section 3.1)
    gobgp.add_evpn(
        "prefix", "10.202.0.0/24", "gw", "0.0.0.0", "etag", "0", "label", "5000",
        "rd", f"{b.vtep}:5000", "rt", "65002:5000", "encap", "vxlan", "router-mac", RMAC_GOBGP,
        "nexthop", b.vtep,
    )  # fmt: skip
    r5 = wait_for(lambda: [r for r in routes(a.node, type=5) if r["peer"] == b.vtep], 15,
                  interval=0.2, what="GoBGP's type 5 in evpnd's RIB")  # fmt: skip
    assert len(r5) == 1, r5
    assert r5[0]["ip"] == "10.202.0.0/24" and r5[0]["vni"] == 5000, r5
    assert r5[0]["router_mac"] == RMAC_GOBGP and r5[0]["next_hop"] == b.vtep, r5
    assert "65002:5000" in r5[0]["route_targets"], r5

    def kernel_route() -> str:
        cmd = ["ip", "route", "show", "table", "5000", "10.202.0.0/24"]
        return a.ns.run(cmd, check=False).strip()

    line = wait_for(kernel_route, 15, what="GoBGP's prefix in table 5000")
    assert f"via {b.vtep}" in line and "onlink" in line, line
    fdb = a.ns.run(["bridge", "fdb", "show", "dev", "vx5000"])
    assert f"{RMAC_GOBGP} dst {b.vtep}" in fdb, fdb

    # evpnd -> GoBGP: its advertised prefix, label 5000, its router MAC
    p5 = wait_for(lambda: gobgp_paths(gobgp, 5, prefix="10.201.0.0/24"), 15, interval=0.2,
                  what="evpnd's type 5 in GoBGP")  # fmt: skip
    assert len(p5) == 1, p5
    value = p5[0]["nlri"]["value"]
    assert value["label"] == 5000 and value["gateway"] == "0.0.0.0", value
    rts, tunnels = ext_communities(p5[0])
    assert rts == {"65001:5000"} and tunnels == {VXLAN_TUNNEL_TYPE}, (rts, tunnels)
    rmacs = [c.get("mac") for c in (attr(p5[0], 16) or {}).get("value", []) if "mac" in c]
    assert rmacs == [RMAC_A], p5[0]

    # withdrawn in GoBGP: gone from the tenant table
    gobgp.del_evpn("prefix", "10.202.0.0/24", "etag", "0", "rd", f"{b.vtep}:5000")
    wait_for(lambda: not kernel_route(), 10, what="withdrawn prefix removed from table 5000")


def test_type5_with_ipv6_next_hops_between_evpnd_and_gobgp(lab):
    """Type 5 over an IPv6-only underlay (issue 16), on the BGP side: evpnd's prefixes reach
    GoBGP with evpnd's IPv6 VTEP as next hop and its router MAC; GoBGP's prefix with an IPv6
    next hop lands in evpnd's RIB. An IPv6 VTEP's L3VNI needs a VRF, which this kernel lacks
    (the VRF is a device problem here, the routes still flow): the kernel side, `via inet6
    VTEP` in the VRF's table and the routed ping, is tests/vm/test_vrf_traffic.py's."""
    a, b = two_leaves(lab, 6)
    gobgp = GoBgp(b.ns, gobgp_conf(b.asn, b.router_id, [GoBgpNeighbor(a.vtep, a.asn)])).start()
    lab.on_cleanup(gobgp.remove)
    l3 = {"vni": 5000, "vrf": "vrf-t", "router_mac": RMAC_A, "l2vnis": [100],
          "advertise_prefixes": ["10.201.0.0/24", "2001:db8:201::/64"]}  # fmt: skip
    start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100"}], l3vnis=[l3]))
    wait_for(lambda: gobgp.established(a.vtep), 20, interval=0.2, what="GoBGP <-> evpnd session")

    gobgp.add_evpn(
        "prefix", "10.202.0.0/24", "gw", "0.0.0.0", "etag", "0", "label", "5000",
        "rd", f"{b.router_id}:5000", "rt", "65002:5000", "encap", "vxlan",
        "router-mac", RMAC_GOBGP, "nexthop", b.vtep,
    )  # fmt: skip
    r5 = wait_for(lambda: [r for r in routes(a.node, type=5) if r["peer"] == b.vtep], 15,
                  interval=0.2, what="GoBGP's type 5 in evpnd's RIB")  # fmt: skip
    assert len(r5) == 1 and r5[0]["next_hop"] == b.vtep, r5
    assert r5[0]["router_mac"] == RMAC_GOBGP and r5[0]["vni"] == 5000, r5

    for prefix in ("10.201.0.0/24", "2001:db8:201::/64"):
        p5 = wait_for(lambda p=prefix: gobgp_paths(gobgp, 5, prefix=p), 15, interval=0.2,
                      what=f"evpnd's type 5 {prefix} in GoBGP")  # fmt: skip
        assert len(p5) == 1, p5
        assert p5[0]["nlri"]["value"]["label"] == 5000, p5
        assert (attr(p5[0], 14) or {}).get("nexthop") == a.vtep, p5[0]
        rmacs = [c.get("mac") for c in (attr(p5[0], 16) or {}).get("value", []) if "mac" in c]
        assert rmacs == [RMAC_A], p5[0]
