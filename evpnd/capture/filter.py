"""The capture filter: a pcap filter expression that libpcap compiles to classic BPF.

The expression is attached to the socket (SO_ATTACH_FILTER), so packets of other VNIs, MACs or
IPs are dropped in the kernel and never copied to user space. Offsets are fixed by the headers:

- VXLAN (RFC 7348): UDP dst 4789; flags(1) reserved(3) VNI(3) reserved(1); inner Ethernet at
  UDP+16.
- GENEVE (RFC 8926): UDP dst 6081; ver/optlen(1) flags(1) protocol(2) VNI(3) reserved(1);
  inner Ethernet at UDP+16+optlen*4. Inner MAC/IP filters require optlen 0 (what Linux's
  geneve device sends without options); the VNI filter works with any options.
- GRE (RFC 2890): IP protocol 47; flags(2) protocol(2) [checksum(4)] [key(4)] [seq(4)]. The
  key filter requires the key bit and no checksum (what Linux's gre/gretap send with `key`);
  inner filters also require no sequence number. gretap (0x6558) carries Ethernet, plain GRE
  (0x0800/0x86dd) carries IP (no inner MAC).

The outer family is IPv4 or IPv6; pcap's `udp[]` accessor is IPv4-only, so IPv6 uses `ip6[]`
with the fixed 40-byte header (no extension headers: VTEPs do not send them).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

VXLAN_PORT = 4789
GENEVE_PORT = 6081
GRE_PROTO = 47
ENCAPS = ("vxlan", "geneve", "gre")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")


class FilterError(ValueError):
    """Bad filter input (one line, shown to the user)."""


def parse_mac(text: str) -> bytes:
    t = text.strip().lower()
    if not _MAC.match(t):
        raise FilterError(f"not a MAC address: {text!r}")
    return bytes.fromhex(t.replace(":", "").replace("-", ""))


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise FilterError(f"not an IP address: {text!r}") from None


@dataclass(frozen=True)
class Spec:
    """What to capture. `family` is the outer (underlay) IP version, None for both."""

    encap: str = "vxlan"
    vni: int | None = None
    mac: bytes | None = None
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    vtep: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    family: int | None = None


class _Outer:
    """Accessors into the encapsulation header for one outer family."""

    def __init__(self, encap: str, family: int) -> None:
        self.encap, self.family = encap, family

    def at(self, off: int, size: int) -> str:
        """Bytes at `off` from the start of the VXLAN/GENEVE header (after UDP) or GRE header."""
        if self.encap == "gre":
            if self.family == 4:
                return f"ip[((ip[0] & 0xf) << 2) + {off}:{size}]"
            return f"ip6[{40 + off}:{size}]"
        return f"udp[{8 + off}:{size}]" if self.family == 4 else f"ip6[{48 + off}:{size}]"

    def base(self) -> str:
        if self.encap == "gre":
            return "ip proto 47" if self.family == 4 else "ip6[6] = 47"
        port = VXLAN_PORT if self.encap == "vxlan" else GENEVE_PORT
        return f"ip and udp dst port {port}" if self.family == 4 else \
            f"ip6 and ip6[6] = 17 and udp dst port {port}"  # fmt: skip

    def vni(self, vni: int) -> str:
        if self.encap == "gre":
            # key present, no checksum: the key is the second word
            return f"({self.at(0, 2)} & 0xb000) = 0x2000 and {self.at(4, 4)} = {vni}"
        # VXLAN and GENEVE both carry the VNI in bytes 4-6 of their header
        return f"({self.at(4, 4)} & 0xffffff00) = {vni << 8:#x}"

    def inner_guard(self) -> str:
        """The condition under which the inner frame starts 8 bytes into the header."""
        if self.encap == "vxlan":
            return ""
        if self.encap == "geneve":
            return f"({self.at(0, 1)} & 0x3f) = 0 and {self.at(2, 2)} = 0x6558"
        return f"({self.at(0, 2)} & 0xf000) = 0x2000"


def _words(data: bytes, o: _Outer, off: int) -> str:
    """Equality of `data` at `off`, as 4-byte and 2-byte loads (BPF loads at most 4 bytes)."""
    parts, i = [], 0
    while i < len(data):
        size = 4 if len(data) - i >= 4 else 2
        parts.append(f"{o.at(off + i, size)} = {int.from_bytes(data[i : i + size], 'big'):#x}")
        i += size
    return " and ".join(parts)


def _inner_eth(o: _Outer, spec: Spec) -> list[str]:
    """Conditions on the inner Ethernet frame (gretap, VXLAN, GENEVE)."""
    e = 8  # the inner frame follows the 8-byte VXLAN/GENEVE header or GRE header with key
    out = []
    if spec.mac is not None:
        out.append(f"(({_words(spec.mac, o, e)}) or ({_words(spec.mac, o, e + 6)}))")
    if spec.ip is not None:
        ip = spec.ip.packed
        if spec.ip.version == 4:
            v4 = f"{o.at(e + 12, 2)} = 0x800 and (({_words(ip, o, e + 26)}) or " \
                 f"({_words(ip, o, e + 30)}))"  # fmt: skip
            arp = f"{o.at(e + 12, 2)} = 0x806 and (({_words(ip, o, e + 28)}) or " \
                  f"({_words(ip, o, e + 38)}))"  # fmt: skip
            out.append(f"(({v4}) or ({arp}))")
        else:
            out.append(f"({o.at(e + 12, 2)} = 0x86dd and (({_words(ip, o, e + 22)}) or "
                       f"({_words(ip, o, e + 38)})))")  # fmt: skip
    return out


def _inner_ip_gre(o: _Outer, spec: Spec) -> str:
    """Plain GRE (no Ethernet): the IP header follows the 8-byte GRE header with key."""
    assert spec.ip is not None
    e, ip = 8, spec.ip.packed
    if spec.ip.version == 4:
        return f"({o.at(2, 2)} = 0x800 and (({_words(ip, o, e + 12)}) or " \
               f"({_words(ip, o, e + 16)})))"  # fmt: skip
    return f"({o.at(2, 2)} = 0x86dd and (({_words(ip, o, e + 8)}) or ({_words(ip, o, e + 24)})))"


def _branch(spec: Spec, family: int) -> str:
    o = _Outer(spec.encap, family)
    parts = [o.base()]
    if spec.vtep is not None:
        parts.append(f"{'ip' if family == 4 else 'ip6'} host {spec.vtep}")
    if spec.vni is not None:
        parts.append(o.vni(spec.vni))
    if spec.mac is not None or spec.ip is not None:
        guard = o.inner_guard()
        if guard:
            parts.append(guard)
        if spec.encap == "gre":
            eth = f"{o.at(2, 2)} = 0x6558 and " + " and ".join(_inner_eth(o, spec))
            if spec.mac is None:  # an IP alone also matches plain (L3) GRE
                parts.append(f"(({eth}) or {_inner_ip_gre(o, spec)})")
            else:
                parts.append(f"({eth})")
        else:
            parts.extend(_inner_eth(o, spec))
    return " and ".join(parts)


def build(spec: Spec) -> str:
    """The pcap filter expression for `spec`."""
    if spec.encap not in ENCAPS:
        raise FilterError(f"unknown encapsulation {spec.encap!r} (one of {', '.join(ENCAPS)})")
    if spec.vni is not None and not 0 <= spec.vni <= (0xFFFFFFFF if spec.encap == "gre"
                                                      else 0xFFFFFF):  # fmt: skip
        raise FilterError(f"VNI/key out of range: {spec.vni}")
    families = [spec.family] if spec.family else [4, 6]
    if spec.vtep is not None:
        if spec.family and spec.vtep.version != spec.family:
            raise FilterError(f"VTEP {spec.vtep} is not IPv{spec.family} like the underlay")
        families = [spec.vtep.version]
    branches = [_branch(spec, f) for f in families]
    if len(branches) == 1:
        return branches[0]
    return " or ".join(f"({b})" for b in branches)
