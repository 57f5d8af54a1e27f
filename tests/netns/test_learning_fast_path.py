"""Local learning from the monitor: the fast path (NetlinkBackend.read_events recognising an
access port's entry from fixed offsets) against the kernel's real notifications, and the
LocalMacBatch one read becomes (issue 14).

Each case is checked twice: the LocalMac events the Dataplane emits (what the core gets), and
which way the notification went (the fast path, Dataplane.port_fdb, or the parser,
Dataplane.neigh_event), so that a layout the fast path does not know falls back, never lost.
"""

from __future__ import annotations

import subprocess

import pytest

from evpnd.core.desired import DesiredState
from evpnd.core.events import LocalMac, LocalMacBatch, unbatched
from evpnd.dataplane import Dataplane
from tests.netns.test_dataplane_kernel import config, leaf, wait_until

pytestmark = pytest.mark.netns

DYN, STATIC, PERM, MCAST, EXT, LAST = (
    "02:01:00:00:00:01",
    "02:01:00:00:00:02",
    "02:01:00:00:00:03",
    "03:01:00:00:00:04",
    "02:01:00:00:00:05",
    "02:01:00:00:00:06",
)


async def test_access_port_entries_take_the_fast_path_and_the_rest_the_parser(lab):
    ns = leaf(lab)
    emitted: list = []
    dp = Dataplane(config(), emitted.append, netns=ns.name)
    fast: list[tuple] = []
    parsed: list[tuple] = []
    port_fdb, neigh_event = dp.port_fdb, dp.neigh_event

    def spy_fast(vni, mac, deleted, state):
        if mac.startswith(("02:01", "03:01")):
            fast.append((vni, mac, deleted))
        port_fdb(vni, mac, deleted, state)

    def spy_parsed(n):
        if n.mac is not None and n.mac.startswith(("02:01", "03:01")):
            parsed.append((n.mac, n.deleted))
        neigh_event(n)

    dp.port_fdb, dp.neigh_event = spy_fast, spy_parsed  # the backend calls the sink's
    await dp.start(DesiredState())
    try:
        # (h1, p1's peer, sends frames of its own: its MAC is learned too and left out here)
        events = lambda: [e for x in emitted for e in unbatched(x) if e.mac[:5] == "02:01"]  # noqa: E731

        def bridge(*args: str) -> None:
            ns.run(["bridge", "fdb", *args])

        bridge("add", DYN, "dev", "p1", "master", "dynamic")  # what learning from a frame makes
        bridge("add", STATIC, "dev", "p1", "master", "static")  # NUD_NOARP: sticky
        await wait_until(lambda: len(events()) >= 2, 3.0, "two local MACs")
        assert events() == [LocalMac(100, DYN, None, True, False),
                            LocalMac(100, STATIC, None, True, True)]  # fmt: skip
        assert fast == [(100, DYN, False), (100, STATIC, False)]
        bridge("del", DYN, "dev", "p1", "master")  # aged out or removed
        await wait_until(lambda: len(events()) >= 3, 3.0, "the MAC gone")
        assert events()[2] == LocalMac(100, DYN, None, False, False)
        assert fast[-1] == (100, DYN, True)

        # Not local MACs: the port's own (permanent), a multicast source, another
        # controller's (extern_learn; the monitor's filter drops those in the kernel). None is
        # an event; the permanent one is not the fast path's and goes to the parser, which
        # ignores it as before. A last dynamic MAC marks the end.
        bridge("add", PERM, "dev", "p1", "master", "permanent")
        bridge("add", MCAST, "dev", "p1", "master", "dynamic")
        bridge("add", EXT, "dev", "p1", "master", "dynamic", "extern_learn")
        bridge("add", LAST, "dev", "p1", "master", "dynamic")
        await wait_until(lambda: len(events()) >= 4, 3.0, "the last MAC")
        assert events()[3:] == [LocalMac(100, LAST, None, True, False)]
        assert (PERM, False) in parsed
        assert (100, MCAST, False) in fast  # the learner drops it (IEEE 802.3)
        assert not [f for f in fast if f[1] in (PERM, EXT)]
    finally:
        await dp.stop()


async def test_a_burst_of_learning_reaches_the_core_as_batches(lab):
    ns = leaf(lab)
    emitted: list = []
    dp = Dataplane(config(), emitted.append, netns=ns.name)
    await dp.start(DesiredState())
    try:
        n = 2000
        macs = [f"02:02:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(n)]
        batch = "".join(f"fdb add {m} dev p1 master dynamic\n" for m in macs)
        subprocess.run(ns.cmd("bridge", "-batch", "-"), input=batch, text=True, check=True)
        events = lambda: [e for x in emitted for e in unbatched(x) if e.mac[:5] == "02:02"]  # noqa: E731
        await wait_until(lambda: len(events()) >= n, 10.0, f"{n} local MACs")
        assert [e.mac for e in events()] == macs  # every MAC, once, in the kernel's order
        batches = [x for x in emitted if isinstance(x, LocalMacBatch)]
        assert batches, "a burst of 2,000 notifications must come as LocalMacBatch events"
        assert len(emitted) < n / 4, f"{len(emitted)} events for {n} MACs: hardly batched"
        assert max(len(b.macs) for b in batches) <= 256  # one monitor read's worth at most
    finally:
        await dp.stop()
