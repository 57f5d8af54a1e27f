"""Raw rtnetlink for the hot path: FDB, neighbour and route messages, built and parsed by hand.

pyroute2's per-call API and generic parser cost ~10x the kernel's own work at 100k entries, so
the objects evpnd installs in bulk are encoded here with `struct` and sent many per system
call (sendmmsg of datagrams of at most 16 KiB: mmsg.py says why); only the fields the
dataplane needs are decoded from dumps and events. Device set-up (rare,
attribute-rich) uses pyroute2 (see devices.py).

Batches do not ask for an ACK per message: the kernel handles each datagram of many messages
synchronously and reports only failures, each carrying the sequence number of the message that
failed, so errors map back to their objects; the last message of a chunk asks for an ACK as a
barrier. A lost error report (receive buffer overrun) surfaces as ENOBUFS and marks the batch
uncertain: the caller then re-dumps.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from evpnd.dataplane.mmsg import DATAGRAM_BYTES, send_datagrams

# netlink(7)
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_GET_STRICT_CHK = 12
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

# rtnetlink(7)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_GETADDR = 22
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFLA_IFNAME, IFLA_MASTER = 3, 10
IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS = 29, 1 << 3
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE = 1, 3, 7, 11

NDA_DST, NDA_LLADDR, NDA_VLAN, NDA_PORT, NDA_VNI, NDA_IFINDEX, NDA_MASTER = 1, 2, 5, 6, 7, 8, 9
NDA_SRC_VNI, NDA_PROTOCOL = 11, 12
NDA_CACHEINFO, NDA_FLAGS_EXT = 3, 15
NTF_SELF, NTF_MASTER, NTF_EXT_LEARNED = 0x02, 0x04, 0x10
NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE = 0x01, 0x02, 0x04, 0x08, 0x10
NUD_FAILED, NUD_NOARP, NUD_PERMANENT = 0x20, 0x40, 0x80

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE, RTA_VIA = 1, 4, 5, 6, 15, 18
RTNH_F_ONLINK = 0x4
RT_TABLE_COMPAT = 252
RTN_UNICAST, RTN_UNREACHABLE = 1, 7
RT_SCOPE_UNIVERSE = 0

AF_BRIDGE = socket.AF_BRIDGE
ZERO_MAC = "00:00:00:00:00:00"

# The protocol number evpnd stamps on its neighbours and routes. 235 (0xEB, "EVPN BGP") is not
# in iproute2's rt_protos nor used by a routing suite we know of; operators see it as `proto 235`
# (or add `235 evpnd` to /etc/iproute2/rt_protos).
RTPROT_EVPND = 235

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NDM = struct.Struct("=BxxxiHBB")  # ndmsg: family, ifindex, state, flags, type
_RTM = struct.Struct("=BBBBBBBBI")  # rtmsg
_RTA = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_ERR = struct.Struct("=i")


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return _RTA.pack(size, kind) + payload + b"\0" * (-size & 3)


_V4_MAPPED = b"\0" * 10 + b"\xff\xff"


def v4_mapped(ip: str) -> str | None:
    """::ffff:a.b.c.d for an IPv4 address (the next hop of IPv6 routes over an IPv4 VTEP)."""
    return None if ":" in ip else f"::ffff:{ip}"


def unmap(ip: str) -> str:
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def ip_bytes(ip: str) -> tuple[int, bytes]:
    if ":" in ip:
        return socket.AF_INET6, socket.inet_pton(socket.AF_INET6, ip)
    return socket.AF_INET, socket.inet_pton(socket.AF_INET, ip)


def ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


# ---- message bodies (everything after nlmsghdr); Batch adds the header --------------------------


def fdb_body(ifindex: int, mac: str, dst: str | None, flags: int, state: int = NUD_NOARP) -> bytes:
    """A bridge/vxlan FDB entry (AF_BRIDGE neighbour). flags: NTF_SELF (vxlan) / NTF_MASTER."""
    body = _NDM.pack(AF_BRIDGE, ifindex, state, flags, 0) + _attr(NDA_LLADDR, mac_bytes(mac))
    if dst is not None:
        body += _attr(NDA_DST, ip_bytes(dst)[1])
    return body


def neigh_body(ifindex: int, ip: str, mac: str | None, flags: int = NTF_EXT_LEARNED) -> bytes:
    family, raw = ip_bytes(ip)
    body = _NDM.pack(family, ifindex, NUD_NOARP, flags, 0) + _attr(NDA_DST, raw)
    if mac is not None:
        body += _attr(NDA_LLADDR, mac_bytes(mac)) + _attr(NDA_PROTOCOL, bytes([RTPROT_EVPND]))
    return body


def route_body(table: int, prefix: str, gateway: str | None, oif: int | None) -> bytes:
    addr, _, plen = prefix.partition("/")
    family, raw = ip_bytes(addr)
    plen_i = int(plen) if plen else len(raw) * 8
    rflags = RTNH_F_ONLINK if gateway is not None else 0
    body = _RTM.pack(
        family, plen_i, 0, 0, table if table < 256 else RT_TABLE_COMPAT,
        RTPROT_EVPND, RT_SCOPE_UNIVERSE, RTN_UNICAST, rflags,
    )  # fmt: skip
    body += _attr(RTA_TABLE, _U32.pack(table)) + _attr(RTA_DST, raw)
    if gateway is not None:
        gfamily, graw = ip_bytes(gateway)
        if gfamily == family:
            body += _attr(RTA_GATEWAY, graw)
        elif family == socket.AF_INET6:
            # IPv6 routes cannot have an IPv4 gateway: use the IPv4-mapped address, as FRR does
            # for EVPN type-5 over an IPv4 underlay (the RMAC neighbour is installed for it too).
            body += _attr(RTA_GATEWAY, b"\0" * 10 + b"\xff\xff" + graw)
        else:  # IPv4 prefix via an IPv6 VTEP (RFC 8950): RTA_VIA carries the family
            body += _attr(RTA_VIA, struct.pack("=H", gfamily) + graw)
    if oif is not None:
        body += _attr(RTA_OIF, _U32.pack(oif))
    return body


# ---- parsing ------------------------------------------------------------------------------------


def iter_messages(buf: bytes | memoryview, size: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, seq, offset of the body, end) of each message in buf[:size]."""
    off = 0
    while off + 16 <= size:
        length, mtype, flags, seq, _pid = _HDR.unpack_from(buf, off)
        if length < 16:
            return
        yield mtype, flags, seq, off + 16, off + length
        off += (length + 3) & ~3


