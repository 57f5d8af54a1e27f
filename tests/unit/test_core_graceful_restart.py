"""Graceful restart in the core (RFC 4724 section 4.2): when the restart time starts and ends."""

from __future__ import annotations

from evpnd.events import EndOfRib, PeerState
from tests.unit.core_helpers import announce, apply_all, assert_consistent, make_core, t2

MAC = "02:00:00:00:00:01"


def test_failed_reconnects_do_not_extend_the_restart_time():
    core = make_core(exabgp={"graceful_restart": 6})
    a = t2("192.0.2.2", MAC)
    apply_all(core, announce(a))
    core.apply(PeerState(a.peer, "up"), 1.0)
    core.apply(PeerState(a.peer, "down"), 10.0)  # session lost: stale until 16
    # ExaBGP keeps trying: each attempt is refused and reported as connected, then down
    for now in (11.0, 12.0, 14.0, 15.5):
        core.apply(PeerState(a.peer, "connected"), now)
        core.apply(PeerState(a.peer, "down"), now)
    assert core.rib.stale_deadline[a.peer] == 16.0
    assert not core.tick(15.9)
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    core.tick(16.0)
    assert core.desired.fdb[100] == {}
    assert core.counters["stale_swept"] == 1
    assert core.rib.stale == {} and core.rib.stale_deadline == {}
    assert_consistent(core)


def test_a_session_lost_again_before_end_of_rib_restarts_the_timer():
    core = make_core(exabgp={"graceful_restart": 6})
    a, b = t2("192.0.2.2", MAC), t2("192.0.2.2", "02:00:00:00:00:02")
    apply_all(core, announce(a, b))
    core.apply(PeerState(a.peer, "up"), 1.0)
    core.apply(PeerState(a.peer, "down"), 10.0)
    core.apply(PeerState(a.peer, "up"), 12.0)
    apply_all(core, announce(a), now=13.0)  # a is fresh again, b still stale
    core.apply(PeerState(a.peer, "down"), 14.0)  # lost again, no End-of-RIB: both stale
    assert core.rib.stale[a.peer] == {a.key, b.key}
    assert core.rib.stale_deadline[a.peer] == 20.0
    assert not core.tick(19.0)
    core.apply(PeerState(a.peer, "up"), 19.5)
    apply_all(core, announce(b), now=19.6)
    core.apply(EndOfRib(a.peer), 19.7)  # a did not come again: swept at End-of-RIB
    assert core.desired.fdb[100] == {"02:00:00:00:00:02": "192.0.2.2"}
    assert core.rib.stale == {} and core.rib.stale_deadline == {}
    assert_consistent(core)
