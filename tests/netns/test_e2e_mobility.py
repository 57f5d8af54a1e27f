"""MAC mobility end to end (RFC 7432 section 15): a host moves from leaf A to leaf B.

h1 lives behind A; h4 behind A and h2 behind B are bystanders in the same VNI. The move: a host
with h1's MAC and IP appears behind B and talks; then the old one's link goes down. B must advertise
the MAC with sequence 1 (the old route had 0), A must withdraw its local route, both FDBs must
converge within 2 s, and pings from the moved host resume.
"""

from __future__ import annotations

import time

import pytest

from evpnd.lab.netns import wait_for
from tests.netns.fabric import add_host, evpnd_config, host_mac, start_evpnd, two_leaves, wait_ping

pytestmark = pytest.mark.netns


def local_seq(node, mac: str) -> int | None:
    """The sequence number of the node's own (local) route for a MAC, None if it has none."""
    for entry in node.data("show macs", vni=100)["macs"]:
        if entry["mac"] == mac and entry["type"] == "local":
            return entry["local_seq"]
    return None


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4-underlay", "ipv6-underlay"])
def test_mac_move_converges_with_sequence_plus_one(lab, family):
    a, b = two_leaves(lab, family)
    h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h4 = add_host(lab, a, "h4", "p4", "10.100.0.4", host_mac(1, 4))
    h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    # the new home of h1, prepared behind B but silent (link down) until the move
    moved = add_host(lab, b, "h1m", "p1m", "10.100.0.1", h1.mac)
    moved.ns.ip("link", "set", "eth0", "down")
    start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100",
                                               "access_ports": ["p1", "p4"]}]))  # fmt: skip
    start_evpnd(lab, b, evpnd_config(b, [a], [{"vni": 100, "bridge": "br100",
                                               "access_ports": ["p2", "p1m"]}]))  # fmt: skip
    wait_ping(h1, h2, timeout=45)
    wait_ping(h4, h2, timeout=10)
    assert b.remote_macs("vx100").get(h1.mac) == a.vtep
    assert local_seq(a.node, h1.mac) == 0

    # the move: the new incarnation speaks up behind B while A still has the old route, so B
    # must outbid it; then the old link goes away
    moved.ns.ip("link", "set", "eth0", "up")
    t0 = time.monotonic()
    moved.ns.ping(h2.ip, count=1, timeout=0.5)
    wait_for(lambda: a.remote_macs("vx100").get(h1.mac) == b.vtep, 2.0, interval=0.05,
             what="A's FDB points h1's MAC at B")  # fmt: skip
    wait_for(lambda: h1.mac not in b.remote_macs("vx100"), 2.0, interval=0.05,
             what="B's FDB no longer points h1's MAC at A")  # fmt: skip
    assert time.monotonic() - t0 <= 2.5
    h1.ns.ip("link", "set", "eth0", "down")
    assert local_seq(b.node, h1.mac) == 1  # sequence + 1
    wait_for(lambda: local_seq(a.node, h1.mac) is None, 2.0, what="A withdrew its local route")
    wait_ping(moved, h4, timeout=10)
