"""MAC mobility, RFC 7432 section 15, as tables of cases; duplicate detection (FRR semantics)."""

from __future__ import annotations

import pytest

from evpnd.core.events import LocalMac
from evpnd.core.mobility import Mobility, rank, vtep_rank

from .core_helpers import announce, apply_all, assert_consistent, make_core, rd_for, t2, withdraw

MAC = "02:00:00:00:00:aa"


def fdb(core, vni=100):
    return core.desired.fdb.get(vni, {}).get(MAC)


def local(present=True, sticky=False, ip=None):
    return LocalMac(100, MAC, ip=ip, present=present, sticky=sticky)


# Each case: remote paths announced in order (vtep, seq, sticky) -> the VTEP the FDB points at.
REMOTE_CASES = [
    ("higher sequence wins", [("192.0.2.2", 0, False), ("192.0.2.3", 1, False)], "192.0.2.3"),
    (
        "higher sequence wins, other order",
        [("192.0.2.3", 1, False), ("192.0.2.2", 0, False)],
        "192.0.2.3",
    ),
    (
        "higher sequence wins over lower VTEP",
        [("192.0.2.9", 7, False), ("192.0.2.2", 6, False)],
        "192.0.2.9",
    ),
    # As addresses .3 < .10, although "192.0.2.10" < "192.0.2.3" as text.
    (
        "equal sequence: lowest VTEP IP",
        [("192.0.2.10", 2, False), ("192.0.2.3", 2, False)],
        "192.0.2.3",
    ),
    (
        "equal sequence: lowest VTEP IP, other order",
        [("192.0.2.3", 2, False), ("192.0.2.10", 2, False)],
        "192.0.2.3",
    ),
    ("sticky never moves", [("192.0.2.5", 0, True), ("192.0.2.2", 9, False)], "192.0.2.5"),
    (
        "sticky never moves, other order",
        [("192.0.2.2", 9, False), ("192.0.2.5", 0, True)],
        "192.0.2.5",
    ),
    ("two sticky: higher sequence", [("192.0.2.5", 1, True), ("192.0.2.6", 2, True)], "192.0.2.6"),
    ("only path", [("192.0.2.7", 3, False)], "192.0.2.7"),
]


@pytest.mark.parametrize("name,paths,want", REMOTE_CASES, ids=[c[0] for c in REMOTE_CASES])
def test_remote_winner(name, paths, want):
    core = make_core()
    apply_all(core, announce(*[t2(v, MAC, seq=s, sticky=st) for v, s, st in paths]))
    assert fdb(core) == want
    assert_consistent(core)
    # Withdrawing the winner falls back to the next best.
    winner = next(t2(v, MAC, seq=s, sticky=st) for v, s, st in paths if v == want)
    apply_all(core, withdraw(winner))
    rest = [p for p in paths if p[0] != want]
    if rest:
        assert fdb(core) == max(rest, key=lambda p: (p[2], p[1], vtep_rank(p[0])))[0]
    else:
        assert fdb(core) is None
    assert_consistent(core)


def test_withdraw_matches_key_not_label():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=3)))
    # FRR withdraws with label 0: same key, different label and attributes.
    zero = t2("192.0.2.2", MAC, vni=100)._replace(vni=0)
    apply_all(core, withdraw(zero))
    assert fdb(core) is None
    assert core.rib.best == {k: p for k, p in core.rib.best.items() if p.peer == "local"}


def test_local_learn_advertises_highest_remote_seq_plus_one():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=3), t2("192.0.2.3", MAC, seq=1)))
    assert fdb(core) == "192.0.2.3" or fdb(core) == "192.0.2.2"
    effects = core.apply(local(), 1.0)
    assert [p.attrs.mobility_seq for p in effects.announce] == [4]
    assert effects.announce[0].attrs.has_mobility
    assert effects.withdraw == []
    assert fdb(core) is None  # local wins: no remote FDB entry
    assert_consistent(core)


def test_local_learn_without_remote_uses_seq_zero():
    core = make_core()
    effects = core.apply(local(), 1.0)
    (path,) = effects.announce
    assert path.attrs.mobility_seq == 0 and not path.attrs.has_mobility
    assert path.next_hop == "192.0.2.1" and path.key.rd == rd_for(core, 100)
    assert core.apply(local(), 2.0).announce == []  # learning it again changes nothing


