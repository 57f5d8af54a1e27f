"""When to reconcile what, how much at a time, and what came of it. Pure and synchronous: no
netlink, no asyncio. The life cycle (dataplane.py) runs the chunks it yields through a backend
in the worker thread and hands the finished ones back.

    dirty keys   the core's changed keys (DesiredState.drain) plus keys to repair (an owned
                 object changed behind evpnd's back and is still wanted); applied at once,
                 deletions included
    full pass    every key the managers know (drift repair, sweeps of owned-but-unwanted
                 objects); deletions only once `sweep_hold_time` has passed since start, so a
                 restarted evpnd keeps forwarding while BGP re-converges
    chunking     keys are planned up to CHUNK_KEYS at a time so the driver can plan chunk k+1 while
                 the worker's `sendmmsg` for chunk k runs in the kernel (GIL released); each
                 pass starts with FIRST_CHUNK_KEYS and grows x4 per chunk, so the first entries
                 reach the kernel within milliseconds of a burst (first-entry latency, issue
                 14) while a large pass still runs in big chunks; a chunk that took more
                 than PLAN_BUDGET to plan halves the next (the event loop's turn, issue 10)
    outcome      finished ops go to their managers (mirror updates); refusals are counted and
                 kept (last 20); a batch whose outcome is unknown asks for a fresh dump
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Protocol

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DesiredState, DeviceMap, DirtyKey
from evpnd.dataplane.plan import Planner

CHUNK_KEYS = 8192
FIRST_CHUNK_KEYS = 128
# Seconds planning one chunk may take: with the outcome of the chunk before (about as much
# work) it is one turn of the event loop (evpnd/turns.py TURN_BUDGET, not imported: the
# scheduler is pure and imports no part that loads asyncio).
PLAN_BUDGET = 0.005


class Log(Protocol):
    """The structured logger the life cycle passes in (structlog loads asyncio: not here)."""

    def warning(self, event: str, **kw: Any) -> Any: ...

    def error(self, event: str, **kw: Any) -> Any: ...


class _Quiet:
    def warning(self, event: str, **kw: Any) -> None:
        pass

    def error(self, event: str, **kw: Any) -> None:
        pass


class Scheduler:
    def __init__(
        self, planner: Planner | None = None, sweep_hold_time: float = 0.0, log: Log | None = None
    ) -> None:
        self.planner = planner or Planner()
        self.log = log or _Quiet()
        self.sweep_hold_time = sweep_hold_time
        self.started_at = 0.0
        self.repair: set[DirtyKey] = set()
        self.need_dump = False  # the mirror may be wrong: the next full pass dumps first
        self.last_errors: list[dict] = []
        self.stats: dict[str, Any] = {
            "ops": 0, "errors": 0, "passes": 0, "full_passes": 0, "repairs": 0,
            "conflicts": 0, "held": 0, "invalid": 0, "last_pass_seconds": 0.0,
            "last_pass_ops": 0, "last_pass_planning_seconds": 0.0, "last_full_seconds": 0.0,
            "last_full_cpu_seconds": 0.0,
        }  # fmt: skip

    # ---- what and when ------------------------------------------------------------------------

    def start(self, now: float) -> None:
        self.started_at = now

    def hold_over(self, now: float) -> bool:
        """Whether a full pass may delete owned-but-unwanted objects yet."""
        return now - self.started_at >= self.sweep_hold_time

    def hold_remaining(self, now: float) -> float:
        return max(0.0, self.started_at + self.sweep_hold_time - now)

    def wants_repair(self, key: DirtyKey) -> None:
        self.repair.add(key)

    def pending(self, desired: DesiredState) -> bool:
        return bool(desired.dirty or self.repair)

    def dirty_keys(self, desired: DesiredState) -> set[DirtyKey]:
        """The core's changed keys and the ones to repair, taken (each key once)."""
        keys = desired.drain()
        if self.repair:
            self.stats["repairs"] += len(self.repair)
            keys |= self.repair
            self.repair = set()
        return keys

    def full_keys(self, desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> list[DirtyKey]:
        return self.planner.all_keys(desired, mirror, dm)

    # ---- how much at a time -------------------------------------------------------------------

    def chunks(
        self,
        keys: list[DirtyKey],
        desired: DesiredState,
        mirror: Mirror,
        dm: DeviceMap,
        allow_delete: bool,
    ) -> Iterator[list[nl.Op]]:
        """The ops of each chunk of keys, planned when asked for (against the mirror as it is
        then); an empty list for a chunk with nothing to do."""
        planning = 0.0
        held = 0
        i, size = 0, min(FIRST_CHUNK_KEYS, CHUNK_KEYS)
        while i < len(keys):
            t0 = time.monotonic()
            ops, pst = self.planner.plan(keys[i : i + size], desired, mirror, dm, allow_delete)
            i += size
            took = time.monotonic() - t0
            # Grow x4 while a chunk plans well within its share of the loop's turn; shrink when
            # one took longer (a slow or loaded machine): the event loop then runs between
            # smaller chunks and the API answers within its bound (issue 10, evpnd/turns.py).
            if took < PLAN_BUDGET / 4:
                size = min(size * 4, CHUNK_KEYS)
            elif took > PLAN_BUDGET:
                size = max(size // 2, FIRST_CHUNK_KEYS)
            planning += took
            self.stats["conflicts"] += len(pst.conflicts)
            held += pst.held
            self.stats["held"] = held
            for key, why in pst.invalid:
                self.stats["invalid"] += 1
                self.log.warning("invalid desired object skipped", key=str(key), error=why)
            self.stats["last_pass_planning_seconds"] = round(planning, 4)
            yield ops

    # ---- what came of it ----------------------------------------------------------------------

    def finished(self, mirror: Mirror, ops: list[nl.Op], complete: bool) -> None:
        """A batch is back from the kernel (each op's `error` set)."""
        if not complete:
            self.need_dump = True  # some error reports were lost
        for op in self.planner.apply_results(mirror, ops):
            self.stats["errors"] += 1
            err = {"op": op.tag[0], "vni": op.tag[1], "key": op.tag[2]}
            err["error"] = os.strerror(-op.error) if op.error < 0 else str(op.error)
            self.last_errors = (self.last_errors + [err])[-20:]
            if self.stats["errors"] <= 100 or self.stats["errors"] % 1000 == 0:
                self.log.warning("netlink operation failed", **err)

    def batch_failed(self, ops: list[nl.Op], error: str) -> None:
        self.log.error("netlink batch failed", error=error, ops=len(ops))
        self.stats["errors"] += len(ops)
        self.need_dump = True

    def pass_done(self, ops: int, seconds: float) -> None:
        self.stats["passes"] += 1
        self.stats["ops"] += ops
        self.stats["last_pass_ops"] = ops
        self.stats["last_pass_seconds"] = round(seconds, 4)

    def full_pass_done(self, seconds: float, cpu_seconds: float = 0.0) -> None:
        """cpu_seconds: the process's CPU over the pass (issue 17: reported in metrics and
        `evpnctl show status`; it includes whatever else the process did meanwhile)."""
        self.stats["full_passes"] += 1
        self.stats["last_full_seconds"] = round(seconds, 4)
        self.stats["last_full_cpu_seconds"] = round(cpu_seconds, 4)
