"""Received UPDATEs handed over raw by evpnd's extension -> events: evpnd's one decoder of EVPN
routes and their attributes. Pure and fast.

ExaBGP's own receive path decodes every NLRI into objects and then prints JSON: at 100k
type-2 routes that is ~5 s of ExaBGP CPU. The extension (evpnd.bgp.exabgp.extension) instead
writes one line per UPDATE,

    evpnd-rx <peer address> <asn4: 0|1> <UPDATE body in hex>

and `UpdateDecoder` decodes the body straight from the RFC layouts (see evpnd.bgp.wire). Only
End-of-RIB, session state, OPEN and NOTIFICATION arrive as ExaBGP's JSON (evpnd.bgp.codec).
Label 2 of a type-2 route (RFC 9135 symmetric IRB L3VNI) is read from the NLRI.

Decoding rules: the VNI is the raw 24-bit label (RFC 8365 5.1.3); a type-3 path carries its
PMSI's VNI; a type-5 prefix is canonical "net/len" (host bits cleared) and an all-zero gateway
is None; AS_PATH segments (sequence, set, confed) are flattened into one tuple; extended
communities are interpreted by evpnd.routes.communities (unknown ones kept as integers); a PMSI
of any tunnel type is kept (the core refuses all but ingress replication); the global address
of a 32-byte IPv6 next hop is the VTEP.

Bad input never raises (RFC 7606, revised error handling): every case is counted in the
decoder's `stats()` and per peer in `peer_stats()` (the Speaker reports both), the latest
reason kept in `last_reject`, and
  - session reset (RFC 7606 sections 4, 5.3, 7.11, 3(g)): UPDATE or attribute lengths that do
    not delimit the message, an attribute field that cannot be parsed before the MP
    attributes are found, MP_REACH_NLRI/MP_UNREACH_NLRI twice, an MP_REACH next-hop length
    other than 4, 16 or 32, or an EVPN NLRI field that is syntactically incorrect (an NLRI
    running past its attribute, a route of a known type whose layout contradicts its
    length): no event from that UPDATE; the decoder queues (peer, UPDATE error subcode,
    reason) for the Speaker (`drain_resets`), which has ExaBGP send the NOTIFICATION;
  - treat-as-withdraw (sections 2, 3(c), 3(d), 7): a malformed ORIGIN, AS_PATH, MED,
    LOCAL_PREF from an iBGP peer, COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST, extended
    communities or PMSI tunnel attribute, attribute flags that contradict the attribute,
    ORIGIN or AS_PATH missing, or an attribute field that breaks off after the MP attributes:
    the UPDATE's announced routes are withdrawn;
  - attribute discard (sections 3(g), 7.5, 7.6, 7.7): a malformed LOCAL_PREF from an eBGP
    peer, ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH or AS4_AGGREGATOR, and every repeat of
    an attribute after its first, are dropped; the routes are kept;
  - a route type evpnd does not handle (1, 4, unknown) or an RD of a type it cannot read is
    skipped by its length (`unsupported_nlri`).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from evpnd.bgp import wire
from evpnd.core.events import EndOfRib, Event, RouteUpdate
from evpnd.routes.communities import interpret
from evpnd.routes.esi import ZERO_ESI
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey, RouteKey
from evpnd.routes.rd import unpack_rd

PREFIX = "evpnd-rx "

_ntop = socket.inet_ntop
_AF4, _AF6 = socket.AF_INET, socket.AF_INET6
_tuple_new = tuple.__new__
_from_bytes = int.from_bytes
# A type-2 route's head: RD, (ESI), Ethernet tag, MAC length, MAC, IP length; one call
# instead of five slices (a withdraw's keys, where nothing else is read)
_T2_HEAD = struct.Struct("!8s10xIB6sB")
_T2_PATH_HEAD = struct.Struct("!8s10sIB6sB")  # the same with the ESI (an announcement's)
_ZERO_ESI_BYTES = bytes(10)

# ----------------------------------------------------------------------------- constructors
# Path and the keys are NamedTuples, whose generated __new__ costs about three times a plain
# function called with keywords (measured: ~900 ns against ~300 ns per Path with keywords), and
# a table load builds one Path and one key per route. These named constructors keep the call
# sites readable field by field at the plain function's cost; the field order they rely on is
# checked once, at import, so a change to the NamedTuples fails loudly instead of mixing fields.

_PATH_FIELDS = ("key", "peer", "next_hop", "vni", "l3vni", "esi", "gateway", "attrs")
_MAC_IP_FIELDS = ("rd", "etag", "mac", "ip")
if Path._fields != _PATH_FIELDS or MacIpKey._fields != _MAC_IP_FIELDS:
    raise ImportError(
        "evpnd.bgp.compact: Path/MacIpKey fields changed; update new_path/new_mac_ip_key"
    )


def new_path(
    *,
    key: RouteKey,
    peer: str,
    next_hop: str,
    vni: int,
    l3vni: int,
    esi: str,
    gateway: str | None,
    attrs: Attributes,
) -> Path:
    """Path(key=..., ...) without the NamedTuple constructor's keyword overhead."""
    return _tuple_new(Path, (key, peer, next_hop, vni, l3vni, esi, gateway, attrs))


