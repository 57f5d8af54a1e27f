"""Two evpnd daemons exchange type 2, 3 and 5 routes through their ExaBGPs.

Leaf A has an SVI on VNI 100 (so it learns h1's IP from the neighbour table), an L3VNI 5000
with a router MAC, and a prefix to advertise. Leaf B must hold A's routes with the right VNI,
MAC, IP, route targets, router MAC and sequence number, and answer ARP for h1 locally.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from evpnd.lab.netns import wait_for
from tests.netns.fabric import add_host, evpnd_config, host_mac, start_evpnd, two_leaves, wait_ping

pytestmark = pytest.mark.netns

RMAC_A = "02:00:00:00:ee:01"


def evpnd_neighbours(leaf, dev: str) -> dict[str, str]:
    """IP -> MAC of the neighbour entries evpnd installed (its protocol number 235) on dev."""
    out = {}
    for line in leaf.ns.run(["ip", "neigh", "show", "dev", dev]).splitlines():
        words = line.split()
        if "proto" in words and words[words.index("proto") + 1] == "235" and "lladdr" in words:
            out[words[0]] = words[words.index("lladdr") + 1]
    return out


def routes(node, **filters) -> list[dict]:
    return node.data("show routes", **filters)["routes"]


def test_types_2_3_5_arrive_with_their_attributes(lab):
    a, b = two_leaves(lab)
    h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    l2a = {"vni": 100, "bridge": "br100", "access_ports": ["p1"], "svi_address": "10.100.0.254/24"}
    l3a = {
        "vni": 5000,
        "table": 5000,
        "router_mac": RMAC_A,
        "l2vnis": [100],
        "advertise_prefixes": ["10.201.0.0/24"],
    }
    start_evpnd(lab, a, evpnd_config(a, [b], [l2a], l3vnis=[l3a]))
    start_evpnd(lab, b, evpnd_config(b, [a], [{"vni": 100, "bridge": "br100",
                                               "access_ports": ["p2"]}]))  # fmt: skip

    # h1 talks to its gateway: A learns h1's MAC and IP locally
    wait_for(lambda: h1.ns.ping("10.100.0.254", timeout=0.5), 20, what="h1 -> gateway")

    def macip() -> dict | None:
        for r in routes(b.node, type=2, vni=100):
            if r["mac"] == h1.mac and r["ip"] == "10.100.0.1" and r["peer"] == a.vtep:
                return r
        return None

    r2 = wait_for(macip, 30, interval=0.2, what="A's MAC/IP route on B")
    assert r2["vni"] == 100 and r2["l3vni"] == 5000
    assert r2["next_hop"] == a.vtep and r2["seq"] == 0
    assert r2["rd"] == "10.0.0.1:1"
    assert {"65001:100", "65001:5000"} <= set(r2["route_targets"])
    assert r2["router_mac"] == RMAC_A
    assert "best" in r2["flags"]

    r3 = [r for r in routes(b.node, type=3) if r["peer"] == a.vtep]
    assert len(r3) == 1 and r3[0]["origin"] == a.vtep and r3[0]["vni"] == 100
    assert "65001:100" in r3[0]["route_targets"]

    r5 = [r for r in routes(b.node, type=5) if r["peer"] == a.vtep]
    assert len(r5) == 1, r5
    assert r5[0]["ip"] == "10.201.0.0/24" and r5[0]["vni"] == 5000
    assert r5[0]["router_mac"] == RMAC_A and "65001:5000" in r5[0]["route_targets"]
    # B has no L3VNI 5000: the type-5 route is received but imported nowhere; it is shown
    # and not installed, which is what FRR does too.

    # ARP suppression: B installed h1's IP as a neighbour entry on br100 ...
    wait_for(
        lambda: h1.mac in b.ns.run(["ip", "neigh", "show", "10.100.0.1", "dev", "br100"]),
        10,
        what="neighbour entry for h1 on B",
    )
    # exactly what the routes say: h1's IP on B; nothing on A (nobody advertises B's IPs)
    assert evpnd_neighbours(b, "br100") == {"10.100.0.1": h1.mac}
    assert evpnd_neighbours(a, "br100") == {}
    # ... so h2's ARP request for h1 is answered on B's bridge and never crosses the VXLAN.
    capture = subprocess.Popen(
        b.ns.cmd("tcpdump", "-l", "-n", "-i", "uplink", "udp port 4789"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(1.0)
        h2.ns.run(["ip", "neigh", "flush", "dev", "eth0"], check=False)
        wait_ping(h2, h1, timeout=20)
        neigh = h2.ns.run(["ip", "neigh", "show", "10.100.0.1"])
        assert h1.mac in neigh, neigh
        time.sleep(0.5)
    finally:
        capture.terminate()
        out, _ = capture.communicate(timeout=5)
    # tcpdump decodes VXLAN on port 4789: the pings crossed, h2's ARP request for h1 did not.
    # (h1's own request for h2 may cross: B has no SVI, so nobody advertises h2's IP.)
    assert "ICMP echo request" in out, f"capture saw no overlay traffic:\n{out}"
    assert "who-has 10.100.0.1 " not in out, f"ARP for h1 crossed the VXLAN:\n{out}"
