"""Reload rules: every setting applied or refused by name; auto-RDs stable across reloads;
reloads one at a time (a SIGHUP during one queues exactly one more); an essential task dying
stops the daemon with a non-zero exit code and one log line."""

from __future__ import annotations

import asyncio

from evpnd import reload_rules
from evpnd.config import Config, core_settings, parse_config
from evpnd.daemon import EXIT_TASK_DIED, Daemon
from evpnd.routes.rd import stable_rd_indexes

BASE = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "192.0.2.1"}


def cfg_of(**extra: object) -> Config:
    return parse_config({**BASE, **extra}, "test.yaml")


def l2(*vnis: int) -> list[dict]:
    return [{"vni": v, "bridge": f"br{v}"} for v in vnis]


def test_every_setting_is_applied_or_refused_never_ignored():
    fields = set(Config.model_fields)
    assert fields == set(reload_rules.APPLIED) | set(reload_rules.RESTART)
    assert not set(reload_rules.APPLIED) & set(reload_rules.RESTART)


def test_socket_and_runtime_dir_changes_are_refused_by_name():
    old = cfg_of()
    new = cfg_of(api={"socket": "/run/other.sock", "mode": 0o600}, runtime_dir="/run/x")
    refused = dict(reload_rules.refused(old, new))
    assert set(refused) == {"api.socket", "api.mode", "runtime_dir"}
    assert all("needs a restart" in reason for reason in refused.values())


def test_log_level_metrics_peers_vnis_are_applied():
    old = cfg_of(l2vnis=l2(100))
    new = cfg_of(
        l2vnis=l2(100, 200),
        log_level="debug",
        metrics={"enabled": True, "port": 9999},
        peers=[{"address": "10.0.0.2", "remote_as": 65002}],
    )
    assert reload_rules.refused(old, new) == []
    assert set(reload_rules.changed(old, new)) == {
        "l2vnis", "log_level", "metrics.enabled", "metrics.port", "peers",
    }  # fmt: skip
    assert reload_rules.changed(old, old) == []


def rds(cfg: Config) -> dict[int, str]:
    return {item.vni: item.rd for item in core_settings(cfg).l2vnis}


def test_removing_a_vni_keeps_the_others_rds():
    old = cfg_of(l2vnis=l2(100, 200, 300))
    new = cfg_of(l2vnis=l2(200, 300))
    assert rds(new) == {200: "192.0.2.1:1", 300: "192.0.2.1:2"}  # positional: renumbered
    new.keep_rd_indexes(old)
    assert rds(new) == {200: "192.0.2.1:2", 300: "192.0.2.1:3"}  # kept
    assert new.rd_for(300) == "192.0.2.1:3"  # the API shows the same RD


def test_adding_a_vni_takes_the_lowest_free_index_and_renumbers_nothing():
    old = cfg_of(l2vnis=l2(100, 200, 300))
    mid = cfg_of(l2vnis=l2(200, 300))
    mid.keep_rd_indexes(old)
    new = cfg_of(l2vnis=l2(50, 200, 300, 400))  # inserted first, and appended
    new.keep_rd_indexes(mid)
    assert rds(new) == {50: "192.0.2.1:1", 200: "192.0.2.1:2", 300: "192.0.2.1:3",
                        400: "192.0.2.1:4"}  # fmt: skip
    again = cfg_of(l2vnis=l2(400, 300, 200, 50))  # reordering the file changes nothing
    again.keep_rd_indexes(new)
    assert rds(again) == rds(new)


def test_explicit_rds_stay_and_l3vnis_share_the_index_space():
    old = cfg_of(
        l2vnis=[{"vni": 100, "bridge": "br100", "rd": "10.0.0.1:77"}, *l2(200)],
        l3vnis=[{"vni": 5000, "table": 5000}],
    )
    assert old.rd_for(5000) == "192.0.2.1:3" and old.rd_for(100) == "10.0.0.1:77"
    new = cfg_of(l2vnis=l2(200), l3vnis=[{"vni": 5000, "table": 5000}])
    new.keep_rd_indexes(old)
    assert new.rd_for(200) == "192.0.2.1:2" and new.rd_for(5000) == "192.0.2.1:3"