def test_remote_higher_seq_beats_local_and_withdraws_it():
    core = make_core()
    (announced,) = core.apply(local(), 1.0).announce
    core.desired.drain()
    effects = apply_all(core, announce(t2("192.0.2.2", MAC, seq=1)), now=2.0)
    assert effects.withdraw == [announced]  # exactly the path that was announced
    assert effects.announce == []
    assert fdb(core) == "192.0.2.2"
    assert ("fdb", 100, MAC) in core.desired.drain()
    assert all(getattr(p.key, "mac", None) != MAC for p in core.advertised())
    assert_consistent(core)


def test_remote_equal_seq_lower_vtep_beats_local():
    # Our VTEP is 192.0.2.1; a remote 192.0.2.0 with the same sequence wins the tie-break.
    core = make_core()
    core.apply(local(), 1.0)
    effects = apply_all(core, announce(t2("192.0.2.0", MAC, seq=0)), now=2.0)
    assert len(effects.withdraw) == 1
    assert fdb(core) == "192.0.2.0"


def test_remote_equal_seq_higher_vtep_does_not_beat_local():
    core = make_core()
    core.apply(local(), 1.0)
    effects = apply_all(core, announce(t2("192.0.2.2", MAC, seq=0)), now=2.0)
    assert not effects
    assert fdb(core) is None


@pytest.mark.parametrize("how", ["event", "config"])
def test_local_sticky_is_never_overridden(how):
    if how == "config":
        core = make_core(
            l2vnis=[{"vni": 100, "bridge": "br100", "sticky_macs": [MAC.upper()]}],
            l3vnis=[],
        )
        effects = core.apply(local(), 1.0)
    else:
        core = make_core()
        effects = core.apply(local(sticky=True), 1.0)
    (path,) = effects.announce
    assert path.attrs.sticky and path.attrs.has_mobility
    effects = apply_all(core, announce(t2("192.0.2.2", MAC, seq=50, sticky=True)), now=2.0)
    assert not effects
    assert fdb(core) is None
    assert_consistent(core)


def test_remote_sticky_blocks_local_learning():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.5", MAC, sticky=True)))
    effects = core.apply(local(), 1.0)
    assert not effects
    assert fdb(core) == "192.0.2.5"
    (row,) = core.views.mac_table()
    assert row.type == "remote" and row.sticky


def test_local_regains_when_remote_withdrawn():
    core = make_core()
    core.apply(local(), 1.0)
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=5)), now=2.0)
    effects = apply_all(core, withdraw(t2("192.0.2.2", MAC, seq=5)), now=3.0)
    assert [p.key.mac for p in effects.announce] == [MAC]
    assert fdb(core) is None


def test_mac_and_mac_ip_routes_share_the_sequence():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC, "10.1.0.9", seq=2)))
    effects = core.apply(local(ip="10.1.0.9"), 1.0)
    effects.extend(core.apply(local(), 1.0))
    assert sorted((p.key.ip or "", p.attrs.mobility_seq) for p in effects.announce) == [
        ("", 3),
        ("10.1.0.9", 3),
    ]
    # MAC+IP carries the L3VNI label, its RT and the router MAC (symmetric IRB).
    ipr = next(p for p in effects.announce if p.key.ip)
    assert ipr.l3vni == 5000 and ipr.attrs.router_mac == "02:00:00:00:50:00"
    assert set(ipr.attrs.route_targets) == {"65001:100", "65001:5000"}
    assert core.desired.neigh[100] == {}
    assert_consistent(core)


def test_local_mac_removed_withdraws_its_routes():
    core = make_core()
    announced = core.apply(local(), 1.0).announce + core.apply(local(ip="10.1.0.9"), 1.0).announce
    effects = core.apply(local(present=False), 2.0)
    assert set(effects.withdraw) == set(announced) and len(announced) == 2
    assert core.mobility.local == {}


# Duplicate address detection: max_moves 3 within 10 s.
DAD = {"duplicate_detection": {"max_moves": 3, "time": 10}}


def _bounce(core, times, start=0.0, step=1.0):
    """Alternate local learn and a remote path with a higher sequence: each is one move."""
    now = start
    seq = 0
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=seq)), now=now)
    for _ in range(times):
        now += step
        core.apply(local(), now)
        seq = core.mobility.local[(100, MAC)].seq + 1
        now += step
        apply_all(core, announce(t2("192.0.2.2", MAC, seq=seq)), now=now)
    return now


