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