def test_stable_rd_indexes_is_a_function_of_the_previous_indexes():
    assert stable_rd_indexes({}, [7, 8, 9]) == {7: 1, 8: 2, 9: 3}
    assert stable_rd_indexes({7: 1, 8: 2, 9: 3}, [9, 10]) == {9: 3, 10: 1}
    assert stable_rd_indexes({9: 3, 10: 1}, [9, 10, 11, 12]) == {9: 3, 10: 1, 11: 2, 12: 4}


async def test_sighups_during_a_reload_queue_exactly_one_more(tmp_path):
    # The Daemon's edges are built but never started; reload() is replaced by a slow stand-in
    # that counts overlapping runs (the real reload needs a kernel and ExaBGP: netns tests).
    daemon = Daemon(cfg_of(runtime_dir=str(tmp_path)), config_path=None)
    running = 0
    overlap = 0
    calls = 0

    async def slow_reload() -> bool:
        nonlocal running, overlap, calls
        calls += 1
        running += 1
        overlap = max(overlap, running)
        await asyncio.sleep(0.05)
        running -= 1
        return True

    daemon.reload = slow_reload  # type: ignore[method-assign]
    for _ in range(5):
        daemon.request_reload()

    async def second_run() -> None:
        while calls < 2:  # the first run ended, the queued one runs
            await asyncio.sleep(0.005)

    await asyncio.wait_for(second_run(), 5)
    daemon.request_reload()  # during the second run: one more
    assert daemon._reload_task is not None
    while not daemon._reload_task.done():
        await asyncio.sleep(0.01)
    assert overlap == 1
    assert calls == 3  # the first, one queued for the burst of four, one for the late one


async def test_an_essential_task_dying_stops_the_daemon_non_zero(tmp_path, capsys):
    from evpnd.logs import setup_logging

    setup_logging("info", force_json=True)
    daemon = Daemon(cfg_of(runtime_dir=str(tmp_path)), config_path=None)

    async def broken() -> None:
        raise RuntimeError("injected by the test")

    daemon._essential(broken(), "owner")
    await asyncio.wait_for(daemon._stop.wait(), 5)
    assert daemon.exit_code == EXIT_TASK_DIED
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "essential_task_died" in ln]
    assert len(lines) == 1 and '"task": "owner"' in lines[0] and "injected" in lines[0]


async def test_the_queue_pushes_back_on_the_speaker_beyond_its_bound(tmp_path):
    """Events beyond QUEUE_HIGH_ROUTES: room() (which the speaker awaits before each read from
    ExaBGP) waits until the owner task has caught up, then lets the reads go on."""
    from evpnd.core.events import RouteUpdate
    from evpnd.daemon import QUEUE_HIGH_ROUTES
    from evpnd.routes.evpn import MacIpKey

    daemon = Daemon(cfg_of(runtime_dir=str(tmp_path)), config_path=None)
    keys = [MacIpKey("192.0.2.9:1", 0, f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", None)
            for i in range(1000)]  # fmt: skip
    for _ in range(QUEUE_HIGH_ROUTES // 1000 + 10):
        daemon.emit(RouteUpdate("192.0.2.9", [], list(keys)))
    assert daemon._queued_routes >= QUEUE_HIGH_ROUTES
    waiting = asyncio.create_task(daemon.room())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the speaker would not read now
    daemon._essential(daemon._owner(), "owner")
    await asyncio.wait_for(waiting, 10)
    assert daemon._queued_routes < QUEUE_HIGH_ROUTES and daemon.backpressure_waits >= 1
    daemon._stopping = True
    for task in daemon._tasks:
        task.cancel()
    await asyncio.gather(*daemon._tasks, return_exceptions=True)


async def test_the_speaker_reads_nothing_while_there_is_no_room(tmp_path):
    from evpnd.bgp.speaker import Speaker

    gate = asyncio.Event()
    events: list = []

    async def room() -> None:
        await gate.wait()

    speaker = Speaker(cfg_of(runtime_dir=str(tmp_path)), events.append, room=room)
    reader = asyncio.StreamReader()
    reader.feed_data(b'{"type": "state", "neighbor": {"address": {"peer": "10.0.0.2"}}}\n')
    reader.feed_eof()
    writer = object()
    speaker._writer = writer  # type: ignore[assignment]
    task = asyncio.create_task(speaker._read_loop(reader, writer))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not task.done() and len(reader._buffer) > 0  # type: ignore[attr-defined]
    gate.set()
    await asyncio.wait_for(task, 5)
    assert len(reader._buffer) == 0  # type: ignore[attr-defined]
