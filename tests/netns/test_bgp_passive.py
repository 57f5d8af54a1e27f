"""A passive peer without `local_address`: FRR 8.4 connects to evpnd, the session comes up and
routes flow both ways (issue 10 item 6: ExaBGP reset every incoming connection for a neighbour
without a local address)."""

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


def test_frr_connects_to_a_passive_peer_without_local_address(lab):
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    frr = make_frr_leaf(lab, frr_leaf, [evpnd_leaf], {100: ["p1"]})
    vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}]
    cfg = evpnd_config(evpnd_leaf, [frr_leaf], vnis)
    (peer,) = cfg["peers"]
    peer["passive"] = True
    assert "local_address" not in peer
    node = start_evpnd(lab, evpnd_leaf, cfg)

    def up() -> bool:
        (p,) = node.data("show peers")["peers"]
        return p["state"] == "up"

    wait_for(up, 60, interval=0.3, what="FRR's session to the passive peer")
    # FRR opened it: evpnd (passive) never connects out
    (p,) = node.data("show peers")["peers"]
    sessions = evpnd_leaf.ns.run(["ss", "-Htn", "state", "established", "( sport = :179 )"])
    assert frr_leaf.vtep in sessions, sessions

    # routes flow: FRR's MAC in evpnd's kernel FDB, evpnd's MAC in FRR's, hosts ping
    wait_ping(h1, h2, timeout=60)
    wait_for(lambda: evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep, 20)
    wait_for(lambda: frr_leaf.remote_macs("vx100").get(h2.mac) == evpnd_leaf.vtep, 20)
    assert evpnd_leaf.flood("vx100") == {frr_leaf.vtep}
    summary = frr.json("show bgp l2vpn evpn summary json")
    assert summary["peers"][evpnd_leaf.vtep]["state"] == "Established", summary