def test_duplicate_detected_on_nth_move_and_frozen():
    core = make_core(**DAD)
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=0)), now=0.0)
    core.apply(local(), 1.0)  # move 1 (R->L): advertised with seq 1
    assert fdb(core) is None
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=2)), now=2.0)  # move 2 (L->R)
    assert fdb(core) == "192.0.2.2"
    core.desired.drain()
    effects = core.apply(local(), 3.0)  # move 3: duplicate
    assert not effects.announce  # not advertised while frozen
    assert fdb(core) == "192.0.2.2"  # the last state is kept
    (row,) = core.views.mac_table()
    assert row.duplicate and row.moves == 3
    assert core.counters["duplicates_detected"] == 1
    # Frozen: a new remote winner does not move the FDB entry.
    apply_all(core, announce(t2("192.0.2.3", MAC, seq=9)), now=4.0)
    assert fdb(core) == "192.0.2.2"
    assert core.desired.drain() == set()
    assert core.views.explain(MAC).vnis[0].duplicate
    assert_consistent(core)
    # Cleared: follows the candidates again (remote seq 9 beats our seq 3).
    effects = core.clear_duplicates(5.0)
    assert fdb(core) == "192.0.2.3"
    assert not core.views.mac_table()[0].duplicate
    assert_consistent(core)


def test_frozen_after_local_to_remote_keeps_local_state():
    core = make_core(**{"duplicate_detection": {"max_moves": 2, "time": 10}})
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=0)), now=0.0)
    (adv,) = core.apply(local(), 1.0).announce  # move 1, seq 1
    effects = apply_all(core, announce(t2("192.0.2.2", MAC, seq=2)), now=2.0)  # move 2: dup
    assert effects.withdraw == [adv]
    assert fdb(core) is None  # frozen as it was: local
    assert core.views.mac_table()[0].duplicate
    # Thawed: the remote path (seq 2 > 1) wins now.
    core.clear_duplicates(3.0, vni=100, mac=MAC)
    assert fdb(core) == "192.0.2.2"
    # A local learn after clearing starts counting again: seq 3, advertised.
    (again,) = core.apply(local(), 4.0).announce
    assert again.attrs.mobility_seq == 3
    assert_consistent(core)


def test_thaw_readvertises_a_local_winner():
    core = make_core(**DAD)
    _bounce(core, 1)  # moves 1 and 2
    effects = core.apply(local(), 10.0)  # move 3 at t=10 (window started at 1): duplicate
    assert not effects.announce
    effects = core.clear_duplicates(11.0)
    (path,) = effects.announce
    assert path.attrs.mobility_seq == 3
    assert fdb(core) is None


def test_moves_outside_the_window_do_not_count():
    core = make_core(**DAD)
    _bounce(core, 5, step=6.0)  # 10 moves, but never 3 within 10 s
    assert not any(row.duplicate for row in core.views.mac_table())
    assert core.counters.get("duplicates_detected", 0) == 0


def test_moves_inside_the_window_count():
    core = make_core(**DAD)
    _bounce(core, 2, step=1.0)
    assert core.views.mac_table()[0].duplicate


def test_detection_disabled():
    core = make_core(duplicate_detection={"enabled": False})
    _bounce(core, 10, step=0.1)
    assert not core.views.mac_table()[0].duplicate


def test_mobility_counter_rules():
    m = Mobility(True, 3, 10.0)
    assert not m.record_move(100, MAC, 0.0, local_learn=False)  # L->R alone starts nothing
    assert not m.record_move(100, MAC, 1.0, local_learn=True)
    assert not m.record_move(100, MAC, 2.0, local_learn=False)
    assert m.record_move(100, MAC, 3.0, local_learn=True)
    assert m.duplicates() == [(100, MAC)]
    m.thaw(100, MAC)
    assert m.duplicates() == []


def test_rank_orders_as_the_rfc_says():
    def p(vtep, seq=0, sticky=False):
        return t2(vtep, MAC, seq=seq, sticky=sticky)

    assert rank(p("192.0.2.3", 2)) > rank(p("192.0.2.2", 1))
    assert rank(p("192.0.2.3", 2)) > rank(p("192.0.2.10", 2))
    assert rank(p("192.0.2.9", 0, True)) > rank(p("192.0.2.2", 99))
    assert rank(p("10.0.0.1")) > rank(p("2001:db8::1"))  # mixed families: deterministic


