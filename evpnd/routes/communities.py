"""BGP extended communities used by EVPN (RFC 4360, RFC 7432 section 7, RFC 9135, RFC 9012).

Each is an 8-byte value; ExaBGP hands them over as integers, so decoding works on the integer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

from evpnd.routes.rd import RDError, pack_rd

# (type, sub-type) pairs, high byte first.
RT_AS2 = 0x0002
RT_IPV4 = 0x0102
RT_AS4 = 0x0202
ENCAPSULATION = 0x030C  # RFC 9012 section 4.1
DEFAULT_GATEWAY = 0x030D  # RFC 7432 section 7.8
MAC_MOBILITY = 0x0600  # RFC 7432 section 7.7
ESI_LABEL = 0x0601
ROUTER_MAC = 0x0603  # RFC 9135 section 8.1

TUNNEL_VXLAN = 8
TUNNEL_NVGRE = 9
TUNNEL_MPLS = 10
TUNNEL_GENEVE = 19
_TUNNEL_NAMES = {TUNNEL_VXLAN: "vxlan", TUNNEL_NVGRE: "nvgre", TUNNEL_MPLS: "mpls"}
_TUNNEL_NAMES[TUNNEL_GENEVE] = "geneve"


class MacMobility(NamedTuple):
    sequence: int
    sticky: bool


def pack_route_target(text: str) -> int:
    """'65000:100' / '192.0.2.1:5' / '4200000000:5' -> the 8-byte value as an integer.

    The value part is laid out as an RD's (RFC 4360 section 3.1, RFC 5668): type 0x00/0x01/0x02
    like RD types 0/1/2, then sub-type 0x02 (route target) instead of the RD's second type byte.
    """
    try:
        rd = pack_rd(text)
    except RDError as exc:
        raise RDError(f"route target: {exc}") from None
    return int.from_bytes(bytes((rd[1], 0x02)) + rd[2:], "big")


def format_route_target(value: int) -> str | None:
    """The text form of a route-target community, or None if the value is not one."""
    kind = value >> 48
    if kind == RT_AS2:
        return f"{(value >> 32) & 0xFFFF}:{value & 0xFFFFFFFF}"
    if kind == RT_IPV4:
        return f"{ipaddress.IPv4Address((value >> 16) & 0xFFFFFFFF)}:{value & 0xFFFF}"
    if kind == RT_AS4:
        return f"{(value >> 16) & 0xFFFFFFFF}:{value & 0xFFFF}"
    return None


def normalize_route_target(text: str) -> str:
    value = pack_route_target(text)
    out = format_route_target(value)
    assert out is not None
    return out


def rt_number(rt: str) -> int:
    """The local-administrator part of an RT; FRR matches auto RTs on it (the VNI)."""
    return int(rt.rpartition(":")[2])


def encapsulation(tunnel_type: int = TUNNEL_VXLAN) -> int:
    return (ENCAPSULATION << 48) | tunnel_type


def tunnel_name(tunnel_type: int) -> str:
    return _TUNNEL_NAMES.get(tunnel_type, str(tunnel_type))


def mac_mobility(sequence: int, sticky: bool = False) -> int:
    """Flags byte bit 0 is 'sticky/static' (RFC 7432 section 7.7)."""
    if not 0 <= sequence <= 0xFFFFFFFF:
        raise ValueError(f"MAC mobility sequence out of range: {sequence}")
    return (MAC_MOBILITY << 48) | ((1 if sticky else 0) << 40) | sequence


def decode_mac_mobility(value: int) -> MacMobility:
    return MacMobility(value & 0xFFFFFFFF, bool((value >> 40) & 0x01))


def router_mac(mac: str) -> int:
    return (ROUTER_MAC << 48) | int(mac.replace(":", ""), 16)


def decode_router_mac(value: int) -> str:
    return format_mac(value & 0xFFFFFFFFFFFF)


def default_gateway() -> int:
    return DEFAULT_GATEWAY << 48


def format_mac(value: int) -> str:
    h = f"{value:012x}"
    return f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}"


def community_kind(value: int) -> int:
    """The (type, sub-type) pair of an extended community."""
    return value >> 48


class EvpnCommunities(NamedTuple):
    """What a path's extended communities say, as evpnd's Attributes need it."""

    route_targets: tuple[str, ...] = ()
    encap: int | None = None
    mobility_seq: int = 0
    sticky: bool = False
    has_mobility: bool = False
    router_mac: str | None = None
    default_gw: bool = False
    others: tuple[int, ...] = ()


_RT_KINDS = frozenset({RT_AS2, RT_IPV4, RT_AS4})


def interpret(values: Iterable[int]) -> EvpnCommunities:
    """Sort 8-byte extended communities (as integers) into what EVPN uses; keep the rest.

    Both decoders (ExaBGP's JSON and raw UPDATE bytes) call this, so they agree by construction.
    Duplicates are dropped (in linear time: a hostile peer may send thousands of communities
    in one UPDATE; the order of first appearance is kept); with several MAC mobility
    communities the highest sequence wins (RFC 7432 section 7.7 allows one; be liberal in what
    is accepted).
    """
    route_targets: dict[str, None] = {}  # ordered sets
    others: dict[int, None] = {}
    encap = rmac = None
    seq, sticky, has_mobility, default_gw = 0, False, False, False
    for value in values:
        kind = value >> 48
        if kind in _RT_KINDS:
            route_targets[format_route_target(value)] = None  # type: ignore[index]
        elif kind == ENCAPSULATION:
            encap = value & 0xFFFF  # RFC 9012 section 4.1: the tunnel type is the last 2 bytes
        elif kind == MAC_MOBILITY:
            if not has_mobility or value & 0xFFFFFFFF > seq:
                seq, sticky = value & 0xFFFFFFFF, bool((value >> 40) & 0x01)
            has_mobility = True
        elif kind == ROUTER_MAC:  # RFC 9135 section 8.1
            rmac = format_mac(value & 0xFFFFFFFFFFFF)
        elif kind == DEFAULT_GATEWAY:  # RFC 7432 section 7.8
            default_gw = True
        else:
            others[value] = None
    return EvpnCommunities(
        tuple(route_targets), encap, seq, sticky, has_mobility, rmac, default_gw, tuple(others)
    )
