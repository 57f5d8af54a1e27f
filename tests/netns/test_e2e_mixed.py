"""Mixed fabric: an FRR 8.4 leaf (advertise-all-vni) and an evpnd leaf; hosts ping both ways."""

from __future__ import annotations

import pytest

from evpnd.lab.netns import wait_for
from tests.netns.fabric import (
    add_host,
    evpnd_config,
    host_mac,
    make_frr_leaf,
    start_evpnd,
    two_leaves,
    wait_ping,
)

pytestmark = [pytest.mark.netns, pytest.mark.frr]


def test_frr_and_evpnd_leaves_carry_traffic_both_ways(lab):
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    frr = make_frr_leaf(lab, frr_leaf, [evpnd_leaf], {100: ["p1"]})
    vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}]
    start_evpnd(lab, evpnd_leaf, evpnd_config(evpnd_leaf, [frr_leaf], vnis))

    wait_ping(h1, h2, timeout=60)
    wait_ping(h2, h1, timeout=10)

    # evpnd installed FRR's MAC, FRR installed evpnd's, both marked extern_learn
    wait_for(lambda: evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep, 10)
    wait_for(lambda: frr_leaf.remote_macs("vx100").get(h2.mac) == evpnd_leaf.vtep, 10)
    assert evpnd_leaf.flood("vx100") == {frr_leaf.vtep}
    assert frr_leaf.flood("vx100") == {evpnd_leaf.vtep}

    macs = frr.json("show evpn mac vni 100 json")
    entry = macs.get("macs", {}).get(h2.mac) or {}
    assert entry.get("type") == "remote", macs
    assert entry.get("remoteVtep") == evpnd_leaf.vtep, entry