def new_mac_ip_key(*, rd: str, etag: int, mac: str, ip: str | None) -> MacIpKey:
    """MacIpKey(rd=..., ...) at a plain function's cost (see new_path)."""
    return _tuple_new(MacIpKey, (rd, etag, mac, ip))


def _ip(data: bytes) -> str:
    n = len(data)
    if n == 4:
        return _ntop(_AF4, data)
    if n == 16:
        return _ntop(_AF6, data)
    raise wire.WireError(f"IP address of {n} bytes")


# (IP length in bits) -> allowed type-2 route data lengths: with one label or with two
_T2_LENGTHS = {0: (33, 36), 32: (37, 40), 128: (49, 52)}
# route data length -> IP length in bits, for the routes `_announced` decodes inline
_T2_INLINED = {33: 0, 36: 0, 37: 32, 40: 32}


def _evpn_family(value: bytes) -> bool:
    return value[0:3] == b"\x00\x19\x46"  # AFI 25 (L2VPN), SAFI 70 (EVPN), RFC 7432 section 20


# ----------------------------------------------------------------------------- attributes


def _as_path(value: bytes, asn4: bool) -> tuple[int, ...]:
    """AS_PATH segments (RFC 4271 4.3, RFC 6793) flattened into one tuple."""
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
    # Every tunnel type is kept: the core's import validation refuses a flood entry for any
    # but ingress replication (evpnd.core.validation), and says why.
    vni = int.from_bytes(value[2:5], "big")
    ident = value[5:]
    endpoint = _ip(ident) if len(ident) in (4, 16) else ""
    return Pmsi(tunnel_type, vni, endpoint)


# RFC 7606 section 3(c): the Optional and Transitive flags each attribute must carry
_O, _T = wire.FLAG_OPTIONAL, wire.FLAG_TRANSITIVE
_FLAGS = {
    wire.ORIGIN: _T,
    wire.AS_PATH: _T,
    wire.MED: _O,
    wire.LOCAL_PREF: _T,
    wire.COMMUNITIES: _O | _T,
    wire.ORIGINATOR_ID: _O,
    wire.CLUSTER_LIST: _O,
    wire.EXTENDED_COMMUNITIES: _O | _T,
    wire.PMSI_TUNNEL: _O | _T,
}
# attribute discard when malformed (RFC 7606 7.6, 7.7; RFC 6793 6 for the AS4 ones)
_DISCARDABLE = {wire.ATOMIC_AGGREGATE, wire.AGGREGATOR, wire.AS4_PATH, wire.AS4_AGGREGATOR}
_MANDATORY = (wire.ORIGIN, wire.AS_PATH)  # well-known mandatory with reachable NLRI (3(d))


