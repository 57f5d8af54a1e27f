"""The Dataplane: the asyncio life cycle that joins the pure parts (scheduler, managers, mirror,
learning) to a backend (netlink_backend by default) running in the one worker thread.

Threads: blocking kernel work (device set-up, dumps, batched writes) runs in the worker thread
(worker.py); the event loop plans batches, owns the mirror and the learner, and reads the
backend's monitor with `add_reader`. Large passes are planned in chunks (scheduler.py) so the
loop plans chunk k+1 while the worker's `sendmmsg` for chunk k runs in the kernel.

Reconciliation (DESIGN rule 4): `wanted_changed()` schedules one pass over the keys the core
marked dirty, coalesced over `coalesce_delay`; `reconcile_all()` diffs every key (periodically,
after a monitor overrun with a fresh dump, and once the sweep hold time after start has passed).
What a pass may delete and when is the scheduler's rule. An owned object deleted by someone else
comes back in the next pass, scheduled from the delete event.

The mirror is filled by one dump at start, then kept current from the outcome of evpnd's own
writes and from monitor events (deletions, and whatever a person or the bridge does; the echo of
evpnd's own adds, and of its deletes where eBPF loads (echo_filter.py), is dropped in the kernel
by a socket filter). It is dumped again only after an
overrun, an uncertain batch or a device change, and every `redump_interval` as a backstop: a
dump costs ~3 s at 100k MACs, so never on a hot path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable

from evpnd.config import Config
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.backend import Backend, Dump
from evpnd.dataplane.learning import LocalLearner
from evpnd.dataplane.mirror import Change, Mirror
from evpnd.dataplane.model import (
    FDB,
    DesiredState,
    DeviceMap,
    DirtyKey,
    Event,
    LocalMac,
    LocalMacBatch,
    TunnelPort,
)
from evpnd.dataplane.netlink_backend import NetlinkBackend
from evpnd.dataplane.plan import Planner
from evpnd.dataplane.scheduler import CHUNK_KEYS, Scheduler
from evpnd.dataplane.worker import Worker
from evpnd.logs import get_logger
from evpnd.turns import Turn

log = get_logger("evpnd.dataplane")

__all__ = ["CHUNK_KEYS", "Dataplane"]

_NONE: dict = {}
_EVENTS_PER_READ = 256  # netlink notifications per read_events call (a turn takes several)


class Dataplane:
    def __init__(
        self,
        cfg: Config,
        emit: Callable[[Event], None],
        *,
        netns: str | None = None,
        reconcile_interval: float = 30.0,
        redump_interval: float = 600.0,
        coalesce_delay: float = 0.005,
        backend: Callable[[], Backend] = NetlinkBackend,
    ) -> None:
        self.cfg = cfg
        self.emit = emit
        self.netns = netns
        self.reconcile_interval = reconcile_interval
        self.redump_interval = redump_interval
        self.coalesce_delay = coalesce_delay
        self.worker = Worker(netns)
        self.planner = Planner()
        self.scheduler = Scheduler(self.planner, cfg.sweep_hold_time, log)
        self.mirror = Mirror()
        self.learner = LocalLearner()
        self.dm = DeviceMap()
        self.desired = DesiredState()
        self._backend_factory = backend
        self.backend: Backend | None = None  # made in the worker thread (its namespace)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._scheduled = False
        self._tasks: list[asyncio.Task] = []
        self._last_dump = 0.0
        self._resetup_pending = False
        self._link_index_key: tuple[int, int] | None = None
        self._link_index_cache: tuple[set[int], dict[str, int], dict[str, int]] = (set(), {}, {})
        self._batch: list[LocalMac] | None = None  # set while the monitor is read
        self._counters: dict[str, float | int] = {
            "dumps": 0, "overruns": 0, "events": 0, "local_events": 0, "last_dump_seconds": 0.0,
            "last_periodic_cpu_seconds": 0.0,
            "tunnel_macs_not_advertised": 0, "tunnel_macs_refused": 0,
        }  # fmt: skip

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self, desired: DesiredState) -> None:
        self.desired = desired
        self._loop = asyncio.get_running_loop()
        self.scheduler.start(time.monotonic())
        self.backend = await self.worker.call(self._backend_factory)
        self.dm = await self.worker.call(self.backend.setup_devices, self.cfg)
        # Subscribe before dumping so nothing that happens meanwhile is missed.
        self._loop.add_reader(self.backend.monitor_fileno(), self._on_readable)
        await self._dump()
        async with self._lock:
            keys = set(self.scheduler.dirty_keys(desired))
            keys |= set(self.scheduler.full_keys(desired, self.mirror, self.dm))
            await self._apply(keys, allow_delete=False)
        self._tasks.append(self._loop.create_task(self._periodic()))
        log.info(
            "dataplane started",
            vnis=sorted(self.dm.vnis),
            problems=self.dm.problems,
            owned=self.mirror.counts(),
            local=self.learner.counts(),
        )

    async def stop(self) -> None:
        """Leave every kernel entry in place: a restart must not interrupt forwarding."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._tasks.clear()
        if self.backend is not None and self._loop is not None:
            self._loop.remove_reader(self.backend.monitor_fileno())
            async with self._lock:
                await self.worker.call(self.backend.close)
            self.backend = None
        self.worker.shutdown()

    async def reconfigure(self, cfg: Config) -> None:
        assert self.backend is not None
        old = {v.vni: v for v in self.cfg.all_vnis()}
        new = {v.vni: v for v in cfg.all_vnis()}
        async with self._lock:
            self.cfg = cfg
            self.scheduler.sweep_hold_time = cfg.sweep_hold_time
            gone = [self.dm.vnis[v] for v in old.keys() - new.keys() if v in self.dm.vnis]
            for dev in gone:
                # Devices evpnd made go (with their entries); adopted ones keep only others'.
                names = [dev.vxlan_name, dev.bridge_name, *filter(None, [dev.vrf_name])]
                names = names if dev.vlan is None else []  # vxlan_mode single: shared devices
                removed = await self.worker.call(self.backend.remove_owned, names)
                if dev.vxlan_name not in removed:
                    await self._apply(self._keys_of(dev.vni), allow_delete=True, desired=_EMPTY)
                self.mirror.forget_vni(dev.vni)
                self.learner.forget_vni(dev.vni)
                log.info("vni removed", vni=dev.vni, devices_removed=removed)
            old_dm = self.dm
            self.dm = await self.worker.call(self.backend.setup_devices, cfg)
            await self._dump_changes(old_dm)  # new devices' objects, not the whole fabric's
        await self.reconcile_all()

    def _keys_of(self, vni: int) -> list[DirtyKey]:
        return [k for k in self.scheduler.full_keys(_EMPTY, self.mirror, self.dm) if k[1] == vni]

    # ---- reconciliation ---------------------------------------------------------------------

    def wanted_changed(self) -> None:
        if self._scheduled or self._loop is None:
            return
        self._scheduled = True
        if not self._lock.locked():
            # Idle: write the first changes at once (first-entry latency, issue 14). Under load
            # a pass is running; the next one then takes whatever accumulated meanwhile, so
            # batches grow with the load without a timer.
            self._start_dirty_pass()  # its task starts in the loop's next iteration
            return
        self._loop.call_later(self.coalesce_delay, self._start_dirty_pass)

    def _start_dirty_pass(self) -> None:
        if self.backend is None or self._loop is None:  # stopped meanwhile
            self._scheduled = False
            return
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(self._loop.create_task(self._dirty_pass()))

    async def _dirty_pass(self) -> None:
        sched = self.scheduler
        async with self._lock:
            self._scheduled = False
            try:
                while self.backend is not None and sched.pending(self.desired):
                    await self._apply(sched.dirty_keys(self.desired), allow_delete=True)
            except Exception as exc:  # noqa: BLE001 - never lose the reconciler to one bad pass
                log.exception("reconcile pass failed", error=str(exc))
                sched.need_dump = True  # the next full pass starts from a fresh dump
                return
        if sched.need_dump and self._loop is not None:  # a batch's outcome is unknown
            self._loop.create_task(self._safe_full(redump=True))

    async def reconcile_all(self, redump: bool = False) -> None:
        if self.backend is None:
            return
        sched = self.scheduler
        async with self._lock:
            started = time.monotonic()
            cpu0 = time.process_time()  # the whole process: loop and worker thread
            if redump or sched.need_dump:
                await self._dump()
            hold_over = sched.hold_over(started)
            dirty = sched.dirty_keys(self.desired)
            if dirty and not hold_over:  # the core's word: deletions too, hold time or not
                await self._apply(dirty, allow_delete=True)
            keys = sched.full_keys(self.desired, self.mirror, self.dm)
            await self._apply(keys, allow_delete=hold_over)
            sched.full_pass_done(time.monotonic() - started, time.process_time() - cpu0)

    async def _periodic(self) -> None:
        """Full passes: once when the sweep hold time ends, then every reconcile_interval."""
        assert self.backend is not None
        hold_left = self.scheduler.hold_remaining(time.monotonic())
        if hold_left > 0:
            await asyncio.sleep(hold_left)
        await self._sweep_stale_devices()
        if hold_left > 0:
            await self._safe_full()
        while True:
            await asyncio.sleep(self.reconcile_interval)
            cpu0 = time.process_time()
            if self.backend is not None:
                await self._kernel_resetup()
            redump = time.monotonic() - self._last_dump >= self.redump_interval
            await self._safe_full(redump)
            # The periodic pass as a whole (device check + diff): its CPU is what a scale-out
            # costs every reconcile_interval (issue 17), shown in metrics and `show status`.
            self._counters["last_periodic_cpu_seconds"] = round(time.process_time() - cpu0, 4)

    async def _sweep_stale_devices(self) -> None:
        """After the hold time, like stale entries: devices evpnd made for VNIs it no longer
        has (the configuration changed while it was down)."""
        if self.backend is None:
            return
        try:
            async with self._lock:
                await self.worker.call(self.backend.remove_stale, self.cfg)
        except Exception as exc:  # noqa: BLE001 - a failed sweep is retried at next start
            log.warning("stale device sweep failed", error=str(exc))

    async def _safe_full(self, redump: bool = False) -> None:
        try:
            await self.reconcile_all(redump=redump)
        except Exception as exc:  # noqa: BLE001 - the periodic pass must survive anything
            log.exception("full reconcile failed", error=str(exc))

    async def _kernel_resetup(self) -> None:
        """Devices can be deleted or ports added behind evpnd's back: re-assert (idempotent).
        A recreated device has its objects dumped again; a new port only its local entries."""
        assert self.backend is not None
        async with self._lock:
            old = self.dm
            self.dm = await self.worker.call(self.backend.setup_devices, self.cfg)
            await self._dump_changes(old)

    async def _dump_changes(self, old: DeviceMap) -> None:
        assert self.backend is not None
        recreated: set[int] = set()
        for vni, dev in self.dm.vnis.items():
            before = old.vnis.get(vni)
            # (a bridge put into its VRF had its routes flushed without notifications)
            new = before is None or (before.bridge, before.vxlan) != (dev.bridge, dev.vxlan)
            if new or dev.vrf_moved:
                recreated.add(vni)
            elif new_ports := dev.access_ports.keys() - before.access_ports.keys():
                ports = await self.worker.call(self.backend.dump_ports, sorted(new_ports))
                for n in ports:
                    self._learn_port(vni, n)
        if recreated:
            await self._dump(only=recreated)

    async def _dump(self, only: set[int] | None = None) -> None:
        """Dump every VNI's objects (start, overrun) or only some (VNIs new or recreated)."""
        assert self.backend is not None
        started = time.monotonic()
        dm = self.dm if only is None else self.dm.only(only)
        # A dump is a snapshot: monitor events read before its result is applied could be
        # newer than it and would be undone by it (a MAC learned meanwhile declared vanished).
        # So events wait in the socket until the snapshot is applied, then replay in order.
        fd = self.backend.monitor_fileno()
        paused = self._loop is not None and self._loop.remove_reader(fd)
        try:
            dump = await self.worker.call(self.backend.dump, dm)
            self._apply_dump(dump, dm, only)
        finally:
            if paused and self.backend is not None and self._loop is not None:
                self._loop.add_reader(fd, self._on_readable)
        self._counters["dumps"] += 1
        self._counters["last_dump_seconds"] = round(time.monotonic() - started, 4)

    def _apply_dump(self, dump: Dump, dm: DeviceMap, only: set[int] | None) -> None:
        mirror, ports, neighs = dump
        if only is None:
            self.mirror = mirror
            self.scheduler.need_dump = False
            self._last_dump = time.monotonic()
        else:
            self.mirror.replace_vnis(mirror, dm.vnis.keys())
        for vni, n in ports:
            self._learn_port(vni, n)
        for vni, n in neighs:
            self._emit_all(self.learner.on_neigh(n, vni))
        # Grouped by VNI in one pass over each list: a scan of both lists per VNI made this
        # VNIs x entries (2.4 s of a 4,000-VNI restart with nothing but the devices, issue 17).
        macs_of: dict[int, set[str]] = {}
        ips_of: dict[int, set[str]] = {}
        for v, n in ports:
            if n.mac:
                macs_of.setdefault(v, set()).add(n.mac)
        for v, n in neighs:
            if n.dst:
                ips_of.setdefault(v, set()).add(n.dst)
        for vni, dev in dm.vnis.items():  # gone while events were not being seen
            if not dev.l3:
                macs, ips = macs_of.get(vni, set()), ips_of.get(vni, set())
                self._emit_all(self.learner.vanished(vni, macs, ips, self.dm))

    async def _apply(
        self, keys: Iterable[DirtyKey], allow_delete: bool, desired: DesiredState | None = None
    ) -> None:
        """Plan chunk k+1 while the kernel executes chunk k."""
        assert self.backend is not None
        desired = desired if desired is not None else self.desired
        started = time.monotonic()
        pending: tuple[asyncio.Future, list[nl.Op]] | None = None
        total = 0
        turn = Turn()
        chunks = self.scheduler.chunks(list(keys), desired, self.mirror, self.dm, allow_delete)
        for ops in chunks:
            if not ops:
                await asyncio.sleep(0)  # a full pass that finds nothing must not hog the loop
                continue
            total += len(ops)
            # submitted now (a coroutine would reach the thread one loop iteration later)
            task = self.worker.submit(self.backend.apply, ops)
            if pending is not None:
                await self._finish(*pending)
            pending = (task, ops)
            # a finished batch does not make the await above yield: planning chunk after
            # chunk could hold the loop for a whole pass (evpnd/turns.py)
            await turn.pause()
        if pending is not None:
            await self._finish(*pending)
        self.scheduler.pass_done(total, time.monotonic() - started)

    async def idle(self) -> None:
        """Wait until no pass is scheduled or running (tests, benchmarks, orderly shutdown)."""
        while self._scheduled or self._lock.locked() or self.scheduler.pending(self.desired):
            if not self._scheduled and not self._lock.locked():
                self.wanted_changed()
            await asyncio.sleep(0.001)

    async def _finish(self, fut: asyncio.Future, ops: list[nl.Op]) -> None:
        try:
            complete = await fut
        except OSError as exc:
            self.scheduler.batch_failed(ops, str(exc))
            return
        # A remote path with a higher sequence number replaced a local MAC (RFC 7432 15.1):
        # the learner must forget it, or the host moving back is no news (test_lab_l2.py).
        learned = self.learner.macs
        if any(learned.values()):
            for op in ops:
                tag = op.tag
                if tag[0] == "fdb+" and op.error == 0 and tag[2] in learned.get(tag[1], ()):
                    self._emit_all(self.learner.on_tunnel_fdb(tag[1], tag[2]))
        self.scheduler.finished(self.mirror, ops, complete)

    # ---- monitor events (backend.EventSink) -------------------------------------------------

    def _on_readable(self) -> None:
        if self.backend is None:
            return
        # Notifications for one turn's time (evpnd/turns.py), 256 at a time: a flood of them
        # (our own FDB writes echoed back) must not hold the loop; the reader fires again
        # while more are queued, and the API answers between turns.
        turn = Turn()
        # The LocalMacs of one read go to the owner task as one LocalMacBatch (_emit_all).
        self._batch = []
        try:
            while True:
                read = self.backend.read_events(self, _EVENTS_PER_READ)
                self._counters["events"] += read
                self._emit_batch()
                if read < _EVENTS_PER_READ or turn.over() or self.backend is None:
                    return
        finally:
            self._emit_batch()
            self._batch = None

    def _emit_batch(self) -> None:
        batch = self._batch
        if batch:
            self._batch = []
            self.emit(batch[0] if len(batch) == 1 else LocalMacBatch(batch))

    def overrun(self) -> None:
        """Events were lost: the mirror is unknown now. Re-dump and diff everything."""
        self._counters["overruns"] += 1
        log.warning("netlink monitor overrun; full reconcile with a fresh dump")
        self.scheduler.need_dump = True
        assert self._loop is not None
        self._loop.create_task(self._safe_full(redump=True))

    def fdb_deleted(self, vni: int, mac: str, vxlan_half: bool) -> None:
        """The withdrawal storm's event (two per MAC), kept short."""
        self.mirror.drop_fdb_half(vni, mac, vxlan_half)
        if mac in self.desired.fdb.get(vni, _NONE):  # deleted by someone: repair
            self.scheduler.wants_repair((FDB, vni, mac))
            self.wanted_changed()

    def port_fdb(self, vni: int, mac: str, deleted: bool, state: int) -> None:
        """Local learning's fast path (NetlinkBackend.read_events): a bridge entry on an access
        port of an L2VNI's own bridge, without VLAN, not the VXLAN port's or a static tunnel's,
        neither extern_learn nor permanent. What neigh_event and _learn_port would do for it."""
        if not deleted:
            self.mirror.moved_to_port(vni, mac)  # the bridge took the entry over
        noarp = bool(state & nl.NUD_NOARP)  # a static entry: sticky
        self._emit_all(self.learner.port_mac(vni, mac, deleted, noarp, self.dm))

    def neigh_event(self, n: nl.Neigh) -> None:
        dm = self.dm
        if n.family == nl.AF_BRIDGE:
            if n.ifindex in dm.by_vxlan or (dm.single_vxlan and n.ifindex == dm.single_vxlan):
                self._changed(self.mirror.on_fdb(n, dm))
            elif (vni := dm.port_vni(n.master, n.vlan)) is not None:  # NDA_MASTER: the bridge's
                self._learn_port(vni, n)
        elif n.ifindex in dm.by_bridge:
            change, owned = self.mirror.on_neigh(n, dm)
            vni = dm.by_bridge[n.ifindex]
            if owned:
                self._changed(change)
            elif not dm.vnis[vni].l3:
                self._changed(change)  # ours replaced by a hand-made entry, or one gone
                self._emit_all(self.learner.on_neigh(n, vni))

    def route_event(self, r: nl.Route) -> None:
        self._changed(self.mirror.on_route(r, self.dm))

    def link_event(self, deleted: bool, index: int, name: str, master: int) -> None:
        """An evpnd device deleted, a configured access port that appeared (a VM's tap) or left
        its bridge, or a bridge out of its VRF: set the devices up again soon rather than at the
        next full pass."""
        # One event per device evpnd creates or sets: looked up, not a loop over every VNI
        # (which made a start with N VNIs cost N x N, issue 17).
        vrfs, port_bridge, member_vrf = self._link_index()
        if deleted:
            if (
                index in self.dm.by_vxlan
                or index in self.dm.by_bridge
                or (index and index in (self.dm.single_vxlan, self.dm.single_bridge))
                or index in vrfs
                or index in self.dm.tunnels
            ):
                log.warning("an evpnd device was deleted; recreating", ifindex=index)
                self._schedule_resetup()
            return
        if name in port_bridge and master != port_bridge[name]:
            self._schedule_resetup()
        if name in member_vrf and master != member_vrf[name]:  # out of its L3VNI's VRF
            self._schedule_resetup()

    def _link_index(self) -> tuple[set[int], dict[str, int], dict[str, int]]:
        """VRF indices, access port name -> its bridge, VRF member name -> its VRF; rebuilt
        when the configuration or the device map changes."""
        key = (id(self.cfg), id(self.dm))
        if self._link_index_key != key:
            ports: dict[str, int] = {}
            for item in self.cfg.l2vnis:
                dev = self.dm.vnis.get(item.vni)
                if dev is not None:
                    ports.update(dict.fromkeys(item.access_ports, dev.bridge))
            members = {
                m: d.vrf for d in self.dm.vnis.values() if d.vrf is not None for m in d.vrf_members
            }
            vrfs = {d.vrf for d in self.dm.vnis.values() if d.vrf is not None}
            self._link_index_cache = (vrfs, ports, members)
            self._link_index_key = key
        return self._link_index_cache

    def _schedule_resetup(self) -> None:
        if self._resetup_pending or self._loop is None:
            return
        self._resetup_pending = True
        self._loop.call_later(0.05, lambda: self._loop.create_task(self._resetup_and_reconcile()))

    async def _resetup_and_reconcile(self) -> None:
        self._resetup_pending = False
        if self.backend is None:
            return
        try:
            await self._kernel_resetup()
            await self.reconcile_all()
        except (OSError, RuntimeError) as exc:
            log.error("device re-setup failed", error=str(exc))

    def _learn_port(self, vni: int, n: nl.Neigh) -> None:
        dev = self.dm.vnis[vni]
        if dev.l3 or n.ifindex == dev.vxlan or n.mac is None:
            return
        if not n.deleted and not n.flags & nl.NTF_EXT_LEARNED:
            self.mirror.moved_to_port(vni, n.mac)  # the bridge took the entry over
        tunnel = self.dm.tunnels.get(n.ifindex)
        if tunnel is not None and not n.deleted and not self._site_mac_is_local(vni, n, tunnel):
            # A site's MAC behind a static tunnel: not local (if it was, it moved away from
            # the access port, so it is withdrawn as local).
            n = dataclasses.replace(n, deleted=True)
        self._emit_all(self.learner.on_port_fdb(n, vni, self.dm))

    def _site_mac_is_local(self, vni: int, n: nl.Neigh, tunnel: TunnelPort) -> bool:
        """A MAC learned over a static tunnel is local (advertised as type-2 from this VTEP)
        only with `advertise: true`, and never while another VTEP advertises it: two gateways
        to one site would otherwise take the MAC from each other in turns (README, "Static
        tunnels": the loop risk)."""
        if not tunnel.advertise:
            self._counters["tunnel_macs_not_advertised"] += 1
            return False
        if n.mac in self.desired.fdb.get(vni, _NONE):
            self._counters["tunnel_macs_refused"] += 1
            log.warning("site MAC already advertised by another VTEP; not advertised",
                        tunnel=tunnel.name, vni=vni, mac=n.mac)  # fmt: skip
            return False
        return True

    def _changed(self, change: Change | None) -> None:
        """An owned object changed outside evpnd's writes: repair it if it is still wanted."""
        if change is None:
            return
        kind, vni, key = change
        if self.desired.lookup(kind, vni, key) is not None:
            self.scheduler.wants_repair(change)
            self.wanted_changed()

    def _emit_all(self, events: list) -> None:
        if not events:
            return
        self._counters["local_events"] += len(events)
        if self._batch is not None:  # reading the monitor: one LocalMacBatch per read
            self._batch.extend(events)
            return
        for event in events:
            self.emit(event)

    # ---- views ------------------------------------------------------------------------------

    def mtu(self) -> dict:
        """`evpnctl mtu`: every owned overlay device's MTU and how it was reached."""
        return {"devices": list(self.dm.mtu), "warnings": list(self.dm.mtu_warnings)}

    def kernel_diff(self) -> dict:
        out = self.planner.diff(self.desired, self.mirror, self.dm)
        out["counts"] = {k: len(v) for k, v in out.items()}
        return out

    def stats(self) -> dict:
        sched = self.scheduler
        backend = self.backend.stats() if self.backend is not None else {}
        return {
            **sched.stats,
            **self._counters,
            "owned": self.mirror.counts(),
            "desired": self.desired.counts(),
            "local": self.learner.counts(),
            "ignored_local": self.learner.ignored,
            "sweep_hold_remaining": round(sched.hold_remaining(time.monotonic()), 1),
            "device_problems": list(self.dm.problems),
            "last_errors": list(sched.last_errors),
            "vnis": sorted(self.dm.vnis),
            "kernel_seconds": backend.get("kernel_seconds", 0.0),
            "worker_cpu_seconds": backend.get("worker_cpu_seconds", 0.0),
            "messages_sent": backend.get("messages_sent", 0),
            "device_writes": backend.get("device_writes", 0),
            "monitor_filter": backend.get("monitor_filter", ""),
            "mtu": self.mtu(),
        }


_EMPTY = DesiredState()
