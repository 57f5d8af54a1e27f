"""DesiredState and the decision functions shared by the core and compute_desired()."""

from __future__ import annotations

from evpnd.config import core_settings
from evpnd.core.desired import (
    FDB,
    FLOOD,
    NEIGH,
    RMAC,
    ROUTE,
    DesiredState,
    Frozen,
    RouteNextHop,
    compute_desired,
    fdb_entry,
    fdb_value,
    flood_vtep,
    host_prefix,
    neigh_entry,
    neigh_value,
    rmac_value,
    route_value,
)
from evpnd.core.events import LocalMac
from evpnd.core.rib import Rib

from .core_helpers import announce, apply_all, make_cfg, make_core, t2, t3, t5

MAC = "02:00:00:00:00:01"


def test_lookup_drain_counts_snapshot():
    d = DesiredState()
    d.fdb[100] = {MAC: "192.0.2.2"}
    d.flood[100] = {"192.0.2.2"}
    d.neigh[100] = {"10.1.0.1": MAC}
    d.routes[5000] = {"10.9.0.0/24": RouteNextHop("192.0.2.2", None)}
    d.rmacs[5000] = {}
    d.dirty.add((FDB, 100, MAC))
    assert d.lookup(FDB, 100, MAC) == "192.0.2.2"
    assert d.lookup(FDB, 200, MAC) is None
    assert d.lookup(FLOOD, 100, "192.0.2.2") is True
    assert d.lookup(FLOOD, 100, "192.0.2.9") is None
    assert d.lookup(NEIGH, 100, "10.1.0.1") == MAC
    assert d.lookup(ROUTE, 5000, "10.9.0.0/24") == RouteNextHop("192.0.2.2", None)
    assert d.lookup(RMAC, 5000, "192.0.2.2") is None
    assert d.counts() == {FDB: 1, FLOOD: 1, NEIGH: 1, ROUTE: 1, RMAC: 0}
    assert d.drain() == {(FDB, 100, MAC)} and d.drain() == set()
    assert d.snapshot()[RMAC] == {} and d.snapshot()[FLOOD] == {100: {"192.0.2.2": True}}


def test_decisions():
    a = t2("192.0.2.3", MAC, seq=1)
    b2 = t2("192.0.2.2", MAC, "10.1.0.9", seq=1)
    assert fdb_value({a.key: a, b2.key: b2}) == "192.0.2.2"  # lowest VTEP on equal sequence
    assert fdb_value(a) == "192.0.2.3" and fdb_value(None) is None
    assert neigh_value(t2("192.0.2.2", MAC, "10.1.0.1")) == MAC
    # the one rule for a key's entry: a frozen (duplicate) MAC keeps its frozen value
    macs = {(100, MAC): {a.key: a, b2.key: b2}}
    assert fdb_entry(macs, {}, 100, MAC) == "192.0.2.2"
    assert fdb_entry(macs, {(100, MAC): "192.0.2.9"}, 100, MAC) == "192.0.2.9"
    assert fdb_entry(macs, {(100, MAC): None}, 100, MAC) is None
    assert fdb_entry(macs, {}, 200, MAC) is None
    ips = {(100, "10.1.0.9"): b2}
    assert neigh_entry(ips, {}, 100, "10.1.0.9") == MAC
    assert neigh_entry(ips, {(100, "10.1.0.9"): None}, 100, "10.1.0.9") is None
    assert host_prefix("10.1.0.1") == "10.1.0.1/32" and host_prefix("2001:db8::1") == (
        "2001:db8::1/128"
    )
    assert flood_vtep(t3("192.0.2.2", pmsi_endpoint="198.51.100.1")) == "198.51.100.1"
    assert route_value([t5("192.0.2.3", "10.9.0.0/24", rmac=None)]) == RouteNextHop(
        "192.0.2.3", None
    )
    assert rmac_value({"02:00:00:00:00:02": 1, "02:00:00:00:00:01": 3}) == "02:00:00:00:00:01"
    assert rmac_value({}) is None


def test_compute_desired_from_a_bare_rib():
    rib = Rib()
    for path in (t2("192.0.2.2", MAC, "10.1.0.1"), t3("192.0.2.2"), t5("192.0.2.2", "10.9.0.0/24")):
        rib.put(path)
    state = compute_desired(rib, core_settings(make_cfg()))
    assert state.fdb[100] == {MAC: "192.0.2.2"}
    assert state.neigh[100] == {"10.1.0.1": MAC}
    assert state.flood[100] == {"192.0.2.2"}
    assert state.routes[5000] == {"10.9.0.0/24": RouteNextHop("192.0.2.2", "02:aa:00:00:00:01")}
    assert state.rmacs[5000] == {"192.0.2.2": "02:aa:00:00:00:01"}
    assert state.fdb[200] == {} and state.dirty == set()


def test_incremental_equals_compute_desired_on_a_mixed_table():
    core = make_core()
    rts = ("65002:100", "65002:5000")
    apply_all(
        core,
        announce(
            t2("192.0.2.2", MAC, "10.1.0.1", rts=rts, l3vni=5000, rmac="02:bb:00:00:00:02"),
            t2("192.0.2.3", MAC, seq=4),
            t2("192.0.2.3", "02:00:00:00:00:02", vni=200),
            t3("192.0.2.2"),
            t3("192.0.2.3", vni=200),
            t5("192.0.2.4", "10.9.0.0/24"),
        ),
    )
    core.apply(LocalMac(100, "02:00:00:00:00:03", ip="10.1.0.3"), 1.0)
    frozen = Frozen(core.mobility.frozen_fdb, core.mobility.frozen_neigh)
    assert core.desired.snapshot() == compute_desired(core.rib, core.settings, frozen).snapshot()
    assert core.desired.fdb[100] == {MAC: "192.0.2.3"}
    assert core.desired.fdb[200] == {"02:00:00:00:00:02": "192.0.2.3"}
