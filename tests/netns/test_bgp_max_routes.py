"""max_routes with a real peer through real ExaBGP (issue 10 item 2): the peer (a
test-controlled ExaBGP) sends more routes than evpnd allows it; evpnd ends the session with a
Cease NOTIFICATION subcode 1 (RFC 4486), flushes the peer's routes from the kernel, keeps the
peer down the way FRR does (its ExaBGP makes no connection and refuses the peer's: no session
comes up at all, rather than sessions accepted and ended), shows the state in `show peers`,
and `evpnctl clear peer` (max_routes_restart 0) or the restart time (M minutes) brings it
back."""

from __future__ import annotations

import asyncio
import time

import pytest

from evpnd.core.events import Notification
from evpnd.routes.evpn import LOCAL_PEER, Attributes, MacIpKey, Path
from tests.netns.fabric import add_host, evpnd_config, start_evpnd, two_leaves
from tests.netns.speaker_lab import Recorder, make_speaker, peer, speaker_config, until

pytestmark = pytest.mark.netns

L2 = Attributes(route_targets=("65002:100",), encap=8)
LIMIT = 5
# How long the tests watch a held peer: ExaBGP's reconnect back-off (both ends connect) retries
# after 0, 1, 3, 6, 10 s, so without the hold a session came up within seconds.
WATCH = 15


def _macs(n: int) -> list[Path]:
    return [Path(MacIpKey("10.0.0.2:100", 0, f"02:bb:00:00:00:{i:02x}", None), LOCAL_PEER,
                 "10.0.0.2", 100, attrs=L2) for i in range(n)]  # fmt: skip


async def _leaf_and_speaker(lab, tmp_path, **limits):
    """evpnd on leaf a (its one peer given `limits`) and a hand-built speaker on b peering with
    it: (a, b, node, speaker, recorder, entry) where entry() is a's `show peers` row for b."""
    a, b = two_leaves(lab)
    add_host(lab, a, "h1", "p1", "10.100.0.1", "02:aa:00:00:01:01")
    cfg = evpnd_config(a, [b], [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}])
    cfg["peers"][0].update(limits)
    node = start_evpnd(lab, a, cfg)
    rec = Recorder()
    scfg = speaker_config(tmp_path, router_id=b.vtep, asn=65002,
                          peers=[peer(a.vtep, 65001, b.vtep)])  # fmt: skip
    speaker = make_speaker(scfg, b.ns, rec)
    await speaker.start()

    def entry() -> dict:
        (p,) = node.data("show peers")["peers"]
        return p

    return a, b, node, speaker, rec, entry


async def test_a_peer_over_max_routes_is_ceased_flushed_held_and_cleared(lab, tmp_path):
    a, b, node, speaker, rec, entry = await _leaf_and_speaker(lab, tmp_path, max_routes=LIMIT)

    def ceases() -> list[Notification]:
        return [e for e in rec.events if isinstance(e, Notification) and e.code == 6
                and e.subcode == 1]  # fmt: skip

    try:
        await until(lambda: rec.state(a.vtep) == "up", 60, what="session up")
        within = _macs(LIMIT)
        speaker.announce(within)
        await until(lambda: len(a.remote_macs("vx100")) == LIMIT, 30, 0.2, "5 MACs installed")
        assert entry()["limit_state"] == "" and entry()["max_routes"] == LIMIT

        over = _macs(LIMIT + 3)
        speaker.announce(over[LIMIT:])
        await until(ceases, 30, 0.2, "Cease NOTIFICATION subcode 1 (maximum prefixes)")
        await until(lambda: a.remote_macs("vx100") == {}, 30, 0.2, "the peer's routes flushed")
        state = entry()
        assert state["limit_state"] == "max-routes" and state["limit_until"] is None
        # held down: no session comes up (no connection out, the peer's refused), so none
        # has to be ended either
        ups, seen = rec.states(a.vtep).count("up"), len(ceases())
        await asyncio.sleep(WATCH)
        assert rec.states(a.vtep).count("up") == ups, rec.states(a.vtep)
        assert len(ceases()) == seen and entry()["state"] != "up"
        assert a.remote_macs("vx100") == {}
        log = node.log()
        assert "max_routes_exceeded" in log and "Traceback" not in log

        # the peer now keeps within the limit; the operator clears it
        speaker.withdraw(over[LIMIT - 2 :])
        await speaker.sync()
        out = node.ctl("clear", "peer", b.vtep).stdout
        assert f"Released {b.vtep}" in out
        assert entry()["limit_state"] == ""
        await until(lambda: len(a.remote_macs("vx100")) == LIMIT - 2, 60, 0.2,
                    "the peer's routes back after clear peer")  # fmt: skip
        await until(lambda: entry()["state"] == "up", 30, 0.2, "session up")
        assert entry()["limit_state"] == ""
    finally:
        await speaker.stop()


async def test_max_routes_restart_keeps_the_peer_down_for_its_minutes_then_lets_it_back(
    lab, tmp_path
):
    a, b, node, speaker, rec, entry = await _leaf_and_speaker(
        lab, tmp_path, max_routes=LIMIT, max_routes_restart=1
    )

    try:
        await until(lambda: rec.state(a.vtep) == "up", 60, what="session up")
        over = _macs(LIMIT + 3)
        speaker.announce(over)
        await until(lambda: entry()["limit_state"] == "max-routes", 30, 0.2, "over the limit")
        t0 = time.monotonic()
        assert entry()["limit_until"] is not None
        # the peer comes back within its limit once allowed to
        speaker.withdraw(over[LIMIT - 2 :])
        await speaker.sync()
        await until(lambda: rec.state(a.vtep) != "up", 30, 0.2, "session ended")
        ups = rec.states(a.vtep).count("up")
        # down for the whole minute: no session before it has passed
        await until(lambda: rec.states(a.vtep).count("up") > ups, 120, 0.2, "session back")
        back = time.monotonic() - t0
        assert back >= 59, f"a session came up {back:.1f} s after the overflow (restart 1 min)"
        await until(lambda: len(a.remote_macs("vx100")) == LIMIT - 2, 60, 0.2,
                    "the peer's routes back after its restart time")  # fmt: skip
        assert entry()["limit_state"] == "" and entry()["state"] == "up"
        assert "Traceback" not in node.log()
    finally:
        await speaker.stop()
