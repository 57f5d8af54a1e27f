"""End to end: two evpnd leaves peer over eBGP; hosts in the same VNI ping across VXLAN.

Leaf A (AS 65001, VTEP 10.0.0.1) and leaf B (AS 65002, VTEP 10.0.0.2), each with VNIs 100 and
200. Hosts: h1 (A, VNI 100), h4 (A, VNI 200), h2 (B, VNI 100), h3 (B, VNI 200). All hosts share
one subnet, so a ping between VNIs would succeed if the VNIs leaked into each other.
"""

from __future__ import annotations

import os

import pytest

from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import (
    evpnd_config,
    four_hosts,
    start_evpnd,
    two_leaves,
    two_vnis,
    wait_ping,
)

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def fabric():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="e2e")
    try:
        a, b = two_leaves(lab)
        hosts = four_hosts(lab, a, b)
        vnis_a, vnis_b = two_vnis("a"), two_vnis("b")
        start_evpnd(lab, a, evpnd_config(a, [b], vnis_a))
        start_evpnd(lab, b, evpnd_config(b, [a], vnis_b))
        yield {"lab": lab, "a": a, "b": b, **hosts}
    finally:
        lab.cleanup()


def test_same_vni_hosts_ping_across_vxlan(fabric):
    wait_ping(fabric["h1"], fabric["h2"], timeout=45)
    wait_ping(fabric["h4"], fabric["h3"], timeout=30)


def test_different_vnis_cannot_reach_each_other(fabric):
    wait_ping(fabric["h1"], fabric["h2"], timeout=45)
    assert not fabric["h1"].ns.ping(fabric["h3"].ip, count=2, timeout=0.5)
    assert not fabric["h4"].ns.ping(fabric["h2"].ip, count=2, timeout=0.5)


def test_fdb_holds_exactly_the_remote_macs_and_flood_entries(fabric):
    a, b = fabric["a"], fabric["b"]
    wait_ping(fabric["h1"], fabric["h2"], timeout=45)
    wait_ping(fabric["h4"], fabric["h3"], timeout=30)
    wait_for(lambda: a.remote_macs("vx100") == {fabric["h2"].mac: b.vtep}, 10, what="A vx100")
    assert a.remote_macs("vx200") == {fabric["h3"].mac: b.vtep}
    assert b.remote_macs("vx100") == {fabric["h1"].mac: a.vtep}
    assert b.remote_macs("vx200") == {fabric["h4"].mac: a.vtep}
    assert a.flood("vx100") == {b.vtep} and a.flood("vx200") == {b.vtep}
    assert b.flood("vx100") == {a.vtep} and b.flood("vx200") == {a.vtep}
    # evpnd marks what it installs: every remote entry is extern_learn
    for line in a.fdb("vx100"):
        if " dst " in line and not line.startswith("00:00:00:00:00:00"):
            assert "extern_learn" in line, line
