"""The Linux backend: raw rtnetlink for the objects (batched writes, fast dumps, the monitor
socket with its filter), pyroute2 for the devices (devices.py). Created in the worker thread,
so its sockets live in the dataplane's network namespace; `read_events` runs on the event loop.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading

from evpnd.config import Config
from evpnd.dataplane import echo_filter
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.backend import Dump, EventSink
from evpnd.dataplane.devices import DeviceManager
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DeviceMap
from evpnd.dataplane.tunnel_devices import TunnelManager
from evpnd.logs import get_logger

log = get_logger("evpnd.dataplane")

_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg
# nlmsghdr (length, type; flags, seq, pid skipped) + ndmsg + the first attribute's header
_FAST = struct.Struct("=IH10xBxxxiHBBHH")
_RTA_HDR = struct.Struct("=HH")
# An access port's bridge entry from offset 40, after NDA_LLADDR: NDA_MASTER's header and
# value, the next attribute's header (NDA_FLAGS_EXT since 5.18, else NDA_CACHEINFO)
_PORT_TAIL = struct.Struct("=HHIHH")
_NEIGH_TYPES = (nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH)
# More VNIs than this in one dump: whole-namespace FDB and neighbour dumps instead of one
# filtered dump per VNI (a few VNIs, e.g. a recreated device: the filtered dumps are cheaper).
WHOLE_DUMP_VNIS = 16


class NetlinkBackend:
    """Implements backend.Backend. Use from the worker thread (except `read_events`)."""

    def __init__(self) -> None:
        self.requester = nl.Requester()
        self.devices = DeviceManager()
        self.tunnels = TunnelManager(self.devices.ipr, lambda: self.devices.links().values())
        self.monitor = nl.open_monitor()
        # Made in the worker thread, which does every write: the echo of its deletes is
        # dropped in the kernel too where eBPF may be loaded (echo_filter.py; else the classic
        # filter of open_monitor stays and those echoes are read and found to be no news).
        # EVPND_MONITOR_FILTER=classic keeps the classic filter (benchmarks: before/after)
        classic = os.environ.get("EVPND_MONITOR_FILTER") == "classic"
        tid = threading.get_native_id()
        how = "" if classic else echo_filter.attach(self.monitor, tid)
        self.echo_filter = f"ebpf-{how}" if how else "classic"
        self._recv = bytearray(1 << 16)
        self._maps_for: DeviceMap | None = None
        self._maps: tuple[dict[int, int], dict[int, int], set[int]] = ({}, {}, set())

    def close(self) -> None:
        self.requester.close()
        self.devices.close()
        self.monitor.close()

    # ---- devices ------------------------------------------------------------------------------

    def setup_devices(self, cfg: Config) -> DeviceMap:
        dm = self.devices.setup(cfg)
        # static tunnels join the VNIs' bridges and tables; their scan for stale ones reads
        # the set-up's own link dump of a moment ago (one dump of 8,000 links, not two)
        self.tunnels.setup(cfg, dm, known=self.devices.last_links)
        return dm

    def remove_owned(self, names: list[str]) -> list[str]:
        return self.devices.remove_owned(names)

    def remove_stale(self, cfg: Config) -> list[str]:
        return self.devices.remove_stale(cfg)

    def ports_by_master(self) -> dict[int, list[int]]:
        """Every enslaved link, by its master: one raw link dump per pass (not one per VNI),
        so a dump over N bridges costs N + links, not N x links (issue 17)."""
        out: dict[int, list[int]] = {}
        for _mtype, buf, off, end in self.requester.dump(nl.RTM_GETLINK, nl.link_dump_request()):
            index, master = nl.link_master(buf, off, end)
            if master:
                out.setdefault(master, []).append(index)
        return out

    # ---- objects ------------------------------------------------------------------------------

    def apply(self, ops: list[nl.Op]) -> bool:
        return self.requester.run(ops)

    def dump(self, dm: DeviceMap) -> Dump:
        """Owned objects into a fresh mirror; local FDB entries and SVI neighbours for learning."""
        mirror = Mirror()
        ports: list[tuple[int, nl.Neigh]] = []
        neighs: list[tuple[int, nl.Neigh]] = []
        req = self.requester
        by_master = self.ports_by_master() if any(not d.l3 for d in dm.vnis.values()) else {}
        if len(dm.vnis) > WHOLE_DUMP_VNIS:
            return self._dump_whole(dm, by_master)
        self._dump_single(mirror, dm, by_master, ports)
        for vni, dev in dm.vnis.items():
            if dev.vlan is not None:  # vxlan_mode single: _dump_single
                continue
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
            others = [p for p in by_master.get(dev.bridge, ()) if p != dev.vxlan]
            ports += [(vni, n) for n in self.dump_ports(others)]
        return Dump(mirror, ports, neighs)

    def _dump_whole(self, dm: DeviceMap, by_master: dict[int, list[int]]) -> Dump:
        """The same as the per-VNI dumps, from one FDB dump and one neighbour dump of the
        whole namespace: the kernel walks every device (FDB) or the whole neighbour table
        for each filtered dump, so N filtered dumps cost N x what exists (issue 17)."""
        mirror = Mirror()
        ports: list[tuple[int, nl.Neigh]] = []
        neighs: list[tuple[int, nl.Neigh]] = []
        req = self.requester
        vxlans = {dev.vxlan: vni for vni, dev in dm.vnis.items() if dev.vlan is None}
        port_vni = {
            p: vni
            for vni, dev in dm.vnis.items()
            if not dev.l3 and dev.vlan is None
            for p in by_master.get(dev.bridge, ())
            if p != dev.vxlan
        }
        self._dump_single(mirror, dm, by_master, ports)
        for vni in dm.vnis:
            mirror.fdb.setdefault(vni, {})
            mirror.brfdb.setdefault(vni, set())
        self._dump_vxlan_fdb(mirror, 0, 0, dm, vxlans, port_vni, ports)
        for mtype, buf, off, end in req.dump(nl.RTM_GETNEIGH, nl.neigh_dump_request(0, 0)):
            n = nl.parse_neigh(mtype, buf, off, end)
            vni = dm.by_bridge.get(n.ifindex)
            if vni is None:
                continue
            _change, owned = mirror.on_neigh(n, dm)
            if not owned and not dm.vnis[vni].l3:
                neighs.append((vni, n))
        for dev in dm.vnis.values():
            if dev.table is not None:
                self._dump_routes(mirror, dev.table, dm)
        return Dump(mirror, ports, neighs)

    def _dump_single(
        self, mirror: Mirror, dm: DeviceMap, by_master: dict, ports: list[tuple[int, nl.Neigh]]
    ) -> None:
        """vxlan_mode single: the shared VXLAN device's entries (parsed: the VNI is in each,
        NDA_SRC_VNI or the VLAN) and the access ports' entries, each VLAN's to its VNI."""
        if not dm.single_vxlan:
            return
        body = nl.fdb_dump_request(dm.single_vxlan)
        for mtype, buf, off, end in self.requester.dump(nl.RTM_GETNEIGH, body):
            mirror.on_fdb(nl.parse_neigh(mtype, buf, off, end), dm)
        others = [p for p in by_master.get(dm.single_bridge, ()) if p != dm.single_vxlan]
        for n in self.dump_ports(others):
            vni = dm.port_vni(dm.single_bridge, n.vlan)
            if vni is not None:
                ports.append((vni, n))

    def _dump_routes(self, mirror: Mirror, table: int, dm: DeviceMap) -> None:
        for family in (socket.AF_INET, socket.AF_INET6):
            body = nl.route_dump_request(family, table)
            try:
                for mtype, buf, off, end in self.requester.dump(nl.RTM_GETROUTE, body):
                    mirror.on_route(nl.parse_route(mtype, buf, off, end), dm)
            except nl.NetlinkError as exc:
                if exc.errno != errno.ENOENT:  # ENOENT: the table has no routes yet
                    raise

    def _dump_vxlan_fdb(
        self,
        mirror: Mirror,
        vni: int,
        vxlan: int,
        dm: DeviceMap,
        vxlans: dict[int, int] | None = None,
        port_vni: dict[int, int] | None = None,
        ports: list[tuple[int, nl.Neigh]] | None = None,
    ) -> None:
        """The VXLAN port's entries (both halves of every remote MAC: 200k messages for 100k
        MACs). evpnd's own entries have a fixed layout (vxlan: LLADDR, DST, CACHEINFO; bridge:
        LLADDR, MASTER, ...) and are read from fixed offsets; anything else is parsed."""
        fast = _FAST.unpack_from
        rta = _RTA_HDR.unpack_from
        # vxlans: the whole namespace's dump (vxlan ifindex -> VNI; port_vni: the access
        # ports' entries go to `ports`); else one VXLAN device's.
        whole = vxlans is not None
        vxlans = vxlans if vxlans is not None else {vxlan: vni}
        port_vni = port_vni or {}
        fdb = mirror.fdb.setdefault(vni, {})
        bridged = mirror.brfdb.setdefault(vni, set())
        text = nl.vtep_text
        for mtype, buf, off, end in self.requester.dump(
            nl.RTM_GETNEIGH, nl.fdb_dump_request(vxlan)
        ):
            _len, _t, _f, ifindex, state, flags, _nt, alen, atype = fast(buf, off - 16)
            if whole:
                if ifindex not in vxlans:
                    if ports is not None and ifindex in port_vni:
                        n = nl.parse_neigh(mtype, buf, off, end)
                        if n.master or n.flags & nl.NTF_MASTER:
                            ports.append((port_vni[ifindex], n))
                    continue
                vxlan = ifindex
                vni = vxlans[ifindex]
                fdb, bridged = mirror.fdb[vni], mirror.brfdb[vni]
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

    # ---- events -------------------------------------------------------------------------------

    def monitor_fileno(self) -> int:
        return self.monitor.fileno()

    def read_events(self, sink: EventSink, limit: int = 4096) -> int:
        """Read pending notifications (each recv returns one), at most `limit` per call so the
        loop stays responsive; the reader fires again while more are queued. (recvmmsg, many
        per syscall, measured: 8% less event-loop CPU in a 100k withdraw with the classic
        filter, nothing beyond the noise end to end: not worth its ctypes; issue 14.)

        Two common cases are recognised from struct unpacks at fixed offsets: a withdrawal
        storm (two notifications per MAC, ~200k for 100k MACs: an extern_learn unicast entry
        on an evpnd VXLAN port went away) and local learning (a MAC learned or aged out on an
        access port of an L2VNI's bridge: LLADDR, MASTER, FLAGS_EXT or CACHEINFO, CACHEINFO,
        no VLAN; the layout of 6.1's fdb_fill_info, and of kernels before NDA_FLAGS_EXT).
        Everything else goes through the parser."""
        recv_into = self.monitor.recv_into
        buf = self._recv
        fast = _FAST.unpack_from
        tail = _PORT_TAIL.unpack_from
        l2_vxlan, learn, not_access = self._fast_path_maps(sink.dm)
        fdb_deleted = sink.fdb_deleted
        port_fdb = sink.port_fdb
        no_learn = nl.NTF_EXT_LEARNED | nl.NTF_SELF | nl.NTF_MASTER
        count = 0
        for _ in range(limit):
            try:
                size = recv_into(buf)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                sink.overrun()
                continue
            count += 1
            if size >= 38:
                length, mtype, family, ifindex, state, flags, _t, alen, atype = fast(buf, 0)
                if (
                    length == size
                    and family == nl.AF_BRIDGE
                    and (alen, atype) == (10, nl.NDA_LLADDR)
                    and mtype in _NEIGH_TYPES
                ):
                    if flags & nl.NTF_EXT_LEARNED:
                        if mtype == nl.RTM_DELNEIGH and ifindex in l2_vxlan:
                            mac = buf[32:38].hex(":")
                            if mac != nl.ZERO_MAC:
                                fdb_deleted(l2_vxlan[ifindex], mac, bool(flags & nl.NTF_SELF))
                                continue
                    elif (
                        (size == 76 or size == 68)
                        and not flags & no_learn
                        and not state & nl.NUD_PERMANENT
                        and ifindex not in not_access
                    ):
                        a_len, a_type, master, n_len, n_type = tail(buf, 40)
                        if (
                            (a_len, a_type) == (8, nl.NDA_MASTER)
                            and master in learn
                            and (
                                (n_len, n_type) == (8, nl.NDA_FLAGS_EXT)
                                if size == 76
                                else (n_len, n_type) == (20, nl.NDA_CACHEINFO)
                            )
                        ):
                            mac = buf[32:38].hex(":")
                            port_fdb(learn[master], mac, mtype == nl.RTM_DELNEIGH, state)
                            continue
            for mtype, _fl, _seq, off, end in nl.iter_messages(buf, size):
                try:
                    self._on_message(sink, mtype, buf, off, end)
                except (struct.error, ValueError, KeyError, IndexError) as exc:
                    log.warning("unparsable netlink event", type=mtype, error=str(exc))
        return count

    def _fast_path_maps(self, dm: DeviceMap) -> tuple[dict[int, int], dict[int, int], set[int]]:
        """The fast paths' lookups: VXLAN port -> L2VNI, bridge -> L2VNI (its access ports
        learn), the ports that are not access ports. Built once per device map (a set-up makes
        a new one and never changes it after), not once per read: with 4,000 VNIs that was a
        few milliseconds per 256 notifications."""
        if self._maps_for is not dm:  # held, so a new map can never reuse the old one's id
            l2_vxlan: dict[int, int] = {}
            learn: dict[int, int] = {}
            for v, d in dm.vnis.items():
                if not d.l3 and d.vlan is None:
                    l2_vxlan[d.vxlan] = v
                    learn[d.bridge] = v
            self._maps = (l2_vxlan, learn, set(l2_vxlan) | set(dm.tunnels))
            self._maps_for = dm
        return self._maps

    def _on_message(self, sink: EventSink, mtype: int, buf, off: int, end: int) -> None:
        if mtype in (nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH):
            sink.neigh_event(nl.parse_neigh(mtype, buf, off, end))
        elif mtype in (nl.RTM_NEWROUTE, nl.RTM_DELROUTE):
            sink.route_event(nl.parse_route(mtype, buf, off, end))
        elif mtype in (nl.RTM_NEWLINK, nl.RTM_DELLINK):
            _f, _t, index, _fl, _ch = _IFINFO.unpack_from(buf, off)
            if mtype == nl.RTM_DELLINK:
                sink.link_event(True, index, "", 0)
                return
            attrs = nl.parse_attrs(buf, off + 16, end)
            name = attrs.get(nl.IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace")
            master = attrs.get(nl.IFLA_MASTER)
            master_index = struct.unpack("=I", master)[0] if master and len(master) == 4 else 0
            sink.link_event(False, index, name, master_index)

    def stats(self) -> dict[str, float | str]:
        req = self.requester
        return {
            "monitor_filter": self.echo_filter,
            "kernel_seconds": round(req.kernel_seconds, 4),  # inside sendmmsg
            "worker_cpu_seconds": round(req.thread_cpu_seconds, 4),
            "messages_sent": req.messages_sent,
            "device_writes": self.devices.writes,
        }
