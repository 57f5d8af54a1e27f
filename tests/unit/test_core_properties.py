"""Properties of the core over random event sequences (hypothesis).

- incremental desired state == compute_desired() from scratch, after every event;
- the dirty keys are complete: a mirror updated only from drained dirty keys equals the state;
- announcing then withdrawing everything leaves no desired state (and no dirty key with a value);
- the order of unrelated updates does not matter.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpnd.config import core_settings
from evpnd.core import Core, Effects
from evpnd.core.desired import FDB, FLOOD, NEIGH, RMAC, ROUTE
from evpnd.core.events import EndOfRib, LocalMac, LocalMacBatch, PeerOpen, PeerState, RouteUpdate
from evpnd.routes.evpn import MacIpKey

from .core_helpers import make_cfg, t2, t3, t5

VTEPS = ["192.0.2.2", "192.0.2.3", "192.0.2.10"]
RR = "10.0.0.100"  # a route reflector: any next hop
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
IPS = [None, "10.1.0.1", "10.1.0.2"]
RMACS = [None, "02:aa:00:00:00:01", "02:aa:00:00:00:02"]

SETTINGS = settings(
    # EVPND_EXAMPLES=5000 for a long hunt; the default keeps the suite fast.
    max_examples=int(os.environ.get("EVPND_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def type2(draw):
    vtep = draw(st.sampled_from(VTEPS))
    vni = draw(st.sampled_from([100, 200]))
    irb = draw(st.booleans())
    return t2(
        vtep,
        draw(st.sampled_from(MACS)),
        draw(st.sampled_from(IPS)),
        seq=draw(st.integers(0, 3)),
        sticky=draw(st.booleans()) and draw(st.booleans()),
        vni=vni,
        rts=(f"65002:{vni}", "65002:5000") if irb else (f"65002:{vni}",),
        l3vni=5000 if irb else 0,
        rmac=draw(st.sampled_from(RMACS)),
        peer=draw(st.sampled_from([None, RR])),
        rd=f"{vtep}:{vni}" if draw(st.booleans()) else f"{vtep}:{vni + 1}",
        as_path=draw(st.sampled_from([(65002,), (65002, 65001), (65100, 65002)])),
    )


remote_path = st.one_of(
    type2(),
    st.builds(
        lambda v, vni, peer: t3(v, vni=vni, peer=peer),
        st.sampled_from(VTEPS),
        st.sampled_from([100, 200]),
        st.sampled_from([None, RR]),
    ),
    st.builds(
        lambda v, pfx, rmac: t5(v, pfx, rmac=rmac),
        st.sampled_from(VTEPS),
        st.sampled_from(["10.9.0.0/24", "10.1.0.1/32", "10.1.0.0/24"]),
        st.sampled_from(RMACS),
    ),
)

local_mac = st.builds(
    LocalMac,
    vni=st.sampled_from([100, 200]),
    mac=st.sampled_from(MACS),
    ip=st.sampled_from(IPS),
    present=st.booleans(),
    sticky=st.sampled_from([False, False, False, True]),
)

peers = st.sampled_from([*(f"10.0.0.{v.rsplit('.', 1)[1]}" for v in VTEPS), RR])

event = st.one_of(
    remote_path.map(lambda p: ("announce", p)),
    remote_path.map(lambda p: ("withdraw", p)),
    local_mac.map(lambda e: ("event", e)),
    local_mac.map(lambda e: ("event", e)),
    peers.map(lambda p: ("event", PeerState(p, "down"))),
    peers.map(lambda p: ("event", PeerState(p, "up"))),
    # the peer's OPEN decides whether a later loss keeps its paths stale (RFC 4724 4.2)
    st.tuples(peers, st.sampled_from([None, 5, 120]), st.booleans()).map(
        lambda t: ("event", PeerOpen(t[0], t[1], {} if t[1] is None else {"l2vpn evpn": t[2]}))
    ),
    peers.map(lambda p: ("event", EndOfRib(p))),
    st.just(("tick", None)),
    st.just(("clear", None)),
    st.integers(0, 2).map(lambda i: ("reconfigure", i)),
)


def _configs(gr: int) -> list:
    """The configurations a run switches between: VNI 200 dropped, explicit import RTs."""
    common = {
        "duplicate_detection": {"max_moves": 3, "time": 4},
        "exabgp": {"graceful_restart": gr},
    }
    return [
        make_cfg(
            **common,
            l2vnis=[
                {"vni": 100, "bridge": "br100", "sticky_macs": [MACS[2]]},
                # room for two of the three MACs: the third is learned, not advertised
                {"vni": 200, "bridge": "br200", "max_local_macs": 2},
            ],
        ),
        make_cfg(**common, l2vnis=[{"vni": 100, "bridge": "br100"}]),
        make_cfg(
            **common,
            l2vnis=[
                {"vni": 100, "bridge": "br100", "import_rts": ["65002:200"]},
                {"vni": 200, "bridge": "br200", "export_rts": ["65001:9"]},
            ],
            l3vnis=[{"vni": 5000, "table": 7, "l2vnis": [200], "advertise_prefixes": []}],
        ),
    ]


def _mirror_apply(core: Core, mirror: dict) -> None:
    for kind, vni, key in core.desired.drain():
        value = core.desired.lookup(kind, vni, key)
        if value is None:
            mirror.pop((kind, vni, key), None)
        else:
            mirror[(kind, vni, key)] = value


def _flat(core: Core) -> dict:
    d = core.desired
    out: dict = {}
    for kind, tables in ((FDB, d.fdb), (NEIGH, d.neigh), (ROUTE, d.routes), (RMAC, d.rmacs)):
        for vni, table in tables.items():
            for key, value in table.items():
                out[(kind, vni, key)] = value
    for vni, vteps in d.flood.items():
        for vtep in vteps:
            out[(FLOOD, vni, vtep)] = True
    return out


def _run(core: Core, step, now: float, configs: list | None = None) -> Effects:
    kind, item = step
    if kind == "announce":
        return core.apply(RouteUpdate(item.peer, announced=[item]), now)
    if kind == "withdraw":
        return core.apply(RouteUpdate(item.peer, withdrawn=[item.key]), now)
    if kind == "event":
        return core.apply(item, now)
    if kind == "tick":
        return core.tick(now)
    if kind == "reconfigure":
        assert configs is not None
        return core.reconfigure(core_settings(configs[item]), now)
    return core.clear_duplicates(now)


@SETTINGS
@given(
    steps=st.lists(event, max_size=40),
    gr=st.sampled_from([0, 5]),
    gap=st.sampled_from([0.5, 3.0]),
)
def test_incremental_equals_compute_desired(steps, gr, gap):
    configs = _configs(gr)
    core = Core(core_settings(configs[0]))
    advertised = {p.key: p for p in core.start(0.0).announce}
    mirror: dict = {}
    now = 0.0
    for step in steps:
        now += gap
        before = dict(advertised)
        effects = _run(core, step, now, configs)
        for p in effects.withdraw:
            assert before.get(p.key) == p  # withdraw exactly what was announced
        # The speaker's view (the previous one + these Effects) is what advertised() says.
        after = {k: v for k, v in before.items() if v not in effects.withdraw}
        after.update({p.key: p for p in effects.announce})
        assert after == {p.key: p for p in core.advertised()}
        assert core.desired.snapshot() == core.compute_desired().snapshot()
        _mirror_apply(core, mirror)
        assert mirror == _flat(core)
        advertised = after
    # Every advertised local path belongs to a configured VNI and says so.
    for path in core.advertised():
        assert path.next_hop == "192.0.2.1" and path.peer == "local"


@SETTINGS
@given(
    paths=st.lists(remote_path, max_size=30),
    locals_=st.lists(local_mac.map(lambda e: LocalMac(e.vni, e.mac, e.ip, True)), max_size=6),
)
def test_announce_then_withdraw_leaves_nothing(paths, locals_):
    core = Core(core_settings(make_cfg()))
    static = {p.key for p in core.start(0.0).announce}
    mirror: dict = {}
    now = 1.0
    for ev in locals_:
        core.apply(ev, now)
    for p in paths:
        now += 1
        core.apply(RouteUpdate(p.peer, announced=[p]), now)
    _mirror_apply(core, mirror)
    for p in reversed(paths):
        now += 1
        core.apply(RouteUpdate(p.peer, withdrawn=[p.key]), now)
    for ev in locals_:
        core.apply(LocalMac(ev.vni, ev.mac, ev.ip, present=False), now)
        core.apply(LocalMac(ev.vni, ev.mac, None, present=False), now)
    core.clear_duplicates(now)
    assert core.desired.counts() == dict.fromkeys(core.desired.counts(), 0)
    _mirror_apply(core, mirror)
    assert mirror == {}  # no dirty-keyed value left behind
    assert {p.key for p in core.advertised()} == static
    assert all(not t for t in core.rib.adj_in.values() if t is not core.rib.adj_in["local"])
    assert not core.indexes.macs and not core.indexes.ips and not core.indexes.flood
    assert all(p.peer == "local" for p in core.indexes.prefixes.values())


@SETTINGS
@given(data=st.data(), paths=st.lists(remote_path, max_size=25))
def test_order_of_unrelated_updates_does_not_matter(data, paths):
    # Unrelated: at most one path per (peer, key); a second one would replace the first.
    unique = list({(p.peer, p.key): p for p in paths}.values())
    shuffled = data.draw(st.permutations(unique))
    cores = []
    for order in (unique, shuffled):
        core = Core(core_settings(make_cfg()))
        core.start(0.0)
        for p in order:
            core.apply(RouteUpdate(p.peer, announced=[p]), 1.0)
        cores.append(core)
    assert cores[0].desired.snapshot() == cores[1].desired.snapshot()
    assert sorted(map(repr, cores[0].rib.best.values())) == sorted(
        map(repr, cores[1].rib.best.values())
    )


@SETTINGS
@given(paths=st.lists(type2(), min_size=1, max_size=30))
def test_one_update_equals_many(paths):
    # A whole UPDATE at once (the fast path) ends where path-by-path updates end.
    by_peer: dict = {}
    for p in paths:
        by_peer.setdefault(p.peer, []).append(p)
    a, b = Core(core_settings(make_cfg())), Core(core_settings(make_cfg()))
    for core in (a, b):
        core.start(0.0)
    for peer, group in by_peer.items():
        a.apply(RouteUpdate(peer, announced=group), 1.0)
        for p in group:
            b.apply(RouteUpdate(peer, announced=[p]), 1.0)
    assert a.desired.snapshot() == b.desired.snapshot()
    assert a.desired.snapshot() == a.compute_desired().snapshot()
    assert a.rib.best == b.rib.best
    assert all(type(k) is MacIpKey for k in a.rib.best if a.rib.best[k].peer != "local")


def _general_only(core: Core) -> Core:
    """The core without LocalMacs' first-seen shortcut: every local MAC decided by settle()."""
    core.local_macs.first_seen_shortcut = False
    return core


