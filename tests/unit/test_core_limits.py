"""Per-peer max_routes (FRR's maximum-prefix semantics) and per-L2VNI max_local_macs in the
core (issue 10 item 2); the config fields that feed them."""

from __future__ import annotations

import pytest

from evpnd.config import ConfigError, core_settings, parse_config
from evpnd.core import Core, PeerLimitSettings
from evpnd.core.events import LocalMac, PeerState, RouteUpdate
from tests.unit.core_helpers import make_cfg, t2

PEER = "10.0.0.2"
NH = "192.0.2.2"


def _core(**limit) -> Core:
    settings = core_settings(make_cfg())
    if limit:
        from dataclasses import replace

        settings = replace(settings, peer_limits=(PeerLimitSettings(PEER, **limit),))
    core = Core(settings)
    core.start(0.0)
    core.apply(PeerState(PEER, "up"), 0.0)
    return core


def _macs(n: int, base: int = 0):
    return [t2(NH, f"02:00:00:00:01:{i:02x}", peer=PEER) for i in range(base, base + n)]


def test_within_the_limit_nothing_happens():
    core = _core(max_routes=3)
    effects = core.apply(RouteUpdate(PEER, _macs(3)), 1.0)
    assert effects.notify == [] and len(core.desired.fdb[100]) == 3
    assert core.views.peers()[PEER].limit_state == ""


def test_over_the_limit_cease_flush_and_held_down_until_cleared():
    core = _core(max_routes=3)
    core.apply(RouteUpdate(PEER, _macs(2)), 1.0)
    effects = core.apply(RouteUpdate(PEER, _macs(2, base=2)), 2.0)
    assert effects.notify == [(PEER, 6, 1)]  # Cease, Maximum Number of Prefixes (RFC 4486)
    assert core.desired.fdb.get(100, {}) == {}  # the peer's routes are flushed
    assert not core.rib.adj_in.get(PEER)
    row = core.views.peers()[PEER]
    assert (row.limit_state, row.limit_until) == ("max-routes", None)
    assert core.counters["max_routes_exceeded"] == 1
    notices = [n for n in core.drain_notices() if n["event"] == "max_routes_exceeded"]
    assert notices and notices[0]["limit"] == 3 and notices[0]["held"] == 4
    # held down: what it sends is dropped, a new session is ended at once
    assert core.apply(RouteUpdate(PEER, _macs(1)), 3.0).notify == []
    assert core.desired.fdb.get(100, {}) == {}
    assert core.counters["max_routes_dropped"] == 1
    assert core.apply(PeerState(PEER, "up"), 4.0).notify == [(PEER, 6, 1)]
    assert core.tick(10_000.0).notify == []  # restart 0: no timer brings it back
    assert core.views.peers()[PEER].limit_state == "max-routes"
    # clear peer: the next session is kept and its routes are used
    assert core.clear_peer(5.0, PEER) == [PEER]
    assert core.views.peers()[PEER].limit_state == ""
    assert core.apply(PeerState(PEER, "up"), 6.0).notify == []
    core.apply(RouteUpdate(PEER, _macs(3)), 7.0)
    assert len(core.desired.fdb[100]) == 3
    assert core.clear_peer(8.0, PEER) == []


def test_restart_minutes_bring_the_peer_back():
    core = _core(max_routes=1, restart_minutes=2)
    assert core.apply(RouteUpdate(PEER, _macs(2)), 100.0).notify == [(PEER, 6, 1)]
    assert core.views.peers()[PEER].limit_until == 220.0
    core.tick(219.0)
    assert core.views.peers()[PEER].limit_state == "max-routes"
    core.tick(220.0)
    assert core.views.peers()[PEER].limit_state == ""
    core.apply(RouteUpdate(PEER, _macs(1)), 221.0)
    assert len(core.desired.fdb[100]) == 1


def test_warning_only_keeps_the_routes_and_warns_once():
    core = _core(max_routes=2, warning_only=True)
    core.drain_notices()
    assert core.apply(RouteUpdate(PEER, _macs(3)), 1.0).notify == []
    core.apply(RouteUpdate(PEER, _macs(1, base=3)), 2.0)
    assert len(core.desired.fdb[100]) == 4
    assert core.views.peers()[PEER].limit_state == "warning"
    warned = [n for n in core.drain_notices() if n["event"] == "max_routes_exceeded"]
    assert len(warned) == 1 and warned[0]["action"] == "warning only"


def test_other_peers_are_not_limited():
    core = _core(max_routes=1)
    other = [t2("192.0.2.3", f"02:00:00:00:03:{i:02x}", peer="10.0.0.3") for i in range(5)]
    assert core.apply(RouteUpdate("10.0.0.3", other), 1.0).notify == []
    assert len(core.desired.fdb[100]) == 5


def test_max_local_macs_advertises_up_to_the_limit_and_counts_the_rest():
    cfg = make_cfg(l2vnis=[{"vni": 100, "bridge": "br100", "max_local_macs": 2},
                           {"vni": 200, "bridge": "br200"}])  # fmt: skip
    core = Core(core_settings(cfg))
    core.start(0.0)
    announced = []
    for i in range(4):
        announced += core.apply(LocalMac(100, f"02:00:00:00:0a:{i:02x}"), 1.0).announce
    assert sorted(p.key.mac for p in announced) == ["02:00:00:00:0a:00", "02:00:00:00:0a:01"]
    assert core.counters["local_macs_over_limit"] == 2
    refused = [n for n in core.drain_notices() if n["event"] == "local_mac_refused"]
    assert len(refused) == 2 and "max_local_macs 2" in refused[0]["reason"]
    # VNI 200 has no limit
    for i in range(4):
        core.apply(LocalMac(200, f"02:00:00:00:0b:{i:02x}"), 1.0)
    assert sum(1 for p in core.advertised() if p.vni == 200 and p.key.route_type == 2) == 4
    # one advertised MAC goes: a refused one is advertised when it is learned again
    core.apply(LocalMac(100, "02:00:00:00:0a:00", present=False), 2.0)
    again = core.apply(LocalMac(100, "02:00:00:00:0a:03"), 3.0).announce
    assert [p.key.mac for p in again] == ["02:00:00:00:0a:03"]


@pytest.mark.parametrize(
    ("peer", "field"),
    [
        ({"max_routes": 0}, "peers[0].max_routes"),
        ({"max_routes": -5}, "peers[0].max_routes"),
        ({"max_routes": 10, "max_routes_restart": -1}, "peers[0].max_routes_restart"),
        ({"max_routes_warning_only": "sometimes"}, "peers[0].max_routes_warning_only"),
    ],
)
def test_bad_limit_values_name_their_field(peer, field):
    data = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "192.0.2.1",
            "peers": [{"address": PEER, "remote_as": 65002, **peer}]}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(data, "test.yaml")
    assert any(f == field for f, _ in info.value.problems), info.value.problems


def test_limits_reach_the_core_settings():
    cfg = make_cfg(peers=[{"address": PEER, "remote_as": 65002, "max_routes": 50,
                           "max_routes_warning_only": True, "max_routes_restart": 5}])  # fmt: skip
    (limit,) = core_settings(cfg).peer_limits
    assert limit == PeerLimitSettings(PEER, 50, True, 5)
    assert core_settings(make_cfg()).peer_limits == ()
