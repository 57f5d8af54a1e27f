"""EVPN on the wire: NLRI and path-attribute bytes, packed and parsed. Pure: no exabgp, no I/O.

Used on both sides of the ExaBGP channel: the extension (inside ExaBGP) packs what evpnd
announces, and evpnd.bgp.compact parses the raw UPDATEs the extension hands over.

Layouts (route-type-specific data, after the 1-byte type and 1-byte length of RFC 7432 7):
  type 2 (RFC 7432 7.2):  RD(8) ESI(10) EthTag(4) MACLen(1)=48 MAC(6) IPLen(1) IP(0|4|16)
                          Label1(3) [Label2(3)]
  type 3 (RFC 7432 7.3):  RD(8) EthTag(4) IPLen(1) IP(4|16)
  type 5 (RFC 9136 3.1):  RD(8) ESI(10) EthTag(4) PrefixLen(1) Prefix(4|16) GW(4|16) Label(3)
Labels carry the raw 24-bit VNI (RFC 8365 section 5.1.3), not an MPLS label<<4|BOS.
The route's identity (RFC 7432 7.2: "for the purpose of BGP route key processing, only the
Ethernet Tag ID, MAC Address Length, MAC Address, IP Address Length, and IP Address fields are
considered") is given by `route_key_bytes`: it excludes ESI, labels and the type-5 gateway.
"""

from __future__ import annotations

import socket
import struct

# Path attribute type codes (RFC 4271 section 5, RFC 4760, RFC 4360, RFC 6514)
ORIGIN = 1
AS_PATH = 2
NEXT_HOP = 3
MED = 4
LOCAL_PREF = 5
ATOMIC_AGGREGATE = 6
AGGREGATOR = 7
COMMUNITIES = 8
ORIGINATOR_ID = 9
CLUSTER_LIST = 10
MP_REACH_NLRI = 14
MP_UNREACH_NLRI = 15
EXTENDED_COMMUNITIES = 16
AS4_PATH = 17
AS4_AGGREGATOR = 18
PMSI_TUNNEL = 22

FLAG_OPTIONAL = 0x80
FLAG_TRANSITIVE = 0x40
FLAG_EXTENDED_LENGTH = 0x10

AFI_L2VPN = 25
SAFI_EVPN = 70

ORIGIN_NAMES = ("igp", "egp", "incomplete")
PMSI_INGRESS_REPLICATION = 6


class WireError(ValueError):
    """Bytes that do not follow the layout the RFC gives."""


def ip_bytes(text: str) -> bytes:
    """'192.0.2.1' -> 4 bytes, '2001:db8::1' -> 16 bytes (WireError otherwise)."""
    try:
        if ":" in text:
            return socket.inet_pton(socket.AF_INET6, text)
        return socket.inet_pton(socket.AF_INET, text)
    except OSError:
        raise WireError(f"not an IP address: {text!r}") from None


def ip_text(data: bytes) -> str:
    if len(data) == 4:
        return socket.inet_ntop(socket.AF_INET, data)
    if len(data) == 16:
        return socket.inet_ntop(socket.AF_INET6, data)
    raise WireError(f"IP address of {len(data)} bytes")


def label_bytes(vni: int) -> bytes:
    if not 0 <= vni <= 0xFFFFFF:
        raise WireError(f"label is not a 24-bit VNI: {vni}")
    return vni.to_bytes(3, "big")


def mac_bytes(text: str) -> bytes:
    try:
        data = bytes.fromhex(text.replace(":", ""))
    except ValueError:
        raise WireError(f"not a MAC address: {text!r}") from None
    if len(data) != 6 or len(text) != 17:
        raise WireError(f"not a MAC address: {text!r}")
    return data


# ----------------------------------------------------------------------------- NLRI packing


def pack_mac_ip(
    rd: bytes, esi: bytes, etag: int, mac: bytes, ip: bytes, vni: int, l3vni: int = 0
) -> bytes:
    """Type-2 route data; `ip` is b'' for a MAC-only route; label 2 only when l3vni."""
    out = rd + esi + etag.to_bytes(4, "big") + b"\x30" + mac + bytes((len(ip) * 8,)) + ip
    out += label_bytes(vni)
    if l3vni:
        out += label_bytes(l3vni)
    return out


def pack_imet(rd: bytes, etag: int, origin: bytes) -> bytes:
    return rd + etag.to_bytes(4, "big") + bytes((len(origin) * 8,)) + origin


