"""The netlink thread (evpnd/dataplane/worker.py) without a kernel: only its hand-off."""

from __future__ import annotations

import sys
import time

from evpnd.dataplane.worker import Worker


async def test_an_idle_thread_starts_its_work_while_the_loop_thread_keeps_busy():
    """The first batch of a burst is written while the speaker goes on decoding in Python:
    the woken thread must not wait for the interpreter's switch interval to get the GIL
    (issue 14: 4 ms of a 12 ms first entry). The interval is made 100 ms here so that a
    missing hand-off cannot hide in the noise of a loaded machine: without it the thread starts
    after ~100 ms, with it within a few; the bound (40 ms) leaves room both ways."""
    worker = Worker()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.1)
    try:
        await worker.call(lambda: None)  # the thread exists and waits for work
        for _ in range(3):
            started: list[float] = []
            t0 = time.perf_counter()
            fut = worker.submit(lambda s=started: s.append(time.perf_counter()))
            assert worker.busy
            while time.perf_counter() - t0 < 0.15:  # the loop thread decoding: pure Python
                pass
            await fut
            assert started[0] - t0 < 0.04, f"started after {1000 * (started[0] - t0):.1f} ms"
            assert not worker.busy
    finally:
        sys.setswitchinterval(interval)
        worker.shutdown()