def test_frozen_mac_keeps_its_neighbour_entries():
    core = make_core(**{"duplicate_detection": {"max_moves": 2, "time": 10}})
    ip = "10.1.0.9"
    apply_all(core, announce(t2("192.0.2.2", MAC, ip, seq=0)), now=0.0)
    assert core.desired.neigh[100] == {ip: MAC}
    core.apply(local(), 1.0)  # move 1: the MAC is here now (the neighbour still points at it)
    apply_all(core, announce(t2("192.0.2.2", MAC, ip, seq=2)), now=2.0)  # move 2: duplicate
    assert core.views.mac_table()[0].duplicate
    frozen = dict(core.desired.neigh[100])
    # While frozen, the IP moving to another MAC (remote) does not change the entry.
    apply_all(core, withdraw(t2("192.0.2.2", MAC, ip)), now=3.0)
    apply_all(core, announce(t2("192.0.2.3", "02:00:00:00:00:bb", ip, seq=5)), now=3.0)
    assert core.desired.neigh[100] == frozen
    assert_consistent(core)
    core.clear_duplicates(4.0)
    assert core.desired.neigh[100] == {ip: "02:00:00:00:00:bb"}
    assert_consistent(core)


def _frozen_and_forgotten(core):
    """MAC frozen, then gone locally (its state deleted) and withdrawn remotely: only the
    freeze is left of it."""
    r = t2("192.0.2.2", MAC, seq=0)
    apply_all(core, announce(r), now=0.0)
    core.apply(local(), 1.0)  # move 1, seq 1
    apply_all(core, announce(t2("192.0.2.2", MAC, seq=2)), now=2.0)  # move 2: duplicate
    core.apply(local(present=False), 3.0)
    apply_all(core, withdraw(t2("192.0.2.2", MAC, seq=2)), now=4.0)
    assert (100, MAC) not in core.mobility.local and (100, MAC) not in core.indexes.macs
    assert (100, MAC) in core.mobility.frozen_fdb


# First sightings in a LocalMacBatch that the batch's inline case must leave to the general
# decision (LocalMacs.local_mac_batch): each against a core that takes every event one by one
# through settle() (no first-seen shortcut).
BATCH_CASES = {
    "a remote path exists: seq above it": (
        lambda core: apply_all(core, announce(t2("192.0.2.2", MAC, seq=4)), now=0.0),
        [local()],
        lambda core, effects: effects.announce[0].attrs.mobility_seq == 5,
    ),
    "frozen, nothing else left of it: not advertised": (
        _frozen_and_forgotten,
        [local()],
        lambda core, effects: not effects.announce,
    ),
    "upper case: lowered, one state": (
        lambda core: None,
        [LocalMac(100, MAC.upper()), local()],
        lambda core, effects: list(core.mobility.local) == [(100, MAC)],
    ),
    "known, refused by the limit, room again: advertised, its state kept": (
        lambda core: (
            [core.apply(LocalMac(100, f"02:00:00:00:01:{i:02x}"), float(i)) for i in range(4)]
            and core.apply(LocalMac(100, "02:00:00:00:01:00", present=False), 5.0)
        ),
        [LocalMac(100, "02:00:00:00:01:03")],
        lambda core, effects: (
            len(effects.announce) == 1
            and core.mobility.local[(100, "02:00:00:00:01:03")].learned_at == 3.0
        ),
    ),
    "the VNI's max_local_macs reached: learned, not advertised": (
        lambda core: None,
        [LocalMac(100, f"02:00:00:00:01:{i:02x}") for i in range(4)],
        lambda core, effects: (
            len(effects.announce) == 3 and core.counters["local_macs_over_limit"] == 1
        ),
    ),
}


@pytest.mark.parametrize("case", BATCH_CASES)
def test_a_batch_decides_first_sightings_like_the_general_way(case):
    from evpnd.core.events import LocalMacBatch

    prepare, events, check = BATCH_CASES[case]
    cfg = {
        "duplicate_detection": {"max_moves": 2, "time": 10},
        "l2vnis": [{"vni": 100, "bridge": "br100", "max_local_macs": 3}],
    }
    batch, ref = make_core(**cfg), make_core(**cfg)
    ref.local_macs.first_seen_shortcut = False
    for core in (batch, ref):
        prepare(core)
    effects = batch.apply(LocalMacBatch(events), 9.0)
    ref_effects = [ref.apply(e, 9.0) for e in events]
    assert check(batch, effects)
    assert sorted(map(repr, effects.announce)) == sorted(
        repr(p) for e in ref_effects for p in e.announce
    )
    assert batch.mobility.local == ref.mobility.local
    assert batch.desired.snapshot() == ref.desired.snapshot()
    assert sorted(map(repr, batch.rib.paths())) == sorted(map(repr, ref.rib.paths()))
    assert batch.origination.local_keys == ref.origination.local_keys
    assert batch.indexes.macs == ref.indexes.macs
    assert batch.counters == ref.counters
    assert_consistent(batch)