def pack_prefix(
    rd: bytes, esi: bytes, etag: int, plen: int, prefix: bytes, gateway: bytes, vni: int
) -> bytes:
    """Type-5 route data; prefix and gateway have the same family (RFC 9136 3.1)."""
    if len(gateway) != len(prefix):
        raise WireError("type-5 gateway and prefix must be of the same address family")
    return rd + esi + etag.to_bytes(4, "big") + bytes((plen,)) + prefix + gateway + label_bytes(vni)


def route_key_bytes(code: int, data: bytes) -> bytes:
    """The bytes that identify the route (RFC 7432 7.2, RFC 9136 3.2): labels, ESI, GW left out."""
    if code == 2:  # RD + EthTag + MACLen + MAC + IPLen + IP
        iplen = data[29] // 8
        return b"\x02" + data[0:8] + data[18 : 30 + iplen]
    if code == 5:  # RD + EthTag + PrefixLen + Prefix
        width = 4 if len(data) == 34 else 16
        return b"\x05" + data[0:8] + data[18 : 23 + width]
    return bytes((code,)) + data


# ----------------------------------------------------------------------------- attributes


def pack_attribute(code: int, flags: int, value: bytes) -> bytes:
    if len(value) > 255:
        return struct.pack("!BBH", flags | FLAG_EXTENDED_LENGTH, code, len(value)) + value
    return struct.pack("!BBB", flags & ~FLAG_EXTENDED_LENGTH, code, len(value)) + value


def pack_extended_communities(values: list[int] | tuple[int, ...]) -> bytes:
    """RFC 4360 section 2: 8 bytes each, optional transitive."""
    value = b"".join(v.to_bytes(8, "big") for v in values)
    return pack_attribute(EXTENDED_COMMUNITIES, FLAG_OPTIONAL | FLAG_TRANSITIVE, value)


def pack_pmsi_ingress_replication(endpoint: bytes, vni: int, flags: int = 0) -> bytes:
    """RFC 6514 section 5: flags(1) type(1) label(3) tunnel id; RFC 8365 5.1.3: label = VNI."""
    value = bytes((flags, PMSI_INGRESS_REPLICATION)) + label_bytes(vni) + endpoint
    return pack_attribute(PMSI_TUNNEL, FLAG_OPTIONAL | FLAG_TRANSITIVE, value)


def pack_origin(origin: str) -> bytes:
    return pack_attribute(ORIGIN, FLAG_TRANSITIVE, bytes((ORIGIN_NAMES.index(origin),)))


# ----------------------------------------------------------------------------- parsing


def split_update(body: bytes) -> tuple[bytes, bytes, bytes]:
    """An UPDATE body (after the 19-byte header) -> (withdrawn, attributes, nlri) (RFC 4271 4.3)."""
    if len(body) < 4:
        raise WireError("UPDATE shorter than its two length fields")
    wlen = int.from_bytes(body[0:2], "big")
    if 2 + wlen + 2 > len(body):
        raise WireError("withdrawn routes length runs past the UPDATE")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    start = 4 + wlen
    if start + alen > len(body):
        raise WireError("path attribute length runs past the UPDATE")
    return body[2 : 2 + wlen], body[start : start + alen], body[start + alen :]


def iter_attributes(data: bytes):
    """Yield (flags, code, value) for each path attribute (RFC 4271 4.3)."""
    pos, end = 0, len(data)
    while pos < end:
        if pos + 3 > end:
            raise WireError("truncated attribute header")
        flags, code = data[pos], data[pos + 1]
        if flags & FLAG_EXTENDED_LENGTH:
            if pos + 4 > end:
                raise WireError("truncated attribute header")
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            pos += 4
        else:
            length = data[pos + 2]
            pos += 3
        if pos + length > end:
            raise WireError(f"attribute {code} runs past the attribute field")
        yield flags, code, data[pos : pos + length]
        pos += length


def iter_evpn_nlri(data: bytes):
    """Yield (route type, route data) of each EVPN NLRI (RFC 7432 section 7)."""
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end:
            raise WireError("truncated EVPN NLRI header")
        code, length = data[pos], data[pos + 1]
        pos += 2
        if pos + length > end:
            raise WireError("EVPN NLRI runs past its attribute")
        yield code, data[pos : pos + length]
        pos += length
