"""Received UPDATEs handed over raw by evpnd's extension -> events. Pure and fast.

ExaBGP's own receive path decodes every NLRI into objects and then prints JSON: at 100k
type-2 routes that is ~5 s of ExaBGP CPU. The extension instead writes one line per UPDATE,

    evpnd-rx <peer address> <asn4: 0|1> <UPDATE body in hex>

and this module decodes the body straight from the RFC layouts (see evpnd.bgp.wire). It
produces exactly the events evpnd.bgp.codec.decode_line produces for the same UPDATE
(tests/unit/test_compact.py checks both on the same bytes), so the core cannot tell them apart.
One difference by design: label 2 of a type-2 route (RFC 9135 symmetric IRB L3VNI) is read
from the NLRI, where ExaBGP's JSON reports only the first label.

Bad input never raises: it is counted in `counters` like the codec does, and
  - an attribute field that cannot be parsed withdraws the UPDATE's routes (RFC 7606 2);
  - one bad NLRI is skipped (counted); the rest of the UPDATE is kept where the
    NLRI lengths still delimit it, otherwise the remainder is dropped.
"""

from __future__ import annotations

import ipaddress
import socket

from evpnd.bgp import wire
from evpnd.core.events import EndOfRib, Event, RouteUpdate
from evpnd.routes.communities import interpret
from evpnd.routes.esi import ZERO_ESI
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey, RouteKey
from evpnd.routes.rd import unpack_rd

PREFIX = "evpnd-rx "

counters: dict[str, int] = {
    "updates": 0,
    "malformed_updates": 0,
    "malformed_nlri": 0,
    "malformed_attributes": 0,
    "unsupported_nlri": 0,
}
last_reject = ""

_CACHE_MAX = 65536
_rd_cache: dict[bytes, str] = {}
_esi_cache: dict[bytes, str] = {bytes(10): ZERO_ESI}
_attr_cache: dict[bytes, Attributes] = {}
_ntop = socket.inet_ntop
_AF4, _AF6 = socket.AF_INET, socket.AF_INET6
_U32 = 0xFFFFFFFF


def stats() -> dict[str, int]:
    return dict(counters)


def _reject(counter: str, reason: str) -> None:
    global last_reject
    counters[counter] += 1
    last_reject = reason[:200]


def _rd(data: bytes) -> str:
    rd = _rd_cache.get(data)
    if rd is None:
        rd = unpack_rd(data)
        if len(_rd_cache) >= _CACHE_MAX:
            _rd_cache.clear()
        _rd_cache[data] = rd
    return rd


def _esi(data: bytes) -> str:
    esi = _esi_cache.get(data)
    if esi is None:
        esi = ":".join(f"{b:02x}" for b in data)
        if len(_esi_cache) >= _CACHE_MAX:
            _esi_cache.clear()
            _esi_cache[bytes(10)] = ZERO_ESI
        _esi_cache[data] = esi
    return esi


def _ip(data: bytes) -> str:
    n = len(data)
    if n == 4:
        return _ntop(_AF4, data)
    if n == 16:
        return _ntop(_AF6, data)
    raise wire.WireError(f"IP address of {n} bytes")


# ----------------------------------------------------------------------------- NLRI


