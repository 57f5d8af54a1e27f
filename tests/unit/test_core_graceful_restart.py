"""Graceful restart in the core (RFC 4724 section 4.2): when the restart time starts and ends,
and what the peer's OPEN negotiated."""

from __future__ import annotations

import pytest

from evpnd.core.events import EndOfRib, PeerOpen, PeerState
from tests.unit.core_helpers import announce, apply_all, assert_consistent, make_core, t2

MAC = "02:00:00:00:00:01"
EVPN = "l2vpn evpn"


def gr_open(peer: str, time: int = 120, forwarding: bool = True) -> PeerOpen:
    """The OPEN of a peer that does graceful restart for l2vpn/evpn."""
    return PeerOpen(peer, time, {EVPN: forwarding})


def test_failed_reconnects_do_not_extend_the_restart_time():
    core = make_core(exabgp={"graceful_restart": 6})
    a = t2("192.0.2.2", MAC)
    apply_all(core, announce(a))
    core.apply(gr_open(a.peer), 1.0)
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
    core.apply(gr_open(a.peer), 1.0)
    core.apply(PeerState(a.peer, "up"), 1.0)
    core.apply(PeerState(a.peer, "down"), 10.0)
    core.apply(gr_open(a.peer), 12.0)
    core.apply(PeerState(a.peer, "up"), 12.0)
    apply_all(core, announce(a), now=13.0)  # a is fresh again, b still stale
    core.apply(PeerState(a.peer, "down"), 14.0)  # lost again, no End-of-RIB: both stale
    assert core.rib.stale[a.peer] == {a.key, b.key}
    assert core.rib.stale_deadline[a.peer] == 20.0
    assert not core.tick(19.0)
    core.apply(gr_open(a.peer), 19.5)
    core.apply(PeerState(a.peer, "up"), 19.5)
    apply_all(core, announce(b), now=19.6)
    core.apply(EndOfRib(a.peer), 19.7)  # a did not come again: swept at End-of-RIB
    assert core.desired.fdb[100] == {"02:00:00:00:00:02": "192.0.2.2"}
    assert core.rib.stale == {} and core.rib.stale_deadline == {}
    assert_consistent(core)


# What a session loss does, by what was negotiated in the peer's last OPEN (RFC 4724 4.2):
# (our configured restart time, the peer's OPEN) -> restart time (None: flushed at once)
LOSS_RULES = [
    (30, PeerOpen("p", 120, {EVPN: True}), 30),  # ours is shorter
    (30, PeerOpen("p", 10, {EVPN: True}), 10),  # the peer's is shorter
    (30, PeerOpen("p", 10, {EVPN: False}), 10),  # F bit clear: stale still, checked on return
    (30, PeerOpen("p", 120, {"ipv4 unicast": True}), None),  # capability without l2vpn/evpn
    (30, PeerOpen("p", 120, {}), None),  # capability with no family (RFC 4724 section 3)
    (30, PeerOpen("p"), None),  # no capability (FRR `bgp graceful-restart-disable`)
    (30, PeerOpen("p", 0, {EVPN: True}), None),  # restart time 0: nothing to wait for
    (0, PeerOpen("p", 120, {EVPN: True}), None),  # our graceful restart off
    (30, None, None),  # no OPEN seen
]


@pytest.mark.parametrize(("ours", "opened", "restart_time"), LOSS_RULES)
def test_session_loss_keeps_paths_only_if_graceful_restart_was_negotiated(
    ours, opened, restart_time
):
    core = make_core(exabgp={"graceful_restart": ours})
    a = t2("192.0.2.2", MAC)
    peer = a.peer
    if opened is not None:
        opened.peer = peer
        core.apply(opened, 0.5)
    core.apply(PeerState(peer, "up"), 1.0)
    apply_all(core, announce(a), now=1.0)
    core.apply(PeerState(peer, "down"), 10.0)
    if restart_time is None:
        assert core.desired.fdb[100] == {}
        assert core.rib.stale == {} and core.rib.stale_deadline == {}
    else:
        assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
        assert core.rib.stale_deadline[peer] == 10.0 + restart_time
        assert not core.tick(10.0 + restart_time - 0.1)
        core.tick(10.0 + restart_time)
        assert core.desired.fdb[100] == {}
    assert_consistent(core)


# The OPEN that brings the session back, after a loss that kept paths stale:
# the new OPEN -> stale paths kept until End-of-RIB (True) or deleted at once (False)
RETURN_RULES = [
    (PeerOpen("p", 120, {EVPN: True}), True),  # forwarding state preserved
    (PeerOpen("p", 120, {EVPN: False}), False),  # F bit clear (FRR without preserve-fw-state)
    (PeerOpen("p", 120, {"ipv4 unicast": True}), False),  # family gone
    (PeerOpen("p"), False),  # capability gone
]


@pytest.mark.parametrize(("reopened", "kept"), RETURN_RULES)
def test_the_new_open_keeps_or_deletes_the_stale_paths(reopened, kept):
    core = make_core(exabgp={"graceful_restart": 30})
    a, b = t2("192.0.2.2", MAC), t2("192.0.2.2", "02:00:00:00:00:02")
    core.apply(gr_open(a.peer), 0.5)
    core.apply(PeerState(a.peer, "up"), 1.0)
    apply_all(core, announce(a, b), now=1.0)
    core.apply(PeerState(a.peer, "down"), 10.0)
    core.apply(PeerState(a.peer, "connected"), 12.0)
    reopened.peer = a.peer
    core.apply(reopened, 12.0)
    if kept:
        assert core.rib.stale[a.peer] == {a.key, b.key}
        core.apply(PeerState(a.peer, "up"), 12.1)
        apply_all(core, announce(b), now=12.2)
        core.apply(EndOfRib(a.peer), 12.3)  # a did not come again: swept now
        assert core.desired.fdb[100] == {"02:00:00:00:00:02": "192.0.2.2"}
    else:
        assert core.desired.fdb[100] == {}
        assert core.counters["stale_swept"] == 2
        # the re-established session's routes are fresh, and a later loss follows this OPEN
        core.apply(PeerState(a.peer, "up"), 12.1)
        apply_all(core, announce(b), now=12.2)
        assert core.desired.fdb[100] == {"02:00:00:00:00:02": "192.0.2.2"}
        core.apply(PeerState(a.peer, "down"), 13.0)
        if reopened.gr_families.get(EVPN) is None:
            assert core.desired.fdb[100] == {}  # no graceful restart any more: flushed
        else:
            assert core.rib.stale[a.peer] == {b.key}
    assert core.rib.stale_deadline.get(a.peer) in (None, 43.0)
    assert_consistent(core)


def test_an_open_during_a_session_changes_nothing_until_the_loss():
    core = make_core(exabgp={"graceful_restart": 30})
    a = t2("192.0.2.2", MAC)
    core.apply(PeerOpen(a.peer), 0.5)  # no graceful restart
    core.apply(PeerState(a.peer, "up"), 1.0)
    apply_all(core, announce(a), now=1.0)
    # a later OPEN with the capability (a new session after a flap) decides the next loss
    core.apply(PeerState(a.peer, "down"), 2.0)
    assert core.desired.fdb[100] == {}
    core.apply(gr_open(a.peer, forwarding=False), 3.0)
    core.apply(PeerState(a.peer, "up"), 3.0)
    apply_all(core, announce(a), now=3.0)
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    core.apply(PeerState(a.peer, "down"), 4.0)
    assert core.rib.stale_deadline[a.peer] == 34.0
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    assert_consistent(core)
