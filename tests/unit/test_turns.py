"""Each turn of the event loop is bounded by time (issue 10: the API answers during a flood)."""

from __future__ import annotations

import asyncio
import time

from evpnd.dataplane import scheduler as sch
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import FDB, DesiredState
from evpnd.dataplane.scheduler import Scheduler
from evpnd.turns import Turn
from tests.unit.test_dataplane_scheduler import dm


def test_a_turn_is_over_once_its_budget_is_spent_and_pause_yields_then():
    turn = Turn(0.005)
    assert not turn.over()
    time.sleep(0.006)
    assert turn.over()
    order: list[str] = []

    async def busy() -> None:
        await turn.pause()  # over: yields, so the other task runs first
        order.append("busy")

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        await asyncio.gather(busy(), other())

    asyncio.run(main())
    assert order == ["other", "busy"]
    assert not turn.over()  # a new turn started after the yield


def test_chunks_stop_growing_and_shrink_when_planning_takes_longer_than_its_budget(monkeypatch):
    """On a slow or loaded machine chunks stay small, so the loop runs between them."""
    monkeypatch.setattr(sch, "FIRST_CHUNK_KEYS", 4)
    monkeypatch.setattr(sch, "CHUNK_KEYS", 64)
    d = DesiredState(fdb={100: {f"02:00:00:00:01:{i:02x}": "10.0.0.2" for i in range(200)}})
    keys = sorted((FDB, 100, mac) for mac in d.fdb[100])
    monkeypatch.setattr(sch, "PLAN_BUDGET", 10.0)  # fast: grows x4 to full chunks
    sizes = [len(c) for c in Scheduler().chunks(keys, d, Mirror(), dm(), allow_delete=True)]
    assert sizes[:3] == [4, 16, 64]
    monkeypatch.setattr(sch, "PLAN_BUDGET", 0.0)  # every chunk over budget: never grows
    sizes = [len(c) for c in Scheduler().chunks(keys, d, Mirror(), dm(), allow_delete=True)]
    assert set(sizes) == {4} and sum(sizes) == 200


async def test_the_first_line_of_a_burst_gets_a_turn_of_its_own(tmp_path):
    """The speaker waited for data (the pipeline was idle): it hands the first line's events
    over and yields, so that the owner task applies them and the dataplane writes them while
    the rest of the burst is decoded; later lines are decoded for a whole turn (issue 14: the
    first FDB entry within milliseconds of the first UPDATE). What the owner starts (the
    dataplane's pass task, created while the speaker is ready) runs before the next line too."""
    from evpnd.bgp.speaker import Speaker
    from tests.unit.test_reload_rules import cfg_of

    order: list[str] = []
    loop = asyncio.get_running_loop()

    def owner() -> None:  # the owner task: applies, then creates the dataplane's pass task
        order.append("loop")
        loop.call_soon(order.append, "pass")

    def on_line(line: str) -> None:  # what the speaker does with a line is not this test's
        order.append("line")
        loop.call_soon(owner)  # runs when the speaker yields

    speaker = Speaker(cfg_of(runtime_dir=str(tmp_path)), lambda event: None)
    speaker._on_line = on_line  # type: ignore[method-assign]
    reader = asyncio.StreamReader()
    writer = object()
    speaker._writer = writer  # type: ignore[assignment]
    task = asyncio.create_task(speaker._read_loop(reader, writer))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)  # nothing to read: the speaker waits
    # ExaBGP's JSON (the session's state) first, after a wait; the UPDATEs follow at once in
    # the next read: the turn is kept for the first UPDATE
    reader.feed_data(b'{ "type": "state" }\n')
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["line", "loop", "pass"]
    reader.feed_data(b"evpnd-rx 1\nevpnd-rx 2\nevpnd-rx 3\n")
    await asyncio.sleep(0.01)
    # the first UPDATE, the loop ran, the rest of the burst in one turn
    rest = ["line", "loop", "pass", "line", "line", "loop", "loop", "pass", "pass"]
    assert order == ["line", "loop", "pass"] + rest
    reader.feed_eof()
    await asyncio.wait_for(task, 5)