# `event` with runs of local MAC events (a burst of learning) between: they make the batches
# what a batch may also hold: an upper-case MAC (the core lowers it), a malformed one, a VNI
# that is not configured (both refused and counted)
batch_mac = st.builds(
    LocalMac,
    vni=st.sampled_from([100, 200, 100, 200, 300]),
    mac=st.sampled_from([*MACS, *MACS, "02:0b:00:00:00:0c", "02:0B:00:00:00:0C", "02:00:00:00:01"]),
    ip=st.sampled_from(IPS),
    present=st.booleans(),
    sticky=st.sampled_from([False, False, False, True]),
)
local_heavy = st.lists(
    st.one_of(
        event.map(lambda e: [e]),
        st.lists(
            st.one_of(local_mac, batch_mac).map(lambda e: ("event", e)), min_size=2, max_size=12
        ),
    ),
    max_size=10,
).map(lambda chunks: [step for chunk in chunks for step in chunk])


@SETTINGS
@given(
    steps=local_heavy,
    cuts=st.lists(st.integers(0, 40), max_size=8),
    gap=st.sampled_from([0.5, 3.0]),
)
def test_local_mac_batches_and_the_first_seen_shortcut_end_like_the_general_path(steps, cuts, gap):
    """LocalMacBatch (a monitor read's LocalMacs at once) and the first-seen shortcut (issue 14)
    against the reference: every LocalMac on its own through the general decision. Same
    advertised paths, same desired state, same RIB after every step; and a batch announces and
    withdraws exactly the net change of its events."""
    configs = _configs(5)
    ref = _general_only(Core(core_settings(configs[0])))
    dut = Core(core_settings(configs[0]))
    ref.start(0.0)
    advertised = {p.key: p for p in dut.start(0.0).announce}
    # Runs of consecutive LocalMac steps become batches, split further where `cuts` say.
    groups: list[list] = []
    for i, step in enumerate(steps):
        batchable = step[0] == "event" and isinstance(step[1], LocalMac)
        if batchable and groups and groups[-1][0][0] == "batch" and i not in cuts:
            groups[-1][0][1].append(step[1])
        elif batchable:
            groups.append([("batch", [step[1]])])
        else:
            groups.append([step])
    now = 0.0
    for ((kind, item),) in groups:
        now += gap
        if kind == "batch":
            for ev in item:
                _run(ref, ("event", ev), now)
            effects = dut.apply(LocalMacBatch(list(item)), now)
        else:
            _run(ref, (kind, item), now, configs)
            effects = _run(dut, (kind, item), now, configs)
        before = dict(advertised)
        for p in effects.withdraw:
            assert before.get(p.key) == p
        after = {k: v for k, v in before.items() if v not in effects.withdraw}
        after.update({p.key: p for p in effects.announce})
        assert after == {p.key: p for p in dut.advertised()}
        assert sorted(map(repr, dut.advertised())) == sorted(map(repr, ref.advertised()))
        assert dut.desired.snapshot() == ref.desired.snapshot()
        assert dut.desired.snapshot() == dut.compute_desired().snapshot()
        assert sorted(map(repr, dut.rib.paths())) == sorted(map(repr, ref.rib.paths()))
        assert dut.counters == ref.counters
        assert dut.mobility.local == ref.mobility.local  # every field, learned_at included
        assert dut.local_macs.advertised_count == ref.local_macs.advertised_count
        assert dut.origination.local_keys == ref.origination.local_keys
        assert dut.indexes.macs == ref.indexes.macs
        advertised = after