class TreatAsWithdraw(wire.WireError):
    """An attribute the routes of the UPDATE cannot be used without (RFC 7606 section 2)."""


class SessionReset(wire.WireError):
    """An error RFC 7606 answers with a session reset; `subcode` is the UPDATE Message Error
    subcode of the NOTIFICATION (RFC 4271 6.3: 1 malformed attribute list, 9 optional
    attribute error, 10 invalid network field)."""

    def __init__(self, subcode: int, reason: str) -> None:
        super().__init__(reason)
        self.subcode = subcode


def _discardable_ok(code: int, flags: int, value: bytes, asn4: bool) -> bool:
    if code == wire.ATOMIC_AGGREGATE:
        return not value and not flags & _O
    if code == wire.AGGREGATOR:
        return len(value) == (8 if asn4 else 6)
    if code == wire.AS4_AGGREGATOR:
        return len(value) == 8
    try:  # AS4_PATH
        _as_path(value, True)
    except wire.WireError:
        return False
    return True


def _build_attributes(
    plain: list[tuple[int, int, bytes]], asn4: bool, ebgp: bool = False
) -> tuple[Attributes, tuple[str, ...], bool]:
    """The plain attributes (flags, code, value) -> (Attributes, what was discarded, whether
    a well-known mandatory attribute (ORIGIN, AS_PATH) is missing: RFC 7606 3(d), which
    decode_update applies only when the UPDATE announces routes).

    Raises TreatAsWithdraw (the UPDATE's routes are withdrawn), naming the attribute.
    """
    ec = interpret(())
    origin = "igp"
    as_path: tuple[int, ...] = ()
    local_pref = med = None
    originator = None
    clusters: tuple[str, ...] = ()
    pmsi = None
    seen: set[int] = set()
    discarded: list[str] = []
    for flags, code, value in plain:
        if code in seen:  # RFC 7606 3(g): all but the first occurrence discarded
            discarded.append(f"repeated attribute {code}")
            continue
        seen.add(code)
        want = _FLAGS.get(code)
        if want is not None and flags & (_O | _T) != want:
            if code == wire.LOCAL_PREF and ebgp:
                discarded.append("LOCAL_PREF flags")
                continue
            raise TreatAsWithdraw(f"attribute {code} with flags {flags:#04x}")
        if code in _DISCARDABLE:
            if not _discardable_ok(code, flags, value, asn4):
                discarded.append(f"malformed attribute {code}")
            continue
        if code == wire.EXTENDED_COMMUNITIES:
            if len(value) % 8:
                raise TreatAsWithdraw("extended communities not a multiple of 8 bytes")
            ec = interpret(
                int.from_bytes(value[pos : pos + 8], "big") for pos in range(0, len(value), 8)
            )
        elif code == wire.ORIGIN:
            if len(value) != 1 or value[0] > 2:
                raise TreatAsWithdraw("bad ORIGIN")
            origin = wire.ORIGIN_NAMES[value[0]]
        elif code == wire.AS_PATH:
            try:
                as_path = _as_path(value, asn4)
            except wire.WireError as exc:
                raise TreatAsWithdraw(str(exc)) from None
        elif code == wire.LOCAL_PREF:
            if len(value) != 4:
                if ebgp:  # 7.5: from an external peer it is discarded anyway
                    discarded.append("malformed LOCAL_PREF")
                    continue
                raise TreatAsWithdraw("bad LOCAL_PREF")
            local_pref = int.from_bytes(value, "big")
        elif code == wire.MED:
            if len(value) != 4:
                raise TreatAsWithdraw("bad MED")
            med = int.from_bytes(value, "big")
        elif code == wire.COMMUNITIES:
            if len(value) % 4:
                raise TreatAsWithdraw("COMMUNITIES not a multiple of 4 bytes")
        elif code == wire.ORIGINATOR_ID:
            if len(value) != 4:
                raise TreatAsWithdraw("bad ORIGINATOR_ID")
            originator = _ip(value)
        elif code == wire.CLUSTER_LIST:
            if len(value) % 4:
                raise TreatAsWithdraw("bad CLUSTER_LIST")
            clusters = tuple(_ip(value[p : p + 4]) for p in range(0, len(value), 4))
        elif code == wire.PMSI_TUNNEL:
            try:
                pmsi = _pmsi(value)
            except wire.WireError as exc:
                raise TreatAsWithdraw(str(exc)) from None
    attrs = Attributes(
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
    missing = any(c not in seen for c in _MANDATORY)
    return attrs, tuple(discarded), missing


# ----------------------------------------------------------------------------- the decoder


class UpdateDecoder:
    """Raw UPDATE bodies -> events, with its counters and caches. The Speaker owns one.

    Few distinct RDs, ESIs and attribute sets exist in a fabric, so memoising them keeps the
    hot path to dict lookups; each cache is cleared when it grows past `cache_max` (a hostile
    peer cannot grow it without bound).
    """

    COUNTERS = (
        "updates",
        "malformed_updates",  # session reset: the UPDATE's own lengths, the attribute field
        "malformed_nlri",  # session reset: an NLRI field, the MP_REACH next hop
        "malformed_attributes",  # treat-as-withdraw
        "attribute_discard",
        "unsupported_nlri",  # skipped by its length
        "decoder_errors",  # a bug: the UPDATE is dropped, never an exception
    )
    # the per-peer name of each counter (RFC 7606's names for the approaches)
    PEER_CASES = {
        "malformed_updates": "session_reset",
        "malformed_nlri": "session_reset",
        "malformed_attributes": "treat_as_withdraw",
        "attribute_discard": "attribute_discard",
        "unsupported_nlri": "unsupported_nlri",
        "decoder_errors": "decoder_errors",
    }

    def __init__(self, cache_max: int = 65536) -> None:
        self.counters: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.last_reject = ""  # the reason for the most recent rejection
        self._cache_max = cache_max
        self._rd_cache: dict[bytes, str] = {}
        self._esi_cache: dict[bytes, str] = {_ZERO_ESI_BYTES: ZERO_ESI}
        self._attr_cache: dict[bytes, tuple[Attributes, tuple[str, ...], bool]] = {}
        self._peer_counts: dict[str, dict[str, int]] = {}
        # (peer, UPDATE Message Error subcode, reason): sessions to reset (drain_resets)
        self._resets: list[tuple[str, int, str]] = []
        self.ebgp_peers: frozenset[str] = frozenset()  # LOCAL_PREF rule of RFC 7606 7.5

    def stats(self) -> dict[str, int]:
        """A copy of the counters (the Speaker puts them in its status)."""
        return dict(self.counters)

    def peer_stats(self, peer: str) -> dict[str, int]:
        """RFC 7606 cases of one peer: session_reset, treat_as_withdraw, attribute_discard,
        unsupported_nlri (and decoder_errors, which is a bug)."""
        return dict(self._peer_counts.get(peer, {}))

    @property
    def resets_pending(self) -> bool:
        return bool(self._resets)

    def drain_resets(self) -> list[tuple[str, int, str]]:
        """The sessions to reset since the last call: (peer, UPDATE error subcode, reason)."""
        out, self._resets = self._resets, []
        return out

    def _reject(self, counter: str, reason: str, peer: str = "", n: int = 1) -> None:
        self.counters[counter] += n
        self.last_reject = reason[:200]
        if peer:
            case = self.PEER_CASES[counter]
            counts = self._peer_counts.get(peer)
            if counts is None:
                if len(self._peer_counts) >= 4096:  # peers are configured: a bound anyway
                    self._peer_counts.clear()
                counts = self._peer_counts[peer] = {}
            counts[case] = counts.get(case, 0) + n

    def _reset(self, peer: str, counter: str, subcode: int, reason: str) -> list[Event]:
        """RFC 7606 session reset: nothing of the UPDATE is used."""
        self._reject(counter, f"session reset ({reason}) from {peer}", peer)
        self._resets.append((peer, subcode, reason[:200]))
        return []

    # ------------------------------------------------------------------ fields

    def _rd(self, data: bytes) -> str:
        rd = self._rd_cache.get(data)
        if rd is None:
            rd = unpack_rd(data)
            if len(self._rd_cache) >= self._cache_max:
                self._rd_cache.clear()
            self._rd_cache[data] = rd
        return rd

    def _esi(self, data: bytes) -> str:
        esi = self._esi_cache.get(data)
        if esi is None:
            esi = ":".join(f"{b:02x}" for b in data)
            if len(self._esi_cache) >= self._cache_max:
                self._esi_cache.clear()
                self._esi_cache[_ZERO_ESI_BYTES] = ZERO_ESI
            self._esi_cache[data] = esi
        return esi

    # ------------------------------------------------------------------ NLRI

    def _key(self, code: int, d: bytes) -> RouteKey | None:
        """The route key of one EVPN NLRI, None for route types evpnd does not handle."""
        if code == 2:
            n = len(d)
            iplen = d[29] if n > 29 else -1
            if d[22:23] != b"\x30" or iplen not in (0, 32, 128) or n not in _T2_LENGTHS[iplen]:
                raise wire.WireError(f"type-2 NLRI of {n} bytes is malformed")
            return new_mac_ip_key(
                rd=self._rd(d[0:8]),
                etag=int.from_bytes(d[18:22], "big"),
                mac=d[23:29].hex(":"),
                ip=_ip(d[30 : 30 + iplen // 8]) if iplen else None,
            )
        if code == 3:
            n = len(d)
            if n not in (17, 29) or d[12] != (n - 13) * 8:
                raise wire.WireError(f"type-3 NLRI of {n} bytes is malformed")
            return ImetKey(self._rd(d[0:8]), int.from_bytes(d[8:12], "big"), _ip(d[13:]))
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
            return PrefixKey(self._rd(d[0:8]), int.from_bytes(d[18:22], "big"), str(net))
        return None

    def _path(
        self, code: int, d: bytes, key: RouteKey, peer: str, nh: str, attrs: Attributes
    ) -> Path:
        """The Path of an announced NLRI whose key `_key` gave (the readable reference of the
        inlined type-2 loop in `_announced`)."""
        vni = l3vni = 0
        esi, gateway = ZERO_ESI, None
        if code == 2:
            end = 30 + d[29] // 8
            vni = int.from_bytes(d[end : end + 3], "big")
            l3vni = int.from_bytes(d[end + 3 : end + 6], "big") if len(d) >= end + 6 else 0
            esi = self._esi(d[8:18])
        elif code == 3:
            vni = attrs.pmsi.vni if attrs.pmsi is not None else 0
        else:
            width = 4 if len(d) == 34 else 16
            gw_bytes = d[23 + width : 23 + 2 * width]
            gateway = None if not any(gw_bytes) else _ip(gw_bytes)
            vni = int.from_bytes(d[23 + 2 * width : 26 + 2 * width], "big")
            esi = self._esi(d[8:18])
        return new_path(
            key=key,
            peer=peer,
            next_hop=nh,
            vni=vni,
            l3vni=l3vni,
            esi=esi,
            gateway=gateway,
            attrs=attrs,
        )

    def _announced(
        self, nlri: bytes, peer: str, nh: str, attrs: Attributes, out: list[Path]
    ) -> None:
        """The announced NLRIs of an MP_REACH -> Paths appended to `out`.

        The hot path of a table load: MAC and MAC+IPv4 type-2 routes are decoded inline (no
        generator, no per-field calls); everything else goes through _key/_path.
        """
        pos, end = 0, len(nlri)
        rd_cache, esi_cache = self._rd_cache, self._esi_cache
        head = _T2_PATH_HEAD.unpack_from
        append = out.append
        while pos < end:
            if pos + 2 > end:
                raise wire.WireError("truncated EVPN NLRI header")
            code, length = nlri[pos], nlri[pos + 1]
            s = pos + 2
            pos = s + length
            if pos > end:
                raise wire.WireError("EVPN NLRI runs past its attribute")
            if code == 2 and length in _T2_INLINED:  # first: the head exists only then
                rdb, esib, tag, mac_bits, mac, ip_bits = head(nlri, s)
            else:
                mac_bits = 0
            if mac_bits == 48 and ip_bits == _T2_INLINED[length]:
                rd = rd_cache.get(rdb)
                if rd is None:
                    try:
                        rd = self._rd(rdb)
                    except ValueError as exc:  # an RD type evpnd cannot read: this NLRI only
                        self._reject("unsupported_nlri", f"NLRI from {peer}: {exc}", peer)
                        continue
                if ip_bits:
                    ip = _ntop(_AF4, nlri[s + 30 : s + 34])
                    lab = s + 34
                else:
                    ip = None
                    lab = s + 30
                # The table-load loop: new_path/new_mac_ip_key inlined (two keyword calls per
                # route cost ~13% of the decoder at 200k NLRIs, measured). Field order is the
                # one checked at import (_PATH_FIELDS, _MAC_IP_FIELDS), named per line.
                append(
                    _tuple_new(
                        Path,
                        (
                            _tuple_new(
                                MacIpKey,
                                (
                                    rd,  # rd
                                    tag,  # etag
                                    mac.hex(":"),  # mac
                                    ip,  # ip
                                ),
                            ),  # key
                            peer,  # peer
                            nh,  # next_hop
                            _from_bytes(nlri[lab : lab + 3], "big"),  # vni
                            _from_bytes(nlri[lab + 3 : lab + 6], "big")
                            if pos - lab == 6
                            else 0,  # l3vni
                            esi_cache.get(esib) or self._esi(esib),  # esi
                            None,  # gateway
                            attrs,  # attrs
                        ),
                    )
                )
                continue
            d = nlri[s:pos]
            try:
                key = self._key(code, d)
            except wire.WireError:
                raise  # syntactically incorrect: session reset (RFC 7606 5.3)
            except ValueError as exc:  # an RD type evpnd cannot read: skipped by its length
                self._reject("unsupported_nlri", f"NLRI from {peer}: {exc}", peer)
                continue
            if key is None:
                self._reject("unsupported_nlri", f"EVPN route type {code} from {peer}", peer)
                continue
            append(self._path(code, d, key, peer, nh, attrs))

    def _keys(self, data: bytes, peer: str, out: list[RouteKey]) -> None:
        """Withdrawn (or treated-as-withdrawn) NLRIs -> keys appended to `out`.

        Raises wire.WireError for a syntactically incorrect NLRI field (session reset). MAC
        and MAC+IPv4 type-2 keys are decoded inline, as in `_announced` (a mass withdraw: 100k
        NLRIs per reflector)."""
        pos, end = 0, len(data)
        rd_cache = self._rd_cache
        head = _T2_HEAD.unpack_from
        append = out.append
        while pos < end:
            if pos + 2 > end:
                raise wire.WireError("truncated EVPN NLRI header")
            code, length = data[pos], data[pos + 1]
            s = pos + 2
            pos = s + length
            if pos > end:
                raise wire.WireError("EVPN NLRI runs past its attribute")
            if code == 2 and length in _T2_INLINED:  # first: the head exists only then
                rdb, tag, mac_bits, mac, ip_bits = head(data, s)
                if mac_bits == 48 and ip_bits == _T2_INLINED[length]:
                    rd = rd_cache.get(rdb)
                    if rd is None:
                        try:
                            rd = self._rd(rdb)
                        except ValueError as exc:  # an RD type evpnd cannot read: this NLRI
                            self._reject("unsupported_nlri", f"NLRI from {peer}: {exc}", peer)
                            continue
                    append(
                        _tuple_new(
                            MacIpKey,
                            (
                                rd,  # rd
                                tag,  # etag
                                mac.hex(":"),  # mac
                                _ntop(_AF4, data[s + 30 : s + 34]) if ip_bits else None,  # ip
                            ),
                        )
                    )
                    continue
            d = data[s:pos]
            try:
                key = self._key(code, d)
            except wire.WireError:
                raise
            except ValueError as exc:  # an RD type evpnd cannot read
                self._reject("unsupported_nlri", f"NLRI from {peer}: {exc}", peer)
                continue
            if key is None:
                self._reject("unsupported_nlri", f"EVPN route type {code} from {peer}", peer)
            else:
                append(key)

    # ------------------------------------------------------------------ attributes

    def decode_attributes(
        self, data: bytes, asn4: bool, ebgp: bool = False
    ) -> tuple[tuple[Attributes, tuple[str, ...], bool], bytes, bytes]:
        """The attribute field -> ((Attributes, discarded, mandatory missing), MP_REACH value,
        MP_UNREACH value). Cached per bytes: equal attribute sets share one Attributes object.

        The cache key leaves the MP attributes out (they differ in every UPDATE), so a table
        load with one attribute set decodes the attributes once. Raises TreatAsWithdraw (a
        malformed attribute), SessionReset (MP_REACH/MP_UNREACH twice) or wire.WireError (the
        field cannot be parsed).
        """
        reach = unreach = None
        plain: list[tuple[int, int, bytes]] = []
        for flags, code, value in wire.iter_attributes(data):
            if code == wire.MP_REACH_NLRI:
                if reach is not None:
                    raise SessionReset(1, "MP_REACH_NLRI twice")  # RFC 7606 3(g)
                reach = value
            elif code == wire.MP_UNREACH_NLRI:
                if unreach is not None:
                    raise SessionReset(1, "MP_UNREACH_NLRI twice")
                unreach = value
            else:
                plain.append((flags, code, value))
        cache_key = (b"\x01" if asn4 else b"\x00") + (b"\x01" if ebgp else b"\x00")
        cache_key += b"".join(bytes((f, c)) + len(v).to_bytes(2, "big") + v for f, c, v in plain)
        cache = self._attr_cache
        built = cache.get(cache_key)
        if built is None:
            built = _build_attributes(plain, asn4, ebgp)  # TreatAsWithdraw: not cached
            if len(cache) >= self._cache_max:
                cache.clear()
            cache[cache_key] = built
        return built, reach or b"", unreach or b""

    @staticmethod
    def _locate_mp(data: bytes) -> tuple[bytes | None, bytes | None]:
        """MP_REACH/MP_UNREACH of an attribute field that breaks off later (RFC 7606 4):
        what is found before the break; MP attributes twice raise SessionReset."""
        reach = unreach = None
        try:
            for _flags, code, value in wire.iter_attributes(data):
                if code == wire.MP_REACH_NLRI:
                    if reach is not None:
                        raise SessionReset(1, "MP_REACH_NLRI twice")
                    reach = value
                elif code == wire.MP_UNREACH_NLRI:
                    if unreach is not None:
                        raise SessionReset(1, "MP_UNREACH_NLRI twice")
                    unreach = value
        except SessionReset:
            raise
        except wire.WireError:
            pass
        return reach, unreach

    # ------------------------------------------------------------------ UPDATE

    def decode_update(self, peer: str, body: bytes, asn4: bool = True) -> list[Event]:
        """One raw UPDATE body (after the 19-byte header) -> events (RouteUpdate / EndOfRib).

        Never raises: RFC 7606's approaches, see the module docstring."""
        self.counters["updates"] += 1
        try:
            return self._decode_update(peer, body, asn4)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the channel
            self._reject("decoder_errors", f"UPDATE from {peer}: {exc!r}", peer)
            return []

    def _decode_update(self, peer: str, body: bytes, asn4: bool) -> list[Event]:
        try:
            _withdrawn, attr_field, _nlri = wire.split_update(body)
        except wire.WireError as exc:  # RFC 7606 4: the lengths do not delimit the UPDATE
            return self._reset(peer, "malformed_updates", 1, str(exc))
        taw = ""  # why the UPDATE's routes are treated as withdrawn
        try:
            (attrs, discarded, missing), reach, unreach = self.decode_attributes(
                attr_field, asn4, peer in self.ebgp_peers
            )
        except SessionReset as exc:
            return self._reset(peer, "malformed_updates", exc.subcode, str(exc))
        except wire.WireError as exc:  # TreatAsWithdraw, or a field that breaks off
            attrs, discarded, missing = None, (), False
            try:
                found_reach, found_unreach = self._locate_mp(attr_field)
            except SessionReset as reset:
                return self._reset(peer, "malformed_updates", reset.subcode, str(reset))
            if not isinstance(exc, TreatAsWithdraw) and found_reach is None:
                # RFC 7606 4/5: the announced NLRIs cannot be located for a withdraw
                return self._reset(peer, "malformed_updates", 1, f"attribute field: {exc}")
            reach, unreach = found_reach or b"", found_unreach or b""
            taw = str(exc)
        withdrawn: list[RouteKey] = []
        announced: list[Path] = []
        try:
            if unreach and _evpn_family(unreach):
                # an empty MP_UNREACH alone (3-byte or extended 4-byte header) is End-of-RIB
                if len(unreach) == 3 and not reach and len(attr_field) in (6, 7):
                    return [EndOfRib(peer)]  # RFC 4724 section 2
                self._keys(unreach[3:], peer, withdrawn)
            if reach and _evpn_family(reach):
                if len(reach) < 5:
                    return self._reset(peer, "malformed_nlri", 9, "MP_REACH_NLRI too short")
                nh_len = reach[3]
                if nh_len not in (4, 16, 32) or len(reach) < 5 + nh_len:
                    # RFC 7606 7.11: the NLRI cannot be located after a bad next-hop length
                    return self._reset(peer, "malformed_nlri", 9, f"next hop of {nh_len} bytes")
                nh_bytes = reach[4 : 4 + nh_len]
                if nh_len == 32:  # global + link-local (RFC 2545 3): the global one is the VTEP
                    nh_bytes = nh_bytes[:16]
                nlri = reach[5 + nh_len :]  # one reserved byte after the next hop (RFC 4760 3)
                if attrs is not None and missing:
                    taw = "ORIGIN or AS_PATH missing"  # RFC 7606 3(d)
                if attrs is None or taw:
                    self._reject("malformed_attributes", f"treat-as-withdraw ({taw}) from {peer}",
                                 peer)  # fmt: skip
                    self._keys(nlri, peer, withdrawn)
                else:
                    self._announced(nlri, peer, _ip(nh_bytes), attrs, announced)
                if discarded and attrs is not None and not taw:
                    self._reject("attribute_discard", f"{', '.join(discarded)} from {peer}",
                                 peer, len(discarded))  # fmt: skip
        except wire.WireError as exc:  # RFC 7606 5.3: a syntactically incorrect NLRI field
            return self._reset(peer, "malformed_nlri", 10, str(exc))
        if not announced and not withdrawn:
            return []
        return [RouteUpdate(peer, announced, withdrawn)]

    def decode_line(self, line: str) -> list[Event]:
        """`evpnd-rx PEER ASN4 HEX` -> events; anything malformed is counted and dropped."""
        parts = line.split(" ", 3)
        if len(parts) != 4 or parts[0] != "evpnd-rx":
            self._reject("malformed_updates", f"not an evpnd-rx line: {line[:80]!r}")
            return []
        try:
            body = bytes.fromhex(parts[3].strip())
        except ValueError:
            self._reject("malformed_updates", f"bad hex in evpnd-rx line: {line[:80]!r}")
            return []
        return self.decode_update(parts[1], body, parts[2] == "1")
