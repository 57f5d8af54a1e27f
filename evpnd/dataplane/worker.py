"""The one thread that does blocking netlink work, optionally inside a network namespace.

Why a thread: a batch of 100k FDB writes keeps the kernel busy for ~0.4 s inside `sendmmsg`
(the GIL is released there; mmsg.py) and building the messages is Python work; on the event
loop thread that would stall the BGP speaker and the control socket. All requests (writes,
dumps, pyroute2 device calls) go through this single thread, so they are serialised and need no
locks. The event monitor socket is created here too (so it lives in the same namespace) but is
read by the event loop with `add_reader`: events are small and must not wait behind a batch.

`netns` (a name under /var/run/netns) exists for tests and labs: setns(2) with CLONE_NEWNET
moves only the calling thread, and sockets stay in the namespace they were created in.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
HANDOFF = 0.002  # at most this long the loop thread waits for an idle thread to start
CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    """Move the calling thread into the named network namespace."""
    path = name if name.startswith("/") else f"/var/run/netns/{name}"
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _started(started: threading.Event, fn: Callable[..., T], args: tuple) -> T:
    started.set()
    return fn(*args)


class Worker:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="evpnd-netlink",
            initializer=enter_netns if netns else None,
            initargs=(netns,) if netns else (),
        )
        self._in_flight = 0

    @property
    def busy(self) -> bool:
        """Work submitted and not finished yet (as the loop has seen it)."""
        return self._in_flight > 0

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """`call` without the coroutine: in the thread's queue before this returns.

        Work for an idle thread is started before this returns (up to HANDOFF seconds). The
        woken thread needs the GIL, and the loop thread decoding a burst of UPDATEs keeps it
        until the interpreter's switch interval (5 ms then; the daemon sets 1 ms since) forces
        it to let go: measured, 4 ms of a 12 ms first entry at session start (issue 14).
        Waiting on an Event releases the GIL; the thread takes it, says it started, and gives
        it back at its first system call."""
        loop = asyncio.get_running_loop()
        if self._in_flight:  # busy: queued behind the work it is doing
            fut = loop.run_in_executor(self._pool, fn, *args)
        else:
            started = threading.Event()
            fut = loop.run_in_executor(self._pool, _started, started, fn, args)
            started.wait(HANDOFF)
        self._in_flight += 1  # counted once queued (a shut-down pool raises above)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _fut: asyncio.Future) -> None:
        self._in_flight -= 1

    def call_sync(self, fn: Callable[..., T], *args: object) -> T:
        """For benchmarks and tests outside an event loop."""
        return self._pool.submit(fn, *args).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
