"""FRR 8.4 as an iBGP route reflector between two evpnd leaves (AS 65000 everywhere).

The spine only reflects EVPN routes (no VNIs of its own) and routes the underlay; the leaves'
VTEPs are their uplink addresses, reached through static routes via the spine.
"""

from __future__ import annotations

import pytest

from evpnd.lab.frr import Frr, evpn_leaf_conf
from evpnd.lab.netns import wait_for
from tests.netns.fabric import Leaf, add_host, evpnd_config, host_mac, start_evpnd, wait_ping

pytestmark = [pytest.mark.netns, pytest.mark.frr]


def test_two_evpnd_leaves_through_frr_route_reflector(lab):
    spine = Leaf(lab.netns("sp"), "10.0.9.9", 65000)
    a = Leaf(lab.netns("la"), "10.0.1.1", 65000)
    b = Leaf(lab.netns("lb"), "10.0.2.1", 65000)
    lab.link(a.ns, "uplink", spine.ns, "pa", "10.0.1.1/30", "10.0.1.2/30")
    lab.link(b.ns, "uplink", spine.ns, "pb", "10.0.2.1/30", "10.0.2.2/30")
    spine.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    a.ns.ip("route", "add", "10.0.2.0/30", "via", "10.0.1.2")
    b.ns.ip("route", "add", "10.0.1.0/30", "via", "10.0.2.2")
    conf = evpn_leaf_conf(
        65000, "10.0.9.9", [("10.0.1.1", 65000), ("10.0.2.1", 65000)],
        advertise_all_vni=False, rr_clients=True,
    )  # fmt: skip
    rr = Frr(spine.ns, conf).start()
    lab.on_cleanup(rr.remove)

    h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    spine_a = Leaf(spine.ns, "10.0.1.2", 65000)
    spine_b = Leaf(spine.ns, "10.0.2.2", 65000)
    vni = [{"vni": 100, "bridge": "br100"}]
    start_evpnd(lab, a, evpnd_config(a, [spine_a], [{**vni[0], "access_ports": ["p1"]}]))
    start_evpnd(lab, b, evpnd_config(b, [spine_b], [{**vni[0], "access_ports": ["p2"]}]))

    wait_ping(h1, h2, timeout=60)
    wait_for(lambda: a.remote_macs("vx100").get(h2.mac) == b.vtep, 10)
    wait_for(lambda: b.remote_macs("vx100").get(h1.mac) == a.vtep, 10)
    assert a.flood("vx100") == {b.vtep} and b.flood("vx100") == {a.vtep}
    # the reflector holds both leaves' routes
    table = rr.json("show bgp l2vpn evpn json")
    text = str(table).lower()
    assert h1.mac in text and h2.mac in text
