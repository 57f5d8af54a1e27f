"""Decoding a captured overlay packet (dpkt) and printing it as one line or one JSON object.

This runs only on packets the kernel filter let through, so its cost is per matching packet.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import dpkt

from evpnd.capture.filter import GENEVE_PORT, VXLAN_PORT

DLT_EN10MB = 1
DLT_LINUX_SLL = 113
_NAMES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP"}

_TCP_FLAGS = (
    (dpkt.tcp.TH_SYN, "S"),
    (dpkt.tcp.TH_FIN, "F"),
    (dpkt.tcp.TH_RST, "R"),
    (dpkt.tcp.TH_PUSH, "P"),
    (dpkt.tcp.TH_ACK, "."),
    (dpkt.tcp.TH_URG, "U"),
)


@dataclass
class Inner:
    src_mac: str | None = None
    dst_mac: str | None = None
    ethertype: int | None = None
    proto: str = "?"  # ARP, ICMP, ICMPv6, TCP, UDP, IPv4, IPv6, ether
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    summary: str = ""
    df: bool | None = None
    length: int = 0  # bytes of the inner frame
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Packet:
    time: float
    length: int  # on the wire (outer frame)
    outer_src: str
    outer_dst: str
    df: bool  # outer DF bit (IPv6: never fragmented on path, reported False)
    encap: str  # vxlan, geneve, gre, or "other"
    vni: int | None
    inner: Inner

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inner"] = {k: v for k, v in d["inner"].items() if v not in (None, {})}
        return d


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _ip(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(b) == 16 else socket.AF_INET, b)


def _tcp_flags(flags: int) -> str:
    return "".join(ch for bit, ch in _TCP_FLAGS if flags & bit) or "none"


def _l4(inner: Inner, proto: int, data: Any) -> None:
    """Fill ports/summary for TCP, UDP, ICMP and ICMPv6 from a dpkt IP payload."""
    if isinstance(data, dpkt.tcp.TCP):
        inner.proto, inner.sport, inner.dport = "TCP", data.sport, data.dport
        inner.detail = {"flags": _tcp_flags(data.flags), "seq": data.seq}
        flags = _tcp_flags(data.flags)
        inner.summary = (f"TCP {inner.src}:{data.sport} > {inner.dst}:{data.dport} [{flags}] "
                         f"seq {data.seq} len {len(data.data)}")  # fmt: skip
    elif isinstance(data, dpkt.udp.UDP):
        inner.proto, inner.sport, inner.dport = "UDP", data.sport, data.dport
        inner.summary = (f"UDP {inner.src}:{data.sport} > {inner.dst}:{data.dport} "
                         f"len {len(data.data)}")  # fmt: skip
    elif isinstance(data, dpkt.icmp.ICMP):
        inner.proto = "ICMP"
        kind = {0: "echo reply", 8: "echo request", 3: "unreachable", 11: "time exceeded"}
        name = kind.get(data.type, f"type {data.type} code {data.code}")
        inner.detail = {"type": data.type, "code": data.code}
        text = f"ICMP {inner.src} > {inner.dst} {name}"
        if data.type in (0, 8) and isinstance(data.data, dpkt.icmp.ICMP.Echo):
            inner.detail.update(id=data.data.id, seq=data.data.seq)
            text += f" id {data.data.id} seq {data.data.seq}"
        elif data.type == 3 and data.code == 4:
            text += " (fragmentation needed)"
        inner.summary = text
    elif isinstance(data, dpkt.icmp6.ICMP6):
        inner.proto = "ICMPv6"
        inner.detail = {"type": data.type, "code": data.code}
        kind = {128: "echo request", 129: "echo reply", 133: "router solicitation",
                134: "router advertisement", 135: "neighbor solicitation",
                136: "neighbor advertisement", 2: "packet too big"}  # fmt: skip
        text = f"ICMPv6 {inner.src} > {inner.dst} {kind.get(data.type, f'type {data.type}')}"
        if data.type in (128, 129) and isinstance(data.data, dpkt.icmp6.ICMP6.Echo):
            inner.detail.update(id=data.data.id, seq=data.data.seq)
            text += f" id {data.data.id} seq {data.data.seq}"
        elif data.type in (135, 136) and len(bytes(data.data)) >= 20:
            target = _ip(bytes(data.data)[4:20])
            inner.detail["target"] = target
            text += f" {'who-has' if data.type == 135 else 'is-at'} {target}"
        inner.summary = text
    else:
        inner.proto = "IPv4" if inner.ethertype == 0x0800 else "IPv6"
        inner.summary = f"{inner.proto} {inner.src} > {inner.dst} proto {proto}"


def _inner_ip(inner: Inner, ip: Any) -> None:
    inner.src, inner.dst = _ip(ip.src), _ip(ip.dst)
    if isinstance(ip, dpkt.ip.IP):
        inner.df = bool(ip.df)
        _l4(inner, ip.p, ip.data)
    else:
        _l4(inner, ip.nxt, ip.data)


def decode_inner_ethernet(buf: bytes) -> Inner:
    inner = Inner(length=len(buf))
    try:
        eth = dpkt.ethernet.Ethernet(buf)
    except (dpkt.UnpackError, struct.error):
        inner.summary = "truncated inner frame"
        return inner
    inner.src_mac, inner.dst_mac, inner.ethertype = _mac(eth.src), _mac(eth.dst), eth.type
    data = eth.data
    try:
        if isinstance(data, dpkt.arp.ARP):
            inner.proto = "ARP"
            inner.src, inner.dst = _ip(data.spa), _ip(data.tpa)
            if data.op == dpkt.arp.ARP_OP_REQUEST:
                inner.summary = f"ARP who-has {inner.dst} tell {inner.src}"
            elif data.op == dpkt.arp.ARP_OP_REPLY:
                inner.summary = f"ARP {inner.src} is-at {_mac(data.sha)}"
            else:
                inner.summary = f"ARP op {data.op}"
            inner.detail = {"op": data.op}
        elif isinstance(data, dpkt.ip.IP | dpkt.ip6.IP6):
            _inner_ip(inner, data)
        elif eth.type in _NAMES:  # dpkt leaves a cut IP/ARP packet as bytes
            inner.proto = _NAMES[eth.type]
            inner.summary = f"truncated {inner.proto} packet"
        else:
            inner.proto = "ether"
            inner.summary = f"ethertype {eth.type:#06x}"
    except (dpkt.UnpackError, struct.error, ValueError, AttributeError):
        inner.summary = inner.summary or "truncated inner packet"
    return inner


def _decode_inner_ip(buf: bytes, ethertype: int) -> Inner:
    """Plain GRE: an IP packet without Ethernet."""
    inner = Inner(length=len(buf), ethertype=ethertype)
    try:
        ip = dpkt.ip.IP(buf) if ethertype == 0x0800 else dpkt.ip6.IP6(buf)
        _inner_ip(inner, ip)
    except (dpkt.UnpackError, struct.error, ValueError):
        inner.summary = "truncated inner packet"
    return inner


def _gre(buf: bytes) -> tuple[int | None, int, bytes]:
    """(key, protocol, payload) of a GRE header (RFC 2784/2890)."""
    flags, proto = struct.unpack_from("!HH", buf)
    off, key = 4, None
    if flags & 0x8000:
        off += 4
    if flags & 0x2000:
        (key,) = struct.unpack_from("!I", buf, off)
        off += 4
    if flags & 0x1000:
        off += 4
    return key, proto, buf[off:]


def decode(ts: float, buf: bytes, length: int, linktype: int = DLT_EN10MB) -> Packet | None:
    """One captured frame (from the underlay) as a Packet; None when it is not IP at all."""
    try:
        if linktype == DLT_LINUX_SLL:
            outer, l2 = dpkt.sll.SLL(buf).data, 16
        else:
            eth = dpkt.ethernet.Ethernet(buf)
            outer, l2 = eth.data, 14 + 4 * len(getattr(eth, "vlan_tags", None) or [])
    except (dpkt.UnpackError, struct.error):
        return None
    # Addresses and flags from dpkt; the payload from the captured bytes themselves, so what
    # is shown is what was on the wire (no re-packing of dpkt's objects).
    if isinstance(outer, dpkt.ip.IP):
        df, proto = bool(outer.df), outer.p
        payload = buf[l2 + outer.hl * 4 : l2 + outer.len]
    elif isinstance(outer, dpkt.ip6.IP6):
        df, proto = False, outer.nxt
        payload = buf[l2 + 40 : l2 + 40 + outer.plen]
    else:
        return None
    src, dst = _ip(outer.src), _ip(outer.dst)
    encap, vni, inner = "other", None, Inner(summary="not an overlay packet")
    try:
        dport = struct.unpack_from("!H", payload, 2)[0] if proto == 17 else None
        if dport in (VXLAN_PORT, GENEVE_PORT):
            head = payload[8:]
            if dport == VXLAN_PORT:
                encap, body = "vxlan", head[8:]
            else:
                encap, body = "geneve", head[8 + (head[0] & 0x3F) * 4 :]
            vni = int.from_bytes(head[4:7], "big")
            inner = decode_inner_ethernet(body)
        elif proto == 47:
            encap = "gre"
            vni, gproto, body = _gre(payload)
            inner = decode_inner_ethernet(body) if gproto == 0x6558 else \
                _decode_inner_ip(body, gproto)  # fmt: skip
    except (struct.error, IndexError):
        inner = Inner(summary="truncated encapsulation header")
    return Packet(ts, length, src, dst, df, encap, vni, inner)


def format_line(p: Packet) -> str:
    """time  outer src > dst  encap VNI  inner MACs  summary  size  DF."""
    t = time.strftime("%H:%M:%S", time.localtime(p.time)) + f".{int(p.time % 1 * 1e6):06d}"
    tag = f"{p.encap} {'key' if p.encap == 'gre' else 'vni'} {p.vni}" if p.vni is not None \
        else p.encap  # fmt: skip
    macs = f"{p.inner.src_mac} > {p.inner.dst_mac}" if p.inner.src_mac else "-"
    inner_df = " inner-DF" if p.inner.df else ""
    return (f"{t} {p.outer_src} > {p.outer_dst} {tag} {macs} {p.inner.summary}, "
            f"length {p.length}{' DF' if p.df else ''}{inner_df}")  # fmt: skip
