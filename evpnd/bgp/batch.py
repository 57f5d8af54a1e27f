"""The compact batch command evpnd sends to its extension: routes as packed hex. Pure.

    evpnd routes TICKET PEERS ; A NEXTHOP ATTRHEX NLRIHEX NLRIHEX ... ; W NLRIHEX ... ; ...

A group `A` announces NLRIs that share one next hop and one attribute set; `W` withdraws.
NLRIHEX is a whole EVPN NLRI (type, length, route data: RFC 7432 section 7); ATTRHEX is the
path attributes evpnd sets (ORIGIN, EXTENDED_COMMUNITIES, PMSI_TUNNEL), packed; ExaBGP adds
AS_PATH and LOCAL_PREF per session. It carries exactly what the `announce evpn` text grammar
(evpnd.bgp.exabgp.commands) carries, checked by tests/unit/test_batch.py, at a fraction of the bytes
and of ExaBGP's parsing time: evpnd (one CPU) packs while ExaBGP (the other) sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from evpnd.bgp import wire
from evpnd.routes.communities import (
    default_gateway,
    encapsulation,
    mac_mobility,
    pack_route_target,
    router_mac,
)
from evpnd.routes.esi import ZERO_ESI, pack_esi
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from evpnd.routes.rd import pack_rd

_rd_cache: dict[str, bytes] = {}
_esi_cache: dict[str, bytes] = {ZERO_ESI: bytes(10)}
_ip_cache: dict[str, bytes] = {}
_attr_cache: dict[Attributes, str] = {}
_CACHE_MAX = 65536
_ZERO_ESI = bytes(10)


def _rd(text: str) -> bytes:
    out = _rd_cache.get(text)
    if out is None:
        if len(_rd_cache) >= _CACHE_MAX:
            _rd_cache.clear()
        out = _rd_cache[text] = pack_rd(text)
    return out


def _esi(text: str) -> bytes:
    out = _esi_cache.get(text)
    if out is None:
        if len(_esi_cache) >= _CACHE_MAX:
            _esi_cache.clear()
            _esi_cache[ZERO_ESI] = _ZERO_ESI
        out = _esi_cache[text] = pack_esi(text)
    return out


def _ip(text: str) -> bytes:
    """IP text -> bytes, cached: a fabric has few VTEPs and gateways."""
    out = _ip_cache.get(text)
    if out is None:
        if len(_ip_cache) >= _CACHE_MAX:
            _ip_cache.clear()
        out = _ip_cache[text] = wire.ip_bytes(text)
    return out


def pack_path_nlri(path: Path) -> bytes:
    """The whole EVPN NLRI (type, length, data) of a local path: what the peer receives."""
    key = path.key
    if isinstance(key, MacIpKey):
        ip = b"" if key.ip is None else wire.ip_bytes(key.ip)
        mac = bytes.fromhex(key.mac.replace(":", ""))
        if len(mac) != 6:
            raise wire.WireError(f"not a MAC address: {key.mac!r}")
        data = wire.pack_mac_ip(_rd(key.rd), _esi(path.esi), key.etag, mac, ip, path.vni,
                                path.l3vni)  # fmt: skip
        code = 2
    elif isinstance(key, ImetKey):
        data, code = wire.pack_imet(_rd(key.rd), key.etag, _ip(key.origin)), 3
    elif isinstance(key, PrefixKey):
        net, _, plen_text = key.prefix.partition("/")
        prefix = wire.ip_bytes(net)
        gateway = _ip(path.gateway) if path.gateway is not None else bytes(len(prefix))
        plen = int(plen_text)
        if not 0 <= plen <= len(prefix) * 8:
            raise wire.WireError(f"bad prefix length in {key.prefix!r}")
        data = wire.pack_prefix(_rd(key.rd), _esi(path.esi), key.etag, plen, prefix, gateway,
                                path.vni)  # fmt: skip
        code = 5
    else:
        raise wire.WireError(f"no NLRI for route key {key!r}")
    return bytes((code, len(data))) + data


# (RD, ESI, Ethernet tag, label 1, label 2) -> the type-2 NLRI's hex around the MAC and IP
_t2_cache: dict[tuple[str, str, int, int, int], tuple[str, str, int]] = {}


def nlri_hex(path: Path) -> str:
    """pack_path_nlri(path).hex(), for a type-2 route from the hex of its fixed parts: a
    burst of local MACs shares RD, ESI, tag and labels, so only the MAC and IP are packed
    (half of the encoding's time at 100k, issue 14). Same bytes and errors."""
    key = path.key
    if type(key) is not MacIpKey:
        return pack_path_nlri(path).hex()
    ck = (key.rd, path.esi, key.etag, path.vni, path.l3vni)
    parts = _t2_cache.get(ck)
    if parts is None:
        head = _rd(key.rd) + _esi(path.esi) + key.etag.to_bytes(4, "big") + b"\x30"
        labels = wire.label_bytes(path.vni)
        if path.l3vni:
            labels += wire.label_bytes(path.l3vni)
        if len(_t2_cache) >= _CACHE_MAX:
            _t2_cache.clear()
        parts = _t2_cache[ck] = (head.hex(), labels.hex(), len(head) + 6 + 1 + len(labels))
    head_hex, labels_hex, size = parts
    mac = bytes.fromhex(key.mac.replace(":", ""))
    if len(mac) != 6:
        raise wire.WireError(f"not a MAC address: {key.mac!r}")
    if key.ip is None:
        return f"02{size:02x}{head_hex}{mac.hex()}00{labels_hex}"
    ip = wire.ip_bytes(key.ip)
    return f"02{size + len(ip):02x}{head_hex}{mac.hex()}{len(ip) * 8:02x}{ip.hex()}{labels_hex}"


def pack_attributes(attrs: Attributes) -> str:
    """The attributes evpnd sets, packed, as hex (cached: few distinct sets exist)."""
    out = _attr_cache.get(attrs)
    if out is not None:
        return out
    values: list[int] = []
    if attrs.encap is not None:
        values.append(encapsulation(attrs.encap))
    if attrs.has_mobility or attrs.sticky:
        values.append(mac_mobility(attrs.mobility_seq, attrs.sticky))
    if attrs.router_mac is not None:
        values.append(router_mac(attrs.router_mac))
    if attrs.default_gw:
        values.append(default_gateway())
    values += [pack_route_target(rt) for rt in attrs.route_targets]
    values += list(attrs.other_communities)
    packed = wire.pack_origin(attrs.origin if attrs.origin in wire.ORIGIN_NAMES else "igp")
    if values:
        packed += wire.pack_extended_communities(values)
    pmsi = attrs.pmsi
    if pmsi is not None:
        if pmsi.tunnel_type != Pmsi.INGRESS_REPLICATION:
            raise wire.WireError(f"only ingress-replication PMSI can be announced: {pmsi!r}")
        packed += wire.pack_pmsi_ingress_replication(_ip(pmsi.endpoint), pmsi.vni)
    out = packed.hex()
    if len(_attr_cache) >= _CACHE_MAX:
        _attr_cache.clear()
    _attr_cache[attrs] = out
    return out


def encode(ops: Iterable[tuple[bool, Path]], errors: list[str] | None = None) -> str:
    """(announce?, path) pairs -> the group part of a line: 'A NH ATTR NLRI ... ; W NLRI ...'.

    Paths that cannot be packed are skipped and described in `errors`.
    """
    parts: list[str] = []
    group: tuple | None = None
    # Consecutive paths mostly share one Attributes object (OwnRoutes caches them): its hex is
    # reused by identity, without hashing its 15 fields per path.
    last_attrs: Attributes | None = None
    last_hex = ""
    for announce, path in ops:
        try:
            nlri = nlri_hex(path)
            if announce:
                attrs = path.attrs
                if attrs is not last_attrs:
                    last_hex = pack_attributes(attrs)
                    last_attrs = attrs
                here: tuple = ("A", path.next_hop, last_hex)
            else:
                here = ("W",)
        except (ValueError, TypeError) as exc:
            if errors is not None:
                errors.append(f"{exc}: {path!r:.200}")
            continue
        if here != group:
            if parts:
                parts.append(";")
            parts.extend(here)
            group = here
        parts.append(nlri)
    return " ".join(parts)


def line(ticket: str, peers: str, ops: Iterable[tuple[bool, Path]],
         errors: list[str] | None = None) -> str:  # fmt: skip
    return f"evpnd routes {ticket} {peers} ; {encode(ops, errors)}\n"


class Group:
    """One decoded group: announce (next hop, attribute bytes) or withdraw, with its NLRIs."""

    __slots__ = ("announce", "next_hop", "attributes", "nlris")

    def __init__(self, announce: bool, next_hop: str, attributes: str, nlris: list[str]):
        self.announce = announce
        self.next_hop = next_hop
        self.attributes = attributes  # hex
        self.nlris = nlris  # hex


def decode(body: str) -> Iterator[Group]:
    """The group part -> Groups (ValueError on a malformed group header)."""
    for text in body.split(" ; "):
        tokens = text.split()
        if not tokens:
            continue
        if tokens[0] == "A" and len(tokens) >= 3:
            yield Group(True, tokens[1], tokens[2], tokens[3:])
        elif tokens[0] == "W":
            yield Group(False, "", "", tokens[1:])
        else:
            raise ValueError(f"bad route group {text[:60]!r}")


def split_nlri(packed: bytes) -> tuple[int, bytes, bytes]:
    """A whole EVPN NLRI -> (type, data, key); WireError if its layout is wrong."""
    if len(packed) < 2 or packed[1] != len(packed) - 2:
        raise wire.WireError("EVPN NLRI length does not match its data")
    code, data = packed[0], packed[2:]
    n = len(data)
    if code == 2:
        ok = n >= 30 and data[22] == 48 and n in _T2_LENGTHS.get(data[29], ())
    elif code == 3:
        ok = n in (17, 29) and data[12] == (n - 13) * 8
    elif code == 5:
        ok = n in (34, 58)
    else:
        ok = False
    if not ok:
        raise wire.WireError(f"malformed EVPN type-{code} NLRI of {n} bytes")
    return code, data, wire.route_key_bytes(code, data)


_T2_LENGTHS = {0: (33, 36), 32: (37, 40), 128: (49, 52)}
