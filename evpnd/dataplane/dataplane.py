"""The Dataplane: devices, level-triggered reconciliation of FDB/neighbour/route objects, and
local learning, behind an asyncio interface.

Threads: blocking netlink work (device set-up with pyroute2, dumps, batched writes) runs in one
worker thread (worker.py); the event loop plans batches, owns the mirror and the learner, and
reads the monitor socket with `add_reader`. Large passes are planned in chunks so the loop plans
chunk k+1 while the worker's `sendto` for chunk k runs in the kernel (GIL released).

Reconciliation (DESIGN rule 4): `wanted_changed()` schedules one pass over the keys the core
marked dirty, coalesced over `coalesce_delay`; `reconcile_all()` diffs every key (periodically,
after a netlink overrun with a fresh dump, and once the sweep hold time after start has passed).
Deleting owned-but-unwanted objects found by a full pass waits for `cfg.sweep_hold_time` after
start, so a restarted evpnd keeps forwarding while BGP re-converges; dirty keys are the core's
word and are applied at once. An owned object deleted by someone else comes back in the next
pass, scheduled from the RTM_DELNEIGH/RTM_DELROUTE event.

The mirror is filled by one dump at start, then kept current from the outcome of evpnd's own
writes and from monitor events (deletions, and whatever a person or the bridge does; the echo of
evpnd's own adds is dropped in the kernel by a socket filter). It is dumped again only after an
overrun, an uncertain batch or a device change, and every `redump_interval` as a backstop: a
dump costs ~3 s at 100k MACs, so never on a hot path.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable

from evpnd.config import Config
from evpnd.core.desired import FDB, DesiredState, DirtyKey
from evpnd.core.events import Event
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.devices import DeviceManager, DeviceMap
from evpnd.dataplane.learning import LocalLearner
from evpnd.dataplane.mirror import Change, Mirror
from evpnd.dataplane.plan import Planner, all_keys, apply_results, diff
from evpnd.dataplane.worker import Worker
from evpnd.logs import get_logger

log = get_logger("evpnd.dataplane")

CHUNK_KEYS = 8192
_IFINFO = struct.Struct("=BxHiII")
# nlmsghdr (length, type; flags, seq, pid skipped) + ndmsg + the first attribute's header
_FAST = struct.Struct("=IH10xBxxxiHBBHH")
_RTA_HDR = struct.Struct("=HH")
_NONE: dict = {}
_NONE_SET: set = set()
IFLA_IFNAME, IFLA_MASTER = 3, 10


class _Kernel:
    """Worker-thread side: the sockets and pyroute2 handle, created inside the namespace."""

    def __init__(self) -> None:
        self.requester = nl.Requester()
        self.devices = DeviceManager()
        self.monitor = nl.open_monitor()

    def close(self) -> None:
        self.requester.close()
        self.devices.close()
        self.monitor.close()

    def bridge_ports(self, bridge: int) -> list[int]:
        return [link["index"] for link in self.devices.ipr.get_links() if
                link.get_attr("IFLA_MASTER") == bridge]  # fmt: skip

    def dump(self, dm: DeviceMap) -> tuple[Mirror, list[tuple[int, nl.Neigh]], list]:
        """Owned objects into a fresh mirror; local FDB entries and SVI neighbours for learning."""
        mirror = Mirror()
        ports: list[tuple[int, nl.Neigh]] = []
        neighs: list[tuple[int, nl.Neigh]] = []
        req = self.requester
        for vni, dev in dm.vnis.items():
            self._dump_vxlan_fdb(mirror, vni, dev.vxlan, dm)
            body = nl.neigh_dump_request(0, dev.bridge)
            for mtype, buf, off, end in req.dump(nl.RTM_GETNEIGH, body):
                n = nl.parse_neigh(mtype, buf, off, end)
                _change, owned = mirror.on_neigh(n, dm)
                if not owned and not dev.l3:
                    neighs.append((vni, n))
            if dev.table is not None:
                for family in (socket.AF_INET, socket.AF_INET6):
                    body = nl.route_dump_request(family, dev.table)
                    try:
                        for mtype, buf, off, end in req.dump(nl.RTM_GETROUTE, body):
                            mirror.on_route(nl.parse_route(mtype, buf, off, end), dm)
                    except nl.NetlinkError as exc:
                        if exc.errno != errno.ENOENT:  # ENOENT: the table has no routes yet
                            raise
            if dev.l3:
                continue
            others = [p for p in self.bridge_ports(dev.bridge) if p != dev.vxlan]
            ports += [(vni, n) for n in self.dump_ports(others)]
        return mirror, ports, neighs

    def _dump_vxlan_fdb(self, mirror: Mirror, vni: int, vxlan: int, dm: DeviceMap) -> None:
        """The VXLAN port's entries (both halves of every remote MAC: 200k messages for 100k
        MACs). evpnd's own entries have a fixed layout (vxlan: LLADDR, DST, CACHEINFO; bridge:
        LLADDR, MASTER, ...) and are read from fixed offsets; anything else is parsed."""
        fast = _FAST.unpack_from
        rta = _RTA_HDR.unpack_from
        fdb = mirror.fdb.setdefault(vni, {})
        bridged = mirror.brfdb.setdefault(vni, set())
        text = nl.vtep_text
        for mtype, buf, off, end in self.requester.dump(
            nl.RTM_GETNEIGH, nl.fdb_dump_request(vxlan)
        ):
            _len, _t, _f, ifindex, state, flags, _nt, alen, atype = fast(buf, off - 16)
            if ifindex == vxlan and flags & nl.NTF_EXT_LEARNED and (alen, atype) == (10, 2):
                mac = buf[off + 16 : off + 22].hex(":")
                if mac != nl.ZERO_MAC:
                    if not flags & nl.NTF_SELF:
                        if not state & nl.NUD_PERMANENT:
                            bridged.add(mac)
                        continue
                    if end - off == 52 and rta(buf, off + 24) == (8, nl.NDA_DST):
                        fdb[mac] = text(bytes(buf[off + 28 : off + 32]))
                        continue
            mirror.on_fdb(nl.parse_neigh(mtype, buf, off, end), dm)

    def dump_ports(self, ports: list[int]) -> list[nl.Neigh]:
        """The bridge's entries on these ports (local learning)."""
        out = []
        for port in ports:
            for mtype, buf, off, end in self.requester.dump(
                nl.RTM_GETNEIGH, nl.fdb_dump_request(port)
            ):
                n = nl.parse_neigh(mtype, buf, off, end)
                if n.master or n.flags & nl.NTF_MASTER:  # the kernel marks the bridge's
                    out.append(n)  # entries with NDA_MASTER, never NTF_MASTER
        return out


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
    ) -> None:
        self.cfg = cfg
        self.emit = emit
        self.netns = netns
        self.reconcile_interval = reconcile_interval
        self.redump_interval = redump_interval
        self.coalesce_delay = coalesce_delay
        self.worker = Worker(netns)
        self.planner = Planner()
        self.mirror = Mirror()
        self.learner = LocalLearner()
        self.dm = DeviceMap()
        self.desired = DesiredState()
        self._kernel: _Kernel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._repair: set[DirtyKey] = set()
        self._scheduled = False
        self._tasks: list[asyncio.Task] = []
        self._started_at = 0.0
        self._last_dump = 0.0
        self._need_dump = False
        self._resetup_pending = False
        self._recv = bytearray(1 << 16)
        self._stats: dict[str, float | int] = {
            "ops": 0, "errors": 0, "passes": 0, "full_passes": 0, "dumps": 0,
            "overruns": 0, "repairs": 0, "conflicts": 0, "held": 0, "invalid": 0,
            "events": 0, "local_events": 0, "last_pass_seconds": 0.0, "last_pass_ops": 0,
            "last_full_seconds": 0.0, "last_dump_seconds": 0.0,
        }  # fmt: skip
        self._last_errors: list[dict] = []

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self, desired: DesiredState) -> None:
        self.desired = desired
        self._loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        self._kernel = await self.worker.call(_Kernel)
        self.dm = await self.worker.call(self._kernel.devices.setup, self.cfg)
        # Subscribe before dumping so nothing that happens meanwhile is missed.
        self._loop.add_reader(self._kernel.monitor.fileno(), self._on_readable)
        await self._dump()
        async with self._lock:
            keys = set(desired.drain()) | set(all_keys(desired, self.mirror, self.dm))
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
        if self._kernel is not None and self._loop is not None:
            self._loop.remove_reader(self._kernel.monitor.fileno())
            async with self._lock:
                await self.worker.call(self._kernel.close)
            self._kernel = None
        self.worker.shutdown()

    async def reconfigure(self, cfg: Config) -> None:
        assert self._kernel is not None
        old = {v.vni: v for v in self.cfg.all_vnis()}
        new = {v.vni: v for v in cfg.all_vnis()}
        async with self._lock:
            self.cfg = cfg
            gone = [self.dm.vnis[v] for v in old.keys() - new.keys() if v in self.dm.vnis]
            for dev in gone:
                # Devices evpnd made go (with their entries); adopted ones keep only others'.
                names = [dev.vxlan_name, dev.bridge_name, *filter(None, [dev.vrf_name])]
                removed = await self.worker.call(self._kernel.devices.remove_owned, names)
                if dev.vxlan_name not in removed:
                    await self._apply(self._keys_of(dev.vni), allow_delete=True, desired=_EMPTY)
                self.mirror.forget_vni(dev.vni)
                self.learner.forget_vni(dev.vni)
                log.info("vni removed", vni=dev.vni, devices_removed=removed)
            old_dm = self.dm
            self.dm = await self.worker.call(self._kernel.devices.setup, cfg)
            await self._dump_changes(old_dm)  # new devices' objects, not the whole fabric's
        await self.reconcile_all()

    def _keys_of(self, vni: int) -> list[DirtyKey]:
        return [k for k in all_keys(_EMPTY, self.mirror, self.dm) if k[1] == vni]

    # ---- reconciliation ---------------------------------------------------------------------

    def wanted_changed(self) -> None:
        if self._scheduled or self._loop is None:
            return
        self._scheduled = True
        self._loop.call_later(self.coalesce_delay, self._start_dirty_pass)

    def _start_dirty_pass(self) -> None:
        if self._kernel is None or self._loop is None:  # stopped meanwhile
            self._scheduled = False
            return
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(self._loop.create_task(self._dirty_pass()))

    async def _dirty_pass(self) -> None:
        async with self._lock:
            self._scheduled = False
            try:
                while self._kernel is not None and (self.desired.dirty or self._repair):
                    keys = self.desired.drain()
                    if self._repair:
                        self._stats["repairs"] += len(self._repair)
                        keys |= self._repair
                        self._repair = set()
                    await self._apply(keys, allow_delete=True)
            except Exception as exc:  # noqa: BLE001 - never lose the reconciler to one bad pass
                log.exception("reconcile pass failed", error=str(exc))
                self._need_dump = True  # the next full pass starts from a fresh dump
                return
        if self._need_dump and self._loop is not None:  # a batch's outcome is unknown
            self._loop.create_task(self._safe_full(redump=True))

    async def reconcile_all(self, redump: bool = False) -> None:
        if self._kernel is None:
            return
        async with self._lock:
            started = time.monotonic()
            if redump or self._need_dump:
                await self._dump()
            hold_over = started - self._started_at >= self.cfg.sweep_hold_time
            dirty = self.desired.drain() | self._repair
            self._repair = set()
            if dirty and not hold_over:  # the core's word: deletions too, hold time or not
                await self._apply(dirty, allow_delete=True)
            keys = all_keys(self.desired, self.mirror, self.dm)
            await self._apply(keys, allow_delete=hold_over)
            self._stats["full_passes"] += 1
            self._stats["last_full_seconds"] = round(time.monotonic() - started, 4)

    async def _periodic(self) -> None:
        """Full passes: once when the sweep hold time ends, then every reconcile_interval."""
        assert self._kernel is not None
        hold_left = self.cfg.sweep_hold_time - (time.monotonic() - self._started_at)
        if hold_left > 0:
            await asyncio.sleep(hold_left)
        await self._sweep_stale_devices()
        if hold_left > 0:
            await self._safe_full()
        while True:
            await asyncio.sleep(self.reconcile_interval)
            if self._kernel is not None:
                await self._kernel_resetup()
            redump = time.monotonic() - self._last_dump >= self.redump_interval
            await self._safe_full(redump)

    async def _sweep_stale_devices(self) -> None:
        """After the hold time, like stale entries: devices evpnd made for VNIs it no longer
        has (the configuration changed while it was down)."""
        if self._kernel is None:
            return
        try:
            async with self._lock:
                await self.worker.call(self._kernel.devices.remove_stale, self.cfg)
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
        assert self._kernel is not None
        async with self._lock:
            old = self.dm
            self.dm = await self.worker.call(self._kernel.devices.setup, self.cfg)
            await self._dump_changes(old)

    async def _dump_changes(self, old: DeviceMap) -> None:
        assert self._kernel is not None
        recreated: set[int] = set()
        for vni, dev in self.dm.vnis.items():
            before = old.vnis.get(vni)
            # (a bridge put into its VRF had its routes flushed without notifications)
            new = before is None or (before.bridge, before.vxlan) != (dev.bridge, dev.vxlan)
            if new or dev.vrf_moved:
                recreated.add(vni)
            elif new_ports := dev.access_ports.keys() - before.access_ports.keys():
                ports = await self.worker.call(self._kernel.dump_ports, sorted(new_ports))
                for n in ports:
                    self._learn_port(vni, n)
        if recreated:
            await self._dump(only=recreated)

    async def _dump(self, only: set[int] | None = None) -> None:
        """Dump every VNI's objects (start, overrun) or only some (VNIs new or recreated)."""
        assert self._kernel is not None
        started = time.monotonic()
        dm = self.dm
        if only is not None:
            dm = DeviceMap()
            for vni in only & self.dm.vnis.keys():
                dm.add(self.dm.vnis[vni])
        # A dump is a snapshot: monitor events read before its result is applied could be
        # newer than it and would be undone by it (a MAC learned meanwhile declared vanished).
        # So events wait in the socket until the snapshot is applied, then replay in order.
        fd = self._kernel.monitor.fileno()
        paused = self._loop is not None and self._loop.remove_reader(fd)
        try:
            mirror, ports, neighs = await self.worker.call(self._kernel.dump, dm)
            self._apply_dump(mirror, ports, neighs, dm, only)
        finally:
            if paused and self._kernel is not None and self._loop is not None:
                self._loop.add_reader(fd, self._on_readable)
        self._stats["dumps"] += 1
        self._stats["last_dump_seconds"] = round(time.monotonic() - started, 4)

    def _apply_dump(self, mirror, ports, neighs, dm: DeviceMap, only: set[int] | None) -> None:
        if only is None:
            self.mirror = mirror
            self._need_dump = False
            self._last_dump = time.monotonic()
        else:
            self.mirror.replace_vnis(mirror, dm.vnis.keys())
        for vni, n in ports:
            self._learn_port(vni, n)
        for vni, n in neighs:
            self._emit_all(self.learner.on_neigh(n, vni))
        for vni, dev in dm.vnis.items():  # gone while events were not being seen
            if not dev.l3:
                macs = {n.mac for v, n in ports if v == vni and n.mac}
                ips = {n.dst for v, n in neighs if v == vni and n.dst}
                self._emit_all(self.learner.vanished(vni, macs, ips, self.dm))

    async def _apply(
        self, keys: Iterable[DirtyKey], allow_delete: bool, desired: DesiredState | None = None
    ) -> None:
        """Plan chunk k+1 while the kernel executes chunk k."""
        assert self._kernel is not None
        desired = desired if desired is not None else self.desired
        started = time.monotonic()
        keys = list(keys)
        pending: tuple[asyncio.Future, list[nl.Op]] | None = None
        total = 0
        planning = 0.0
        for i in range(0, len(keys), CHUNK_KEYS):
            t0 = time.monotonic()
            ops, pst = self.planner.plan(
                keys[i : i + CHUNK_KEYS], desired, self.mirror, self.dm, allow_delete
            )
            planning += time.monotonic() - t0
            self._stats["conflicts"] += len(pst.conflicts)
            self._stats["held"] = pst.held if i == 0 else self._stats["held"] + pst.held
            for key, why in pst.invalid:
                self._stats["invalid"] += 1
                log.warning("invalid desired object skipped", key=str(key), error=why)
            if not ops:
                await asyncio.sleep(0)  # a full pass that finds nothing must not hog the loop
                continue
            total += len(ops)
            fut = self.worker.call(self._kernel.requester.run, ops)
            task = asyncio.ensure_future(fut)
            if pending is not None:
                await self._finish(*pending)
            pending = (task, ops)
        if pending is not None:
            await self._finish(*pending)
        self._stats["passes"] += 1
        self._stats["ops"] += total
        self._stats["last_pass_ops"] = total
        self._stats["last_pass_seconds"] = round(time.monotonic() - started, 4)
        self._stats["last_pass_planning_seconds"] = round(planning, 4)

    async def idle(self) -> None:
        """Wait until no pass is scheduled or running (tests, benchmarks, orderly shutdown)."""
        while self._scheduled or self._lock.locked() or self.desired.dirty or self._repair:
            if not self._scheduled and not self._lock.locked():
                self.wanted_changed()
            await asyncio.sleep(0.001)

    async def _finish(self, fut: asyncio.Future, ops: list[nl.Op]) -> None:
        try:
            complete = await fut
        except OSError as exc:
            log.error("netlink batch failed", error=str(exc), ops=len(ops))
            self._stats["errors"] += len(ops)
            self._need_dump = True
            return
        if not complete:
            self._need_dump = True
        # A remote path with a higher sequence number replaced a local MAC (RFC 7432 15.1):
        # the learner must forget it, or the host moving back is no news (test_lab_l2.py).
        learned = self.learner.macs
        if any(learned.values()):
            for op in ops:
                tag = op.tag
                if tag[0] == "fdb+" and op.error == 0 and tag[2] in learned.get(tag[1], ()):
                    self._emit_all(self.learner.on_tunnel_fdb(tag[1], tag[2]))
        for op in apply_results(self.mirror, ops):
            self._stats["errors"] += 1
            err = {"op": op.tag[0], "vni": op.tag[1], "key": op.tag[2]}
            err["error"] = os.strerror(-op.error) if op.error < 0 else str(op.error)
            self._last_errors = (self._last_errors + [err])[-20:]
            if self._stats["errors"] <= 100 or self._stats["errors"] % 1000 == 0:
                log.warning("netlink operation failed", **err)

    # ---- netlink events ---------------------------------------------------------------------

    def _on_readable(self) -> None:
        """Read pending notifications (each recv returns one), at most 4096 per call so the
        loop stays responsive; the reader fires again while more are queued.

        The common case of a withdrawal storm (two notifications per MAC, ~200k for 100k
        MACs: an extern_learn unicast entry on an evpnd VXLAN port went away) is handled
        inline from one struct unpack; everything else goes through the parser."""
        if self._kernel is None:
            return
        recv_into = self._kernel.monitor.recv_into
        buf = self._recv
        fast = _FAST.unpack_from
        l2_vxlan = {d.vxlan: v for v, d in self.dm.vnis.items() if not d.l3}
        fdb, brfdb, wanted = self.mirror.fdb, self.mirror.brfdb, self.desired.fdb
        count = 0
        try:
            for _ in range(4096):
                try:
                    size = recv_into(buf)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    self._overrun()
                    continue
                count += 1
                if size >= 38:
                    length, mtype, family, ifindex, _st, flags, _t, alen, atype = fast(buf, 0)
                    if (
                        mtype == nl.RTM_DELNEIGH
                        and length == size
                        and family == nl.AF_BRIDGE
                        and flags & nl.NTF_EXT_LEARNED
                        and (alen, atype) == (10, nl.NDA_LLADDR)
                        and ifindex in l2_vxlan
                    ):
                        mac = buf[32:38].hex(":")
                        if mac != nl.ZERO_MAC:
                            vni = l2_vxlan[ifindex]
                            if flags & nl.NTF_SELF:
                                fdb.get(vni, _NONE).pop(mac, None)
                            else:
                                brfdb.get(vni, _NONE_SET).discard(mac)
                            if mac in wanted.get(vni, _NONE):  # deleted by someone: repair
                                self._repair.add((FDB, vni, mac))
                                self.wanted_changed()
                            continue
                for mtype, _fl, _seq, off, end in nl.iter_messages(buf, size):
                    try:
                        self._on_message(mtype, buf, off, end)
                    except (struct.error, ValueError, KeyError, IndexError) as exc:
                        log.warning("unparsable netlink event", type=mtype, error=str(exc))
        finally:
            self._stats["events"] += count

    def _overrun(self) -> None:
        """Events were lost: the mirror is unknown now. Re-dump and diff everything."""
        self._stats["overruns"] += 1
        log.warning("netlink monitor overrun; full reconcile with a fresh dump")
        self._need_dump = True
        assert self._loop is not None
        self._loop.create_task(self._safe_full(redump=True))

    def _on_message(self, mtype: int, buf, off: int, end: int) -> None:
        if mtype in (nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH):
            n = nl.parse_neigh(mtype, buf, off, end)
            if n.family == nl.AF_BRIDGE:
                if n.ifindex in self.dm.by_vxlan:
                    self._changed(self.mirror.on_fdb(n, self.dm))
                elif n.master in self.dm.by_bridge:  # NDA_MASTER: the bridge's own entry
                    self._learn_port(self.dm.by_bridge[n.master], n)
            elif n.ifindex in self.dm.by_bridge:
                change, owned = self.mirror.on_neigh(n, self.dm)
                vni = self.dm.by_bridge[n.ifindex]
                if owned:
                    self._changed(change)
                elif not self.dm.vnis[vni].l3:
                    self._emit_all(self.learner.on_neigh(n, vni))
        elif mtype in (nl.RTM_NEWROUTE, nl.RTM_DELROUTE):
            self._changed(self.mirror.on_route(nl.parse_route(mtype, buf, off, end), self.dm))
        elif mtype in (nl.RTM_NEWLINK, nl.RTM_DELLINK):
            self._on_link(mtype, buf, off, end)

    def _on_link(self, mtype: int, buf, off: int, end: int) -> None:
        """An evpnd device deleted, a configured access port that appeared (a VM's tap) or left
        its bridge, or a bridge out of its VRF: set the devices up again soon rather than at the
        next full pass."""
        _f, _t, index, _fl, _ch = _IFINFO.unpack_from(buf, off)
        vrfs = {d.vrf: d for d in self.dm.vnis.values() if d.vrf is not None}
        if mtype == nl.RTM_DELLINK:
            if index in self.dm.by_vxlan or index in self.dm.by_bridge or index in vrfs:
                log.warning("an evpnd device was deleted; recreating", ifindex=index)
                self._schedule_resetup()
            return
        attrs = nl.parse_attrs(buf, off + 16, end)
        name = attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace")
        master = attrs.get(IFLA_MASTER)
        master_index = struct.unpack("=I", master)[0] if master and len(master) == 4 else 0
        for item in self.cfg.l2vnis:
            dev = self.dm.vnis.get(item.vni)
            if dev is not None and name in item.access_ports and master_index != dev.bridge:
                self._schedule_resetup()
        for vrf, dev in vrfs.items():  # a bridge taken out of its L3VNI's VRF
            if name in dev.vrf_members and master_index != vrf:
                self._schedule_resetup()

    def _schedule_resetup(self) -> None:
        if self._resetup_pending or self._loop is None:
            return
        self._resetup_pending = True
        self._loop.call_later(0.05, lambda: self._loop.create_task(self._resetup_and_reconcile()))

    async def _resetup_and_reconcile(self) -> None:
        self._resetup_pending = False
        if self._kernel is None:
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
        self._emit_all(self.learner.on_port_fdb(n, vni, self.dm))

    def _changed(self, change: Change | None) -> None:
        """An owned object changed outside evpnd's writes: repair it if it is still wanted."""
        if change is None:
            return
        kind, vni, key = change
        wanted = self.desired.lookup(kind, vni, key) is not None
        if wanted:
            self._repair.add(change)
            self.wanted_changed()

    def _emit_all(self, events: list) -> None:
        for event in events:
            self._stats["local_events"] += 1
            self.emit(event)

    # ---- views ------------------------------------------------------------------------------

    def kernel_diff(self) -> dict:
        out = diff(self.desired, self.mirror, self.dm)
        out["counts"] = {k: len(v) for k, v in out.items()}
        return out

    def stats(self) -> dict:
        held_until = self._started_at + self.cfg.sweep_hold_time - time.monotonic()
        return {
            **self._stats,
            "owned": self.mirror.counts(),
            "desired": self.desired.counts(),
            "local": self.learner.counts(),
            "ignored_local": self.learner.ignored,
            "sweep_hold_remaining": max(0.0, round(held_until, 1)),
            "device_problems": list(self.dm.problems),
            "last_errors": list(self._last_errors),
            "vnis": sorted(self.dm.vnis),
            **self._requester_stats(),
        }

    def _requester_stats(self) -> dict[str, float]:
        req = self._kernel.requester if self._kernel else None
        return {
            "kernel_seconds": round(req.kernel_seconds, 4) if req else 0.0,  # inside sendto
            "worker_cpu_seconds": round(req.thread_cpu_seconds, 4) if req else 0.0,
            "messages_sent": req.messages_sent if req else 0,
        }


_EMPTY = DesiredState()
