"""Faults around the Speaker: ExaBGP killed, a flapping peer, TCP MD5, reconfiguration."""

from __future__ import annotations

import os
import signal

import pytest

from evpnd.core.events import PeerState
from tests.netns.speaker_lab import (
    Recorder,
    frr_evpn_routes,
    frr_peer,
    mac_paths,
    make_speaker,
    pair,
    peer,
    speaker_config,
    until,
)

pytestmark = [pytest.mark.netns, pytest.mark.frr]

OUR = ("192.0.2.1:1", "[2]:[0]:[48]:[02:00:00:00:00:00]")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_exabgp_killed_is_restarted_and_routes_come_back(lab, tmp_path):
    p = pair(lab)
    frr = frr_peer(lab, p.b, [("10.0.1.1", 65001)])
    rec = Recorder()
    cfg = speaker_config(tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1")])
    speaker = make_speaker(cfg, p.a, rec)
    paths = mac_paths(3)
    replays = []
    speaker.set_resync(lambda: replays.append(1) or paths)
    await speaker.start()
    try:
        await until(lambda: rec.state("10.0.1.2") == "up", 30, what="session up")
        await until(lambda: OUR in frr_evpn_routes(frr), 30, 0.1, "our route in FRR")
        old_pid = speaker.status()["exabgp_pid"]
        ups = rec.states("10.0.1.2").count("up")
        os.kill(old_pid, signal.SIGKILL)
        # the Speaker reports the session down itself (ExaBGP cannot any more) ...
        await until(lambda: rec.state("10.0.1.2") == "down", 10, what="PeerState down")
        down = [e for e in rec.events if isinstance(e, PeerState) and e.state == "down"][-1]
        assert "exabgp exited" in down.reason
        # ... restarts ExaBGP, replays the local paths, and the session returns
        await until(lambda: rec.states("10.0.1.2").count("up") > ups, 30, what="session back")
        status = speaker.status()
        assert status["restarts"] == 1 and status["exabgp_pid"] != old_pid
        assert not _pid_alive(old_pid)
        assert len(replays) == 2
        await until(lambda: OUR in frr_evpn_routes(frr), 30, 0.1, "our route in FRR again")
    finally:
        await speaker.stop()
    assert not _pid_alive(status["exabgp_pid"])  # stop() leaves no ExaBGP behind


async def test_flapping_peer_ends_up_with_no_stale_state(lab, tmp_path):
    p = pair(lab)
    frr = frr_peer(lab, p.b, [("10.0.1.1", 65001)])
    rec = Recorder()
    cfg = speaker_config(tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1")])
    speaker = make_speaker(cfg, p.a, rec)
    speaker.set_resync(lambda: mac_paths(20))
    await speaker.start()
    try:
        await until(lambda: rec.state("10.0.1.2") == "up", 30, what="session up")
        for _ in range(20):
            ups = rec.states("10.0.1.2").count("up")
            frr.vtysh("clear bgp *")
            await until(lambda ups=ups: rec.states("10.0.1.2").count("up") > ups, 40,
                        what="session back after clear")  # fmt: skip
        states = rec.states("10.0.1.2")
        assert states[-1] == "up"
        assert states.count("down") >= 20
        status = speaker.status()["peers"]["10.0.1.2"]
        assert status["state"] == "up" and status["flaps"] >= 20
        # our routes are all on FRR again (ExaBGP re-sends its Adj-RIB-Out after each flap)
        await until(
            lambda: sum(1 for rd, _ in frr_evpn_routes(frr) if rd == "192.0.2.1:1") == 20,
            30, 0.2, "our 20 routes in FRR",
        )  # fmt: skip
        # what we hold from FRR is what FRR holds now (the down events flushed older state)
        await until(lambda: rec.from_peer("10.0.1.2"), 20, what="FRR's routes again")
    finally:
        await speaker.stop()


async def test_md5_wrong_password_never_comes_up_and_fixing_it_does(lab, tmp_path):
    p = pair(lab)
    frr_peer(lab, p.b, [("10.0.1.1", 65001)], extra=" neighbor 10.0.1.1 password s3cret\n")
    rec = Recorder()
    wrong = speaker_config(tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1", password="nope")])
    speaker = make_speaker(wrong, p.a, rec)
    await speaker.start()
    try:
        with pytest.raises(TimeoutError):
            await until(lambda: rec.state("10.0.1.2") == "up", 8, what="session up")
        right = speaker_config(
            tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1", password="s3cret")]
        )
        await speaker.reconfigure(right)  # a reload (SIGUSR1), not a restart
        await until(lambda: rec.state("10.0.1.2") == "up", 30, what="MD5 session up")
        assert speaker.status()["restarts"] == 0
    finally:
        await speaker.stop()


async def test_adding_and_removing_a_peer_does_not_bounce_the_others(lab, tmp_path):
    p = pair(lab)
    c = lab.netns("c")
    lab.link(p.a, "eth1", c, "eth0", "10.0.2.1/24", "10.0.2.2/24")
    frr_b = frr_peer(lab, p.b, [("10.0.1.1", 65001)])
    from evpnd.lab.frr import Frr, evpn_leaf_conf

    frr_c = Frr(c, evpn_leaf_conf(65003, "192.0.2.3", [("10.0.2.1", 65001)]))
    lab.on_cleanup(frr_c.remove)
    frr_c.start()
    rec = Recorder()
    b_peer = peer("10.0.1.2", 65002, "10.0.1.1")
    c_peer = peer("10.0.2.2", 65003, "10.0.2.1")
    cfg = speaker_config(tmp_path, peers=[b_peer])
    speaker = make_speaker(cfg, p.a, rec)
    speaker.set_resync(lambda: mac_paths(5))
    await speaker.start()
    try:
        await until(lambda: rec.state("10.0.1.2") == "up", 30, what="b up")
        await until(lambda: OUR in frr_evpn_routes(frr_b), 30, 0.1, "routes on b")
        before = rec.states("10.0.1.2")
        await speaker.reconfigure(speaker_config(tmp_path, peers=[b_peer, c_peer]))
        await until(lambda: rec.state("10.0.2.2") == "up", 30, what="c up")
        # the new peer gets every local path (replayed for it alone)
        await until(lambda: OUR in frr_evpn_routes(frr_c), 30, 0.1, "routes on c")
        await speaker.reconfigure(speaker_config(tmp_path, peers=[b_peer]))
        await until(lambda: rec.state("10.0.2.2") == "down", 30, what="c down")
        assert rec.states("10.0.1.2") == before  # b never went down
        assert speaker.status()["restarts"] == 0
        assert "10.0.2.2" not in speaker.status()["peers"]
        await until(lambda: OUR not in frr_evpn_routes(frr_c), 30, 0.1, "c lost our routes")
        assert OUR in frr_evpn_routes(frr_b)
    finally:
        await speaker.stop()


async def test_ttl_security(lab, tmp_path):
    """GTSM (RFC 5082) against FRR's ttl-security: up only when we send with TTL 255."""
    p = pair(lab)
    frr_peer(lab, p.b, [("10.0.1.1", 65001)], extra=" neighbor 10.0.1.1 ttl-security hops 1\n")
    rec = Recorder()
    plain = speaker_config(tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1")])
    speaker = make_speaker(plain, p.a, rec)
    await speaker.start()
    try:
        with pytest.raises(TimeoutError):  # our packets arrive with TTL 63 (Linux default - 1)
            await until(lambda: rec.state("10.0.1.2") == "up", 6, what="session up")
        gtsm = speaker_config(tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1", ttl_security=1)])
        await speaker.reconfigure(gtsm)
        await until(lambda: rec.state("10.0.1.2") == "up", 30, what="GTSM session up")
    finally:
        await speaker.stop()
