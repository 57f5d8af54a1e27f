"""Overlay packets built with dpkt for the capture tests: outer Ethernet/IP, VXLAN/GENEVE/GRE,
inner Ethernet with ARP, ICMP echo, TCP or UDP."""

from __future__ import annotations

import socket
import struct

import dpkt


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ip4(text: str) -> bytes:
    return socket.inet_aton(text)


def ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def inner_icmp(src_mac, dst_mac, src, dst, ident=0x1234, seq=7, reply=False, df=True) -> bytes:
    echo = dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=b"x" * 56)
    icmp = dpkt.icmp.ICMP(type=0 if reply else 8, code=0, data=echo)
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=1, data=icmp, df=int(df))
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(src=mac(src_mac), dst=mac(dst_mac), type=0x0800, data=ip))


def inner_arp(src_mac, src, dst, reply=False, dst_mac="ff:ff:ff:ff:ff:ff") -> bytes:
    arp = dpkt.arp.ARP(op=2 if reply else 1, sha=mac(src_mac), spa=ip4(src),
                       tha=mac(dst_mac) if reply else b"\0" * 6, tpa=ip4(dst))  # fmt: skip
    return bytes(dpkt.ethernet.Ethernet(src=mac(src_mac), dst=mac(dst_mac), type=0x0806, data=arp))


def inner_tcp(src_mac, dst_mac, src, dst, sport, dport, flags) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=1000, off=5)
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=6, data=tcp)
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(src=mac(src_mac), dst=mac(dst_mac), type=0x0800, data=ip))


def inner_udp(src_mac, dst_mac, src, dst, sport, dport, payload=b"hello") -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(bytes(udp))
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=17, data=udp)
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(src=mac(src_mac), dst=mac(dst_mac), type=0x0800, data=ip))


def inner_icmp6(src_mac, dst_mac, src, dst, ident=1, seq=2) -> bytes:
    echo = dpkt.icmp6.ICMP6.Echo(id=ident, seq=seq, data=b"y" * 8)
    icmp = dpkt.icmp6.ICMP6(type=128, code=0, data=echo)
    ip = dpkt.ip6.IP6(src=ip6(src), dst=ip6(dst), nxt=58, hlim=64, data=icmp)
    ip.plen = len(bytes(icmp))
    return bytes(dpkt.ethernet.Ethernet(src=mac(src_mac), dst=mac(dst_mac), type=0x86DD, data=ip))


def _outer(payload: bytes, proto: int, src: str, dst: str, df: bool) -> bytes:
    """Outer Ethernet + IPv4 or IPv6 (by the address) around a raw L4 payload."""
    eth_src, eth_dst = mac("02:00:00:00:00:01"), mac("02:00:00:00:00:02")
    if ":" in src:
        head = struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + ip6(src) + ip6(dst)
        return eth_dst + eth_src + b"\x86\xdd" + head + payload
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=proto, df=int(df))
    ip.data = payload
    ip.len = 20 + len(payload)
    return eth_dst + eth_src + b"\x08\x00" + bytes(ip)


def _udp(payload: bytes, dport: int, src: str, dst: str, df: bool) -> bytes:
    udp = struct.pack("!HHHH", 49152, dport, 8 + len(payload), 0) + payload
    return _outer(udp, 17, src, dst, df)


def vxlan(inner: bytes, vni: int, src="10.0.0.1", dst="10.0.0.2", df=False) -> bytes:
    return _udp(struct.pack("!B3sI", 0x08, b"\0\0\0", vni << 8) + inner, 4789, src, dst, df)


def geneve(inner: bytes, vni: int, src="10.0.0.1", dst="10.0.0.2", options=b"") -> bytes:
    head = struct.pack("!BBHI", len(options) // 4, 0, 0x6558, vni << 8) + options
    return _udp(head + inner, 6081, src, dst, False)


def gre(inner: bytes, key: int, src="10.0.0.1", dst="10.0.0.2", proto=0x6558) -> bytes:
    return _outer(struct.pack("!HHI", 0x2000, proto, key) + inner, 47, src, dst, False)