def parse_attrs(buf, off: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    unpack = _RTA.unpack_from
    while off + 4 <= end:
        alen, atype = unpack(buf, off)
        if alen < 4:
            break
        out[atype & 0x3FFF] = bytes(buf[off + 4 : off + alen])
        off += (alen + 3) & ~3
    return out


@dataclass(slots=True)
class Neigh:
    """The fields of an RTM_*NEIGH the dataplane uses (AF_BRIDGE: an FDB entry)."""

    deleted: bool
    family: int
    ifindex: int
    state: int
    flags: int
    mac: str | None
    dst: str | None  # IP: the neighbour's address, or an FDB entry's remote VTEP
    master: int
    protocol: int
    vlan: int | None
    extra: bool = False  # FDB entry with a UDP port/VNI/ifindex of its own (not ours)
    src_vni: int = 0  # NDA_SRC_VNI: the VNI of an entry on a collect-metadata (single) device


_ADDR_TEXT: dict[bytes, str] = {}


def vtep_text(raw: bytes) -> str:
    """A VTEP address as text; few distinct VTEPs stand behind 100k MACs: share the strings."""
    text = _ADDR_TEXT.get(raw)
    if text is None:
        text = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
        if len(_ADDR_TEXT) < 4096:
            _ADDR_TEXT[raw] = text
    return text


def parse_neigh(mtype: int, buf, off: int, end: int) -> Neigh:
    """Only the attributes the dataplane uses; a tight loop because 100k-entry dumps and
    withdrawal storms go through here."""
    family, ifindex, state, flags, _t = _NDM.unpack_from(buf, off)
    mac = dst = None
    master = protocol = 0
    vlan = None
    extra = False
    src_vni = 0
    unpack = _RTA.unpack_from
    pos = off + 12
    while pos + 4 <= end:
        alen, atype = unpack(buf, pos)
        if alen < 4:
            break
        atype &= 0x3FFF
        if atype == NDA_LLADDR:
            if alen == 10:
                mac = bytes(buf[pos + 4 : pos + 10]).hex(":")
        elif atype == NDA_DST:
            if alen == 8 or alen == 20:
                raw = bytes(buf[pos + 4 : pos + alen])
                if family == AF_BRIDGE:
                    dst = vtep_text(raw)
                else:
                    dst = socket.inet_ntop(socket.AF_INET if alen == 8 else socket.AF_INET6, raw)
        elif atype == NDA_MASTER:
            master = _U32.unpack_from(buf, pos + 4)[0]
        elif atype == NDA_PROTOCOL:
            protocol = buf[pos + 4]
        elif atype == NDA_VLAN:
            vlan = struct.unpack_from("=H", buf, pos + 4)[0]
        elif atype in (NDA_VNI, NDA_PORT, NDA_IFINDEX):
            extra = True
        elif atype == NDA_SRC_VNI and alen == 8:
            src_vni = _U32.unpack_from(buf, pos + 4)[0]
        pos += (alen + 3) & ~3
    return Neigh(
        mtype == RTM_DELNEIGH, family, ifindex, state, flags, mac, dst, master, protocol, vlan,
        extra, src_vni,
    )  # fmt: skip


@dataclass(slots=True)
class Route:
    deleted: bool
    family: int
    table: int
    protocol: int
    prefix: str
    gateway: str | None
    oif: int
    multipath: bool
    rtype: int = RTN_UNICAST


def parse_route(mtype: int, buf, off: int, end: int) -> Route:
    family, dst_len, _s, _tos, table, proto, _scope, rtype, _fl = _RTM.unpack_from(buf, off)
    attrs = parse_attrs(buf, off + 12, end)
    if RTA_TABLE in attrs:
        table = _U32.unpack(attrs[RTA_TABLE])[0]
    dst = attrs.get(RTA_DST)
    addr = ip_text(dst) if dst else ("::" if family == socket.AF_INET6 else "0.0.0.0")
    gw = attrs.get(RTA_GATEWAY)
    gateway = ip_text(gw) if gw else None
    if gw is not None and len(gw) == 16 and gw[:12] == _V4_MAPPED:
        gateway = ip_text(gw[12:])
    via = attrs.get(RTA_VIA)
    if via is not None and len(via) > 2:
        gateway = ip_text(via[2:])
    oif = attrs.get(RTA_OIF)
    return Route(
        deleted=mtype == RTM_DELROUTE,
        family=family,
        table=table,
        protocol=proto,
        prefix=f"{addr}/{dst_len}",
        gateway=gateway,
        oif=_U32.unpack(oif)[0] if oif else 0,
        multipath=9 in attrs,  # RTA_MULTIPATH
        rtype=rtype,
    )


# ---- sockets ------------------------------------------------------------------------------------


class NetlinkError(OSError):
    pass


def open_socket(groups: tuple[int, ...] = (), rcvbuf: int = 8 << 20, sndbuf: int = 8 << 20):
    """An rtnetlink socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    for force, plain, size in (
        (SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf),
        (SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except PermissionError:  # not root: the sysctl limit applies
            sock.setsockopt(socket.SOL_SOCKET, plain, size)
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    sock.bind((0, 0))
    for group in groups:
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
    return sock


@dataclass(slots=True)
class Op:
    """One netlink request of a batch; `error` is filled in (0 = done) after `Batch.send`."""

    mtype: int
    flags: int
    body: bytes
    tag: Any = None  # (action, vni, key, value): which manager records the outcome, how
    error: int = 0


class Requester:
    """Synchronous request socket: batched writes and dumps. Use from one thread."""

    # A chunk is one sendmmsg and one wait for its ACK: large, so the netlink thread needs the
    # GIL back rarely while the loop thread decodes; its datagrams are small (mmsg.py).
    CHUNK_BYTES = 1024 * 1024
    DATAGRAM_BYTES = DATAGRAM_BYTES

    def __init__(self) -> None:
        self.sock = open_socket(rcvbuf=32 << 20, sndbuf=8 << 20)
        self.sock.settimeout(30.0)  # a lost ACK must not wedge the worker thread forever
        self.seq = 1
        self.buf = bytearray(1 << 20)
        self.messages_sent = 0
        self.sends = 0
        self.kernel_seconds = 0.0  # inside sendmmsg: the kernel applying the batch
        self.thread_cpu_seconds = 0.0  # CPU of this thread in run(), kernel time included

    def close(self) -> None:
        self.sock.close()

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0x7FFFFFFF or 1
        return self.seq

    def run(self, ops: list[Op]) -> bool:
        """Send ops in chunks; set each op's error. False if some error reports were lost."""
        cpu0 = time.thread_time()
        try:
            return self._run(ops)
        finally:
            self.thread_cpu_seconds += time.thread_time() - cpu0

    def _run(self, ops: list[Op]) -> bool:
        complete = True
        pack_hdr = _HDR.pack
        i, n = 0, len(ops)
        dgram = self.DATAGRAM_BYTES
        while i < n:
            by_seq: dict[int, Op] = {}
            parts: list[bytes] = []
            ends: list[int] = []  # where each datagram of the chunk ends (mmsg.py: why small)
            size = start = 0
            while i < n and size < self.CHUNK_BYTES:
                op = ops[i]
                mlen = 16 + len(op.body)
                if size + mlen - start > dgram and size > start:
                    ends.append(size)
                    start = size
                seq = self._next_seq()
                by_seq[seq] = op
                last = i + 1 == n or size + mlen >= self.CHUNK_BYTES
                flags = op.flags | NLM_F_REQUEST | (NLM_F_ACK if last else 0)
                parts.append(pack_hdr(mlen, op.mtype, flags, seq, 0))
                parts.append(op.body)
                size += mlen
                i += 1
            ends.append(size)
            barrier = seq
            data = b"".join(parts)
            t0 = time.perf_counter()
            self.sends += send_datagrams(self.sock, data, ends)
            self.kernel_seconds += time.perf_counter() - t0
            self.messages_sent += len(by_seq)
            complete &= self._collect(by_seq, barrier)
        return complete

    def _collect(self, by_seq: dict[int, Op], barrier: int) -> bool:
        while True:
            try:
                size = self.sock.recv_into(self.buf)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # error reports were dropped: outcome unknown
                    for op in by_seq.values():
                        op.error = op.error or -errno.ENOBUFS
                    self._drain()
                    return False
                raise
            for mtype, _fl, seq, off, _end in iter_messages(self.buf, size):
                if mtype != NLMSG_ERROR:
                    continue
                code = _ERR.unpack_from(self.buf, off)[0]
                op = by_seq.get(seq)
                if op is not None:
                    op.error = code
                if seq == barrier:
                    return True

    def _drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv_into(self.buf)
        except OSError:
            pass
        finally:
            self.sock.settimeout(30.0)

    def dump(self, mtype: int, body: bytes) -> Iterator[tuple[int, memoryview, int, int]]:
        """Yield (type, buffer, body offset, end) of every message of a dump."""
        seq = self._next_seq()
        msg = _HDR.pack(16 + len(body), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
        self.sock.sendto(msg, (0, 0))
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            size = self.sock.recv_into(buf)
            for rtype, _fl, rseq, off, end in iter_messages(view, size):
                if rseq != seq:
                    continue
                if rtype == NLMSG_DONE:  # a dump that failed says so in DONE's payload
                    code = _ERR.unpack_from(buf, off)[0] if end - off >= 4 else 0
                    if code < 0:
                        raise NetlinkError(-code, os.strerror(-code))
                    return
                if rtype == NLMSG_ERROR:
                    code = _ERR.unpack_from(buf, off)[0]
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return
                yield rtype, view, off, end


def fdb_dump_request(ifindex: int = 0, master: int = 0) -> bytes:
    """AF_BRIDGE dump filtered by port (ndm_ifindex) or bridge (NDA_MASTER); strict check."""
    body = _NDM.pack(AF_BRIDGE, ifindex, 0, 0, 0)
    if master:
        body += _attr(NDA_MASTER, _U32.pack(master))
    return body


def neigh_dump_request(family: int, ifindex: int) -> bytes:
    """Neighbours of one device: strict checking wants the device in NDA_IFINDEX, not in
    ndm_ifindex (unlike FDB dumps)."""
    return _NDM.pack(family, 0, 0, 0, 0) + _attr(NDA_IFINDEX, _U32.pack(ifindex))


_IFI = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change


def link_dump_request() -> bytes:
    """Every link of the namespace (strict checking: an all-zero ifinfomsg), without their
    statistics (IFLA_EXT_MASK, as `ip link` asks): nothing evpnd reads, and about a third of
    each message's attributes to walk (issue 17: 8,000 links per dump at 4,000 VNIs)."""
    body = _IFI.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return body + _RTA.pack(8, IFLA_EXT_MASK) + _U32.pack(RTEXT_FILTER_SKIP_STATS)


def link_master(buf, off: int, end: int) -> tuple[int, int]:
    """(ifindex, master ifindex or 0) of an RTM_NEWLINK: the one attribute the dump needs, read
    without decoding the rest (a link message carries ~1 KiB of attributes and statistics)."""
    index = _IFI.unpack_from(buf, off)[2]
    unpack = _RTA.unpack_from
    pos = off + 16
    while pos + 4 <= end:
        alen, atype = unpack(buf, pos)
        if alen < 4:
            break
        if atype & 0x3FFF == IFLA_MASTER and alen == 8:
            return index, _U32.unpack_from(buf, pos + 4)[0]
        pos += (alen + 3) & ~3
    return index, 0


_IFA = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index


def addr_dump_request(family: int = socket.AF_UNSPEC) -> bytes:
    """Every address of `family` (AF_UNSPEC: all) in the namespace."""
    return _IFA.pack(family, 0, 0, 0, 0)


def addr_of(buf, off: int, end: int) -> bytes | None:
    """The packed address of an RTM_NEWADDR (IFA_LOCAL, else IFA_ADDRESS), nothing decoded."""
    family = buf[off]
    size = 4 if family == socket.AF_INET else 16
    found = None
    pos = off + _IFA.size
    while pos + 4 <= end:
        alen, atype = _RTA.unpack_from(buf, pos)
        if alen < 4:
            break
        if atype in (IFA_LOCAL, IFA_ADDRESS) and alen - 4 == size:
            found = bytes(buf[pos + 4 : pos + alen])
            if atype == IFA_LOCAL:
                return found
        pos += (alen + 3) & ~3
    return found


def route_dump_request(family: int, table: int) -> bytes:
    body = _RTM.pack(family, 0, 0, 0, table if table < 256 else RT_TABLE_COMPAT, 0, 0, 0, 0)
    return body + _attr(RTA_TABLE, _U32.pack(table))


class FdbEncoder:
    """Fast FDB/neighbour bodies for bulk work: headers and VTEP attributes are cached."""

    _LL = _RTA.pack(10, NDA_LLADDR)
    _PAD2 = b"\0\0"

    def __init__(self) -> None:
        self._dst: dict[str, bytes] = {}
        self._pad_dst: dict[str, bytes] = {}
        self._hdr: dict[tuple[int, int, int, int], bytes] = {}

    def prefix(self, family: int, ifindex: int, state: int, flags: int) -> bytes:
        """ndmsg + the NDA_LLADDR attribute header: the MAC's 6 bytes follow."""
        key = (family, ifindex, state, flags)
        hdr = self._hdr.get(key)
        if hdr is None:
            hdr = self._hdr[key] = _NDM.pack(family, ifindex, state, flags, 0) + self._LL
        return hdr

    def pad_dst(self, ip: str) -> bytes:
        """The NDA_LLADDR padding + the NDA_DST attribute for a VTEP."""
        attr = self._pad_dst.get(ip)
        if attr is None:
            attr = self._pad_dst[ip] = self._PAD2 + _attr(NDA_DST, ip_bytes(ip)[1])
        return attr

    def dst(self, ip: str) -> bytes:
        attr = self._dst.get(ip)
        if attr is None:
            attr = self._dst[ip] = _attr(NDA_DST, ip_bytes(ip)[1])
        return attr

    def fdb(self, ifindex: int, mac: str, vtep: str | None, flags: int, state: int) -> bytes:
        body = self.prefix(AF_BRIDGE, ifindex, state, flags) + mac_bytes(mac)
        return body + (self.pad_dst(vtep) if vtep is not None else self._PAD2)

    def neigh(self, ifindex: int, ip: str, mac: str | None) -> bytes:
        return neigh_body(ifindex, ip, mac)


# Classic BPF on the monitor socket: drop the echo of evpnd's own adds (RTM_NEWNEIGH carrying
# NTF_EXT_LEARNED, RTM_NEWROUTE with RTPROT_EVPND). A bulk install would otherwise queue one
# notification per object (two per MAC) for the event loop to read back; the outcome of those
# writes is known from the request socket already. Deletions, and everything a person or the
# bridge does (a takeover clears extern_learn), still come through. Where eBPF may be loaded,
# echo_filter.py replaces this with the same rules plus the echo of evpnd's own deletes.
#
# Older kernels also send, for every FDB write with NTF_SELF, a generic duplicate of the
# device's own notification (rtnl_fdb_notify: flags exactly NTF_SELF, no extern_learn, no
# NDA_DST: 40 bytes, 48 with a VLAN); the vxlan driver's own notification carries everything
# (and a hand-made entry's has NDA_DST: 68 bytes or more). Debian 12's 6.1 sends it (6.18 does
# not): one per MAC evpnd installs, which the mirror took for a hand-made entry. Dropped too,
# adds and deletes.
GENERIC_FDB_NOTIFY_MAX = 48
_BPF_DROP_OWN_ADDS = [
    (0x30, 0, 0, 4),  # 0: A = nlmsg_type (low byte; rtnetlink types are < 256, host order LE)
    (0x15, 2, 0, RTM_NEWNEIGH),  # 1: -> 4
    (0x15, 4, 0, RTM_DELNEIGH),  # 2: -> 7
    (0x15, 9, 12, RTM_NEWROUTE),  # 3: -> 13, else accept
    (0x30, 0, 0, 16 + 10),  # 4: A = ndm_flags
    (0x45, 9, 0, NTF_EXT_LEARNED),  # 5: -> drop
    (0x05, 0, 0, 1),  # 6: -> 8
    (0x30, 0, 0, 16 + 10),  # 7: A = ndm_flags
    (0x15, 0, 7, NTF_SELF),  # 8: exactly NTF_SELF, else accept
    (0x30, 0, 0, 16),  # 9: A = ndm_family
    (0x15, 0, 5, AF_BRIDGE),  # 10: else accept
    (0x80, 0, 0, 0),  # 11: A = length of the message
    (0x25, 3, 2, GENERIC_FDB_NOTIFY_MAX),  # 12: longer: accept, else drop (the duplicate)
    (0x30, 0, 0, 16 + 5),  # 13: A = rtm_protocol
    (0x15, 0, 1, RTPROT_EVPND),  # 14: else accept
    (0x06, 0, 0, 0),  # 15: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # 16: accept
]


def attach_own_add_filter(sock: socket.socket) -> None:
    import ctypes
    import sys

    if sys.byteorder != "little":  # the filter reads the host-order type's low byte at offset 4
        return
    insns = b"".join(struct.pack("=HBBI", *i) for i in _BPF_DROP_OWN_ADDS)
    buf = ctypes.create_string_buffer(insns)
    fprog = struct.pack("HL", len(_BPF_DROP_OWN_ADDS), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER


def open_monitor() -> socket.socket:
    # EVPND_NETLINK_MONITOR_RCVBUF: the chaos suite forces overruns with a tiny buffer
    rcvbuf = int(os.environ.get("EVPND_NETLINK_MONITOR_RCVBUF") or 64 << 20)
    sock = open_socket(
        groups=(RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE),
        rcvbuf=rcvbuf,
    )
    attach_own_add_filter(sock)
    sock.setblocking(False)
    return sock
