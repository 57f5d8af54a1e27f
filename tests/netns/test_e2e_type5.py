"""Type-5: a prefix one evpnd leaf advertises becomes a route in the other's tenant table,
via the advertising VTEP with its router MAC (symmetric IRB, RFC 9135/9136)."""

from __future__ import annotations

import pytest

from evpnd.lab.netns import wait_for
from tests.netns.fabric import evpnd_config, start_evpnd, two_leaves

pytestmark = pytest.mark.netns

RMAC_A = "02:00:00:00:ee:01"
RMAC_B = "02:00:00:00:ee:02"


def test_prefix_appears_in_remote_tenant_table(lab):
    a, b = two_leaves(lab)
    l2 = [{"vni": 100, "bridge": "br100"}]
    l3a = [
        {
            "vni": 5000,
            "table": 5000,
            "router_mac": RMAC_A,
            "advertise_prefixes": ["10.201.0.0/24", "2001:db8:201::/64"],
            "l2vnis": [100],
        }
    ]
    l3b = [{"vni": 5000, "table": 5000, "router_mac": RMAC_B, "l2vnis": [100]}]
    start_evpnd(lab, a, evpnd_config(a, [b], l2, l3vnis=l3a))
    start_evpnd(lab, b, evpnd_config(b, [a], l2, l3vnis=l3b))

    def route() -> str:
        cmd = ["ip", "route", "show", "table", "5000", "10.201.0.0/24"]
        return b.ns.run(cmd, check=False).strip()  # the table exists once a route is in it

    line = wait_for(route, 45, what="type-5 route in table 5000")
    assert "via 10.0.0.1" in line and "onlink" in line, line
    wait_for(
        lambda: (
            "2001:db8:201::/64"
            in b.ns.run(["ip", "-6", "route", "show", "table", "5000"], check=False)
        ),
        10,
        what="v6 type-5 route",
    )
    # the router MAC of A is how B reaches A's VTEP on the L3VNI
    neigh = b.ns.run(["ip", "neigh", "show", "10.0.0.1", "dev", "br5000"])
    assert RMAC_A in neigh.lower(), neigh
    fdb = b.ns.run(["bridge", "fdb", "show", "dev", "vx5000"])
    assert f"{RMAC_A} dst 10.0.0.1" in fdb, fdb