def _key(code: int, d: bytes) -> RouteKey | None:
    """The route key of one EVPN NLRI, None for route types evpnd does not handle."""
    if code == 2:
        n = len(d)
        iplen = d[29] if n > 29 else -1
        if d[22:23] != b"\x30" or iplen not in (0, 32, 128) or n not in _T2_LENGTHS[iplen]:
            raise wire.WireError(f"type-2 NLRI of {n} bytes is malformed")
        ip = _ip(d[30 : 30 + iplen // 8]) if iplen else None
        mac = d[23:29].hex(":")
        return MacIpKey(_rd(d[0:8]), int.from_bytes(d[18:22], "big"), mac, ip)
    if code == 3:
        n = len(d)
        if n not in (17, 29) or d[12] != (n - 13) * 8:
            raise wire.WireError(f"type-3 NLRI of {n} bytes is malformed")
        return ImetKey(_rd(d[0:8]), int.from_bytes(d[8:12], "big"), _ip(d[13:]))
    if code == 5:
        n = len(d)
        if n == 34:
            width = 4
        elif n == 58:
            width = 16
        else:
            raise wire.WireError(f"type-5 NLRI of {n} bytes is malformed")
        plen = d[22]
        if plen > width * 8:
            raise wire.WireError(f"type-5 prefix length {plen} too long")
        net = ipaddress.ip_network((d[23 : 23 + width], plen), strict=False)
        return PrefixKey(_rd(d[0:8]), int.from_bytes(d[18:22], "big"), str(net))
    return None


# (IP length in bits) -> allowed route data lengths: with one label or with two
_T2_LENGTHS = {0: (33, 36), 32: (37, 40), 128: (49, 52)}


def _path(code: int, d: bytes, key: RouteKey, peer: str, nh: str, attrs: Attributes) -> Path:
    if code == 2:
        end = 30 + d[29] // 8
        vni = int.from_bytes(d[end : end + 3], "big")
        l3vni = int.from_bytes(d[end + 3 : end + 6], "big") if len(d) >= end + 6 else 0
        return Path(key, peer, nh, vni, l3vni, _esi(d[8:18]), None, attrs)
    if code == 3:
        vni = attrs.pmsi.vni if attrs.pmsi is not None else 0
        return Path(key, peer, nh, vni, 0, ZERO_ESI, None, attrs)
    width = 4 if len(d) == 34 else 16
    gw_bytes = d[23 + width : 23 + 2 * width]
    gateway = None if not any(gw_bytes) else _ip(gw_bytes)
    vni = int.from_bytes(d[23 + 2 * width : 26 + 2 * width], "big")
    return Path(key, peer, nh, vni, 0, _esi(d[8:18]), gateway, attrs)


# ----------------------------------------------------------------------------- attributes


def _as_path(value: bytes, asn4: bool) -> tuple[int, ...]:
    """AS_PATH segments (RFC 4271 4.3, RFC 6793) flattened into one tuple, like the codec."""
    width = 4 if asn4 else 2
    out: list[int] = []
    pos, end = 0, len(value)
    while pos < end:
        if pos + 2 > end:
            raise wire.WireError("truncated AS_PATH segment")
        count = value[pos + 1]
        pos += 2
        stop = pos + count * width
        if stop > end:
            raise wire.WireError("AS_PATH segment runs past the attribute")
        out.extend(int.from_bytes(value[p : p + width], "big") for p in range(pos, stop, width))
        pos = stop
    return tuple(out)


def _pmsi(value: bytes) -> Pmsi | None:
    """RFC 6514 5: flags(1) tunnel type(1) label(3) tunnel identifier."""
    if len(value) < 5:
        raise wire.WireError("PMSI tunnel attribute too short")
    tunnel_type = value[1]
    if tunnel_type > 7:
        return None  # a tunnel type the codec does not name either: ignore the PMSI
    vni = int.from_bytes(value[2:5], "big")
    ident = value[5:]
    endpoint = _ip(ident) if len(ident) in (4, 16) else ""
    return Pmsi(tunnel_type, vni, endpoint)


def decode_attributes(data: bytes, asn4: bool) -> tuple[Attributes, bytes, bytes]:
    """The attribute field -> (Attributes, MP_REACH value, MP_UNREACH value). Cached per bytes.

    The cache key leaves the MP attributes out (they differ in every UPDATE), so a table
    load with one attribute set decodes the attributes once.
    """
    reach = unreach = b""
    plain: list[tuple[int, bytes]] = []
    for _flags, code, value in wire.iter_attributes(data):
        if code == wire.MP_REACH_NLRI:
            reach = value
        elif code == wire.MP_UNREACH_NLRI:
            unreach = value
        else:
            plain.append((code, value))
    cache_key = (b"\x01" if asn4 else b"\x00") + b"".join(
        bytes((c,)) + len(v).to_bytes(2, "big") + v for c, v in plain
    )
    attrs = _attr_cache.get(cache_key)
    if attrs is None:
        attrs = _build_attributes(plain, asn4)
        if len(_attr_cache) >= _CACHE_MAX:
            _attr_cache.clear()
        _attr_cache[cache_key] = attrs
    return attrs, reach, unreach


def _build_attributes(plain: list[tuple[int, bytes]], asn4: bool) -> Attributes:
    ec = interpret(())
    origin = "igp"
    as_path: tuple[int, ...] = ()
    local_pref = med = None
    originator = None
    clusters: tuple[str, ...] = ()
    pmsi = None
    for code, value in plain:
        if code == wire.EXTENDED_COMMUNITIES:
            if len(value) % 8:
                raise wire.WireError("extended communities not a multiple of 8 bytes")
            ec = interpret(
                int.from_bytes(value[pos : pos + 8], "big") for pos in range(0, len(value), 8)
            )
        elif code == wire.ORIGIN:
            if len(value) != 1 or value[0] > 2:
                raise wire.WireError("bad ORIGIN")
            origin = wire.ORIGIN_NAMES[value[0]]
        elif code == wire.AS_PATH:
            as_path = _as_path(value, asn4)
        elif code == wire.LOCAL_PREF:
            if len(value) != 4:
                raise wire.WireError("bad LOCAL_PREF")
            local_pref = int.from_bytes(value, "big")
        elif code == wire.MED:
            if len(value) != 4:
                raise wire.WireError("bad MED")
            med = int.from_bytes(value, "big")
        elif code == wire.ORIGINATOR_ID:
            if len(value) != 4:
                raise wire.WireError("bad ORIGINATOR_ID")
            originator = _ip(value)
        elif code == wire.CLUSTER_LIST:
            if len(value) % 4:
                raise wire.WireError("bad CLUSTER_LIST")
            clusters = tuple(_ip(value[p : p + 4]) for p in range(0, len(value), 4))
        elif code == wire.PMSI_TUNNEL:
            pmsi = _pmsi(value)
    return Attributes(
        route_targets=ec.route_targets,
        encap=ec.encap,
        mobility_seq=ec.mobility_seq,
        sticky=ec.sticky,
        has_mobility=ec.has_mobility,
        router_mac=ec.router_mac,
        default_gw=ec.default_gw,
        as_path=as_path,
        origin=origin,
        local_pref=local_pref,
        med=med,
        originator_id=originator,
        cluster_list=clusters,
        pmsi=pmsi,
        other_communities=ec.others,
    )


# ----------------------------------------------------------------------------- UPDATE


_new = tuple.__new__
_from_bytes = int.from_bytes
_ZERO_TAG = bytes(4)


def _announced(nlri: bytes, peer: str, nh: str, attrs: Attributes, out: list[Path]) -> None:
    """The announced NLRIs of an MP_REACH -> Paths appended to `out`.

    The hot path of a table load: MAC and MAC+IPv4 type-2 routes are decoded inline (no
    generator, no per-field calls); everything else goes through _key/_path.
    """
    pos, end = 0, len(nlri)
    rd_cache, esi_cache = _rd_cache, _esi_cache
    while pos < end:
        if pos + 2 > end:
            raise wire.WireError("truncated EVPN NLRI header")
        code, length = nlri[pos], nlri[pos + 1]
        s = pos + 2
        pos = s + length
        if pos > end:
            raise wire.WireError("EVPN NLRI runs past its attribute")
        if (
            code == 2
            and nlri[s + 22] == 48
            and (
                (length in (33, 36) and nlri[s + 29] == 0)
                or (length in (37, 40) and nlri[s + 29] == 32)
            )
        ):
            rdb = nlri[s : s + 8]
            rd = rd_cache.get(rdb) or _rd(rdb)
            tag = nlri[s + 18 : s + 22]
            etag = 0 if tag == _ZERO_TAG else _from_bytes(tag, "big")
            if nlri[s + 29]:
                ip = _ntop(_AF4, nlri[s + 30 : s + 34])
                lab = s + 34
            else:
                ip = None
                lab = s + 30
            key = _new(MacIpKey, (rd, etag, nlri[s + 23 : s + 29].hex(":"), ip))
            vni = _from_bytes(nlri[lab : lab + 3], "big")
            l3vni = _from_bytes(nlri[lab + 3 : lab + 6], "big") if pos - lab == 6 else 0
            esib = nlri[s + 8 : s + 18]
            esi = esi_cache.get(esib) or _esi(esib)
            out.append(_new(Path, (key, peer, nh, vni, l3vni, esi, None, attrs)))
            continue
        d = nlri[s:pos]
        try:
            key = _key(code, d)
            if key is None:
                _reject("unsupported_nlri", f"EVPN route type {code} from {peer}")
                continue
            out.append(_path(code, d, key, peer, nh, attrs))
        except (wire.WireError, ValueError, IndexError) as exc:
            _reject("malformed_nlri", f"bad announced NLRI from {peer}: {exc}")


def _evpn_family(value: bytes) -> bool:
    return value[0:3] == b"\x00\x19\x46"  # AFI 25 (L2VPN), SAFI 70 (EVPN), RFC 7432 section 20


def _keys(data: bytes, peer: str, out: list[RouteKey]) -> None:
    try:
        for code, d in wire.iter_evpn_nlri(data):
            try:
                key = _key(code, d)
            except (wire.WireError, ValueError, IndexError) as exc:
                _reject("malformed_nlri", f"bad withdrawn NLRI from {peer}: {exc}")
                continue
            if key is None:
                _reject("unsupported_nlri", f"EVPN route type {code} from {peer}")
            else:
                out.append(key)
    except wire.WireError as exc:
        _reject("malformed_nlri", f"NLRI field from {peer}: {exc}")


def decode_update(peer: str, body: bytes, asn4: bool = True) -> list[Event]:
    """One raw UPDATE body (after the 19-byte header) -> events (RouteUpdate / EndOfRib)."""
    counters["updates"] += 1
    try:
        _withdrawn, attr_field, _nlri = wire.split_update(body)
    except wire.WireError as exc:
        _reject("malformed_updates", f"UPDATE from {peer}: {exc}")
        return []
    try:
        attrs, reach, unreach = decode_attributes(attr_field, asn4)
        bad_attrs = None
    except (wire.WireError, ValueError, IndexError) as exc:
        attrs, bad_attrs = None, exc
        reach = unreach = b""
        # RFC 7606 section 2 (treat-as-withdraw): find the MP attributes without the others.
        try:
            for _f, code, value in wire.iter_attributes(attr_field):
                if code == wire.MP_REACH_NLRI:
                    reach = value
                elif code == wire.MP_UNREACH_NLRI:
                    unreach = value
        except wire.WireError:
            _reject("malformed_updates", f"UPDATE from {peer}: attribute field: {exc}")
            return []
    withdrawn: list[RouteKey] = []
    announced: list[Path] = []
    if unreach and _evpn_family(unreach):
        # an empty MP_UNREACH alone (3-byte or extended 4-byte header) is End-of-RIB
        if len(unreach) == 3 and not reach and len(attr_field) in (6, 7):
            return [EndOfRib(peer)]  # RFC 4724 section 2
        _keys(unreach[3:], peer, withdrawn)
    if reach and _evpn_family(reach):
        if bad_attrs is not None:
            _reject("malformed_attributes", f"treat-as-withdraw ({bad_attrs}) from {peer}")
        try:
            nh_len = reach[3]
            nh_bytes = reach[4 : 4 + nh_len]
            if nh_len == 32:  # global + link-local (RFC 2545 3): the global one is the VTEP
                nh_bytes = nh_bytes[:16]
            nlri = reach[5 + nh_len :]  # one reserved byte after the next hop (RFC 4760 3)
            nh = _ip(nh_bytes) if attrs is not None else ""
        except (wire.WireError, IndexError) as exc:
            _reject("malformed_nlri", f"bad next hop from {peer}: {exc}")
            nlri, nh = b"", ""
        if attrs is None:
            _keys(nlri, peer, withdrawn)
        else:
            try:
                _announced(nlri, peer, nh, attrs, announced)
            except wire.WireError as exc:
                _reject("malformed_nlri", f"NLRI field from {peer}: {exc}")
    if not announced and not withdrawn:
        return []
    return [RouteUpdate(peer, announced, withdrawn)]


def decode_line(line: str) -> list[Event]:
    """`evpnd-rx PEER ASN4 HEX` -> events; anything malformed is counted and dropped."""
    parts = line.split(" ", 3)
    if len(parts) != 4 or parts[0] != "evpnd-rx":
        _reject("malformed_updates", f"not an evpnd-rx line: {line[:80]!r}")
        return []
    try:
        body = bytes.fromhex(parts[3].strip())
    except ValueError:
        _reject("malformed_updates", f"bad hex in evpnd-rx line: {line[:80]!r}")
        return []
    return decode_update(parts[1], body, parts[2] == "1")
