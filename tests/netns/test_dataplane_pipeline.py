"""A pass keeps several chunks queued in the netlink thread (scheduler.IN_FLIGHT_OPS): the kernel
goes on with the next chunks while the event loop is busy elsewhere, and outcomes are taken in
order. Waiting for each chunk's outcome before submitting the one after next left the kernel
idle for a round trip through the loop per chunk, 25-90 ms for 1,024 FDB adds while UPDATEs
from two route reflectors kept the loop busy (issue 14)."""

from __future__ import annotations

import threading

import pytest

from evpnd.core.desired import FDB, DesiredState
from evpnd.dataplane import Dataplane
from evpnd.dataplane import scheduler as sch
from tests.netns.test_dataplane_kernel import bridged, config, leaf, remote

pytestmark = pytest.mark.netns


async def test_chunks_queue_behind_one_whose_outcome_is_out(lab, monkeypatch):
    monkeypatch.setattr(sch, "FIRST_CHUNK_KEYS", 64)
    monkeypatch.setattr(sch, "CHUNK_KEYS", 64)
    ns = leaf(lab)
    d = DesiredState()
    dp = Dataplane(config(), lambda e: None, netns=ns.name)
    await dp.start(d)
    try:
        assert dp.backend is not None
        real_apply, real_submit = dp.backend.apply, dp.worker.submit
        submitted = 0
        queued = threading.Event()  # set once 4 chunks are in the thread's queue
        held: list[bool] = []

        def apply(ops):
            # The first chunk's write waits (in the netlink thread) until chunks queue behind
            # it: they can only if the pass submits them while this outcome is still out.
            if not held:
                held.append(queued.wait(5.0))
            return real_apply(ops)

        def submit(fn, *args):
            nonlocal submitted
            if fn is apply:
                submitted += 1
                if submitted >= 4:
                    queued.set()
            return real_submit(fn, *args)

        monkeypatch.setattr(dp.backend, "apply", apply)
        monkeypatch.setattr(dp.worker, "submit", submit)
        macs = [f"02:30:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(640)]
        d.fdb[100] = {mac: f"10.0.0.{2 + i % 3}" for i, mac in enumerate(macs)}
        d.dirty.update((FDB, 100, mac) for mac in macs)
        dp.wanted_changed()
        await dp.idle()
        assert held == [True], "no chunk was queued while the first one's outcome was out"
        assert submitted == 10  # 640 keys in chunks of 64
        assert remote(ns, "vx100") == d.fdb[100]
        assert bridged(ns, "vx100") == set(macs)
        assert dp.mirror.fdb[100] == d.fdb[100]  # every outcome taken, in order
        assert dp.stats()["errors"] == 0
    finally:
        await dp.stop()
