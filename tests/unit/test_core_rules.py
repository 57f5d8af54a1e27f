"""The batch loops of evpnd.core.bgp_input decide FDB and neighbour entries as the one rule does.

BgpInput.route_update and _withdraw_keys set some entries directly, for speed at 100k routes;
their comments argue why the value is what desired.fdb_entry()/neigh_entry() return. Here the
same random UPDATE sequences go through the batch path of one core and, path by path, through
the general path (BestPathIndexes.best_changed -> refresh_fdb/refresh_neigh, which call the
rule) of another: the desired state and the dirty keys must be the same.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpnd.core import Core, LocalMac, RouteUpdate
from evpnd.core.desired import fdb_entry, neigh_entry
from evpnd.routes.evpn import LOCAL_PEER, MacIpKey, Path

from .core_helpers import make_core, t2

VTEPS = ["192.0.2.2", "192.0.2.3", "192.0.2.10"]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02"]
IPS = [None, "10.1.0.1", "10.1.0.2"]


def _general(core: Core, update: RouteUpdate) -> None:
    """The same UPDATE without the batch loops: every change through best_changed."""
    rib = core.rib
    for key in update.withdrawn:
        old, new = rib.remove(update.peer, key)
        if old is not new:
            core.indexes.best_changed(key, old, new)
            core.local_macs.settle_pending()
    for path in update.announced:
        old, new = rib.put(path._replace(peer=update.peer))
        if old is not new and old != new:
            core.indexes.best_changed(path.key, old, new)
            core.local_macs.settle_pending()


type2 = st.builds(
    lambda vtep, mac, ip, seq, sticky: t2(vtep, mac, ip, seq=seq, sticky=sticky),
    st.sampled_from(VTEPS),
    st.sampled_from(MACS),
    st.sampled_from(IPS),
    st.integers(0, 2),
    st.sampled_from([False, False, True]),
)
step = st.one_of(
    st.lists(type2, min_size=1, max_size=4).map(lambda ps: ("announce", ps)),
    st.lists(type2, min_size=1, max_size=3).map(lambda ps: ("withdraw", ps)),
)


def _rule_values(core: Core) -> tuple[dict[tuple[int, str], str], dict[tuple[int, str], str]]:
    """Every FDB and neighbour value as the rule computes it from the indexes."""
    ix, mob = core.indexes, core.mobility
    fdb = {}
    for vni, mac in {*ix.macs, *mob.frozen_fdb}:
        value = fdb_entry(ix.macs, mob.frozen_fdb, vni, mac)
        if value is not None:
            fdb[(vni, mac)] = value
    neigh = {}
    for vni, ip in {*ix.ips, *mob.frozen_neigh}:
        value = neigh_entry(ix.ips, mob.frozen_neigh, vni, ip)
        if value is not None:
            neigh[(vni, ip)] = value
    return fdb, neigh


def _desired_values(core: Core) -> tuple[dict[tuple[int, str], str], dict[tuple[int, str], str]]:
    d = core.desired
    fdb = {(v, m): nh for v, t in d.fdb.items() for m, nh in t.items()}
    neigh = {(v, ip): m for v, t in d.neigh.items() for ip, m in t.items()}
    return fdb, neigh


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=12), st.booleans())
def test_batch_loops_set_what_the_rule_says(steps, with_local_mac):
    batch, general = make_core(), make_core()
    if with_local_mac:  # a local MAC takes the general path inside the batch loop too
        for core in (batch, general):
            core.apply(LocalMac(100, MACS[0], ip="10.1.0.1"), 0.5)
    for kind, paths in steps:
        updates: dict[str, RouteUpdate] = {}
        for path in paths:
            update = updates.setdefault(path.peer, RouteUpdate(path.peer))
            if kind == "announce":
                update.announced.append(path)
            else:
                update.withdrawn.append(path.key)
        for update in updates.values():
            batch.apply(update, 1.0)
            _general(general, update)
        assert batch.desired.snapshot() == general.desired.snapshot()
        assert batch.desired.drain() == general.desired.drain()
        assert _desired_values(batch) == _rule_values(batch)
    assert batch.desired.snapshot() == batch.compute_desired().snapshot()


def test_the_fast_path_is_taken(monkeypatch):
    """The property above would be empty if the batch loop never ran: a fresh single-VNI
    type-2 sets the entry inline (no refresh) and it is the rule's value."""
    core = make_core()
    calls = []
    real = core.indexes.refresh_fdb
    monkeypatch.setattr(
        core.indexes, "refresh_fdb", lambda vni, mac: (calls.append(mac), real(vni, mac))
    )
    path: Path = t2("192.0.2.2", MACS[0], "10.1.0.1")
    core.apply(RouteUpdate(path.peer, announced=[path]), 1.0)
    assert calls == [] and core.desired.fdb[100] == {MACS[0]: "192.0.2.2"}
    assert core.desired.neigh[100] == {"10.1.0.1": MACS[0]}
    assert fdb_entry(core.indexes.macs, {}, 100, MACS[0]) == "192.0.2.2"
    assert isinstance(path.key, MacIpKey) and path.peer != LOCAL_PEER
