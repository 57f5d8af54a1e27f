"""ExaBGP 5 JSON API lines -> evpnd events, and evpnd Paths -> ExaBGP EVPN commands.

Pure and fast: this is the receive hot path (no exabgp, no asyncio, no ipaddress per NLRI).

Receiving (`decode_line`)
-------------------------
One line from ExaBGP's API pipe gives a list of events:

- ``done`` / ``error``                  -> CommandReply(ok). Not FIFO: never match by position.
- ``type: update`` with ``announce`` / ``withdraw`` of ``l2vpn evpn``
                                        -> one RouteUpdate(peer, announced, withdrawn); the
  attributes are decoded once per line into one shared (interned) Attributes.
- ``type: update`` with ``message.eor`` for l2vpn/evpn -> EndOfRib(peer)
- ``type: state`` (connected, up, down + reason)      -> PeerState
- ``type: open`` received from a peer                 -> PeerOpen (its graceful restart)
- ``type: notification`` from a peer, or ExaBGP's own ``"notification": "shutdown"``
                                        -> Notification (peer None for ExaBGP's own)
- anything else ExaBGP may print (a sent open, keepalive, negotiated, other families)
  -> [] silently.

Decoding rules (see tests/fixtures/exabgp/*.jsonl for the real lines):
- the peer is ``neighbor.address.peer``; the next hop is the key of the announce dict;
- ``label`` is ``[[label>>4, raw24], ...]``: the VNI is the *second* number (RFC 8365 section
  5.1.3); a second pair is label 2 (the L3VNI of a symmetric-IRB type-2; ExaBGP 5.0.15 omits it
  from the JSON of type 2, so it is read from the NLRI's ``raw`` hex); FRR withdraws with
  ``[[0]]`` (raw 0 prints as one number), so a one-number pair is VNI 0 and keys never use it;
- ``esi`` "-" is the zero ESI; MACs are lower-cased; a type-5 ``ip``/``iplen`` becomes the
  canonical prefix "net/len" and a zero ``gateway`` (0.0.0.0, ::) becomes None;
- extended communities are decoded from their integer ``value`` (router MAC 0x0603 and default
  gateway 0x030d arrive with an empty string); unknown ones are kept in other_communities;
- the PMSI string ``pmsi:<tunnel name>:<flags>:<label>(<raw VNI>):<tunnel>`` becomes Pmsi; for
  a type-3 route Path.vni is the PMSI's VNI;
- as-path segments (sequence, set, confed) are flattened into one tuple of ASNs.

Bad input never raises out of `decode_line`. It is counted in the module-level `counters`
(read them with `stats()`; the speaker exports them and logs `last_reject`), and:
- a line that is not JSON, not an object, or not of the expected shape: dropped, counted as
  ``malformed_lines``;
- one bad NLRI: skipped and counted as ``malformed_nlri``; the good NLRIs of the line are kept;
- an NLRI of a route type evpnd does not handle (1, 4, unparsed): counted ``unsupported_nlri``;
- attributes that cannot be decoded: the line's announced NLRIs are treated as withdrawn
  (RFC 7606 section 2, "treat-as-withdraw"), counted as ``malformed_attributes``.

Sending (`encode_announce`, `encode_withdraw`)
----------------------------------------------
The ``announce evpn`` / ``withdraw evpn`` commands registered in ExaBGP by evpnd's extension
(evpnd/bgp/ is the only package that speaks to ExaBGP). Grammar, tokens separated by one space,
optional parts in [ ], always in this order:

  announce evpn mac-ip rd RD [etag N] mac MAC [ip IP] label VNI [label2 L3VNI] [esi ESI]
           next-hop NH ATTRIBUTES
  announce evpn multicast rd RD [etag N] ip ORIGIN next-hop NH ATTRIBUTES
  announce evpn prefix rd RD [etag N] prefix NET/LEN [gateway GW] label VNI [esi ESI]
           next-hop NH ATTRIBUTES
  ATTRIBUTES = [encap TUNNEL] [mac-mobility SEQ [sticky]] [router-mac MAC] [default-gateway]
               [pmsi ingress-replication ENDPOINT label VNI]
               [extended-community [ target:ADMIN:NUM ... 0xHEX16 ... ]]
  withdraw evpn <same as announce without ATTRIBUTES>

Labels are the raw 24-bit VNI (RFC 8365), not MPLS ``label<<4|BOS``. ``etag`` is written only
when not 0, ``esi`` only when not zero, ``label2`` only when not 0, ``gateway`` only when the
Path has one. TUNNEL is vxlan, nvgre, mpls, geneve or a number (RFC 9012 tunnel type).
ExaBGP keys its outgoing RIB on the whole packed NLRI (label and ESI included), so a withdraw
repeats exactly the label(s), ESI and gateway of its announce: pass the Path that was announced.
"""

from __future__ import annotations

import ipaddress
import re

try:  # orjson parses ExaBGP's lines about twice as fast as the standard library
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - orjson is a pinned dependency
    from json import loads as _json_loads

from evpnd.core.events import (
    CommandReply,
    EndOfRib,
    Event,
    Notification,
    PeerOpen,
    PeerState,
    RouteUpdate,
)
from evpnd.routes.communities import (
    RT_AS2,
    RT_AS4,
    RT_IPV4,
    TUNNEL_VXLAN,
    interpret,
    tunnel_name,
)
from evpnd.routes.esi import ZERO_ESI, normalize_esi
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey, RouteKey
from evpnd.routes.rd import normalize_rd

FAMILY = "l2vpn evpn"

# ----------------------------------------------------------------------------- counters

counters: dict[str, int] = {
    "lines": 0,
    "malformed_lines": 0,
    "malformed_nlri": 0,
    "malformed_attributes": 0,
    "unsupported_nlri": 0,
}
last_reject = ""  # the reason for the most recent rejection, for the speaker's log


def stats() -> dict[str, int]:
    """A copy of the counters (the speaker puts them in status())."""
    return dict(counters)


def reset_stats() -> None:
    global last_reject
    for name in counters:
        counters[name] = 0
    last_reject = ""


def _reject(counter: str, reason: str) -> None:
    global last_reject
    counters[counter] += 1
    last_reject = reason[:200]


class MalformedError(ValueError):
    """A value in ExaBGP's JSON that does not have the expected type or range."""


# ----------------------------------------------------------------------------- caches
# Few distinct RDs, ESIs and attribute sets exist in a fabric, so memoising them keeps the hot
# path to dict lookups. Each cache is cleared when it grows past a bound (hostile peers).

_CACHE_MAX = 65536
_rd_cache: dict[str, str] = {}
_esi_cache: dict[str, str] = {"-": ZERO_ESI}
_attr_cache: dict[Attributes, Attributes] = {}
_prefix_cache: dict[tuple[str, int], str] = {}

_MAC_OK = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}").fullmatch  # after .lower()
# A cheap shape check; ExaBGP prints addresses with inet_ntop, so they are canonical already.
_IP_OK = re.compile(r"[0-9a-fA-F:.]{2,45}").fullmatch
_ZERO_GATEWAYS = frozenset({"0.0.0.0", "::"})
_U32 = 0xFFFFFFFF
_U24 = 0xFFFFFF
_RT_KINDS = frozenset({RT_AS2, RT_IPV4, RT_AS4})


def _rd(text: object) -> str:
    rd = _rd_cache.get(text)  # type: ignore[arg-type]
    if rd is not None:
        return rd
    if type(text) is not str:
        raise MalformedError(f"rd is not a string: {text!r}")
    rd = normalize_rd(text)  # RDError (a ValueError) for an RD type we cannot read
    if len(_rd_cache) >= _CACHE_MAX:
        _rd_cache.clear()
    _rd_cache[text] = rd
    return rd


def _esi(text: object) -> str:
    esi = _esi_cache.get(text)  # type: ignore[arg-type]
    if esi is not None:
        return esi
    if type(text) is not str:
        raise MalformedError(f"esi is not a string: {text!r}")
    esi = normalize_esi(text)
    if len(_esi_cache) >= _CACHE_MAX:
        _esi_cache.clear()
        _esi_cache["-"] = ZERO_ESI
    _esi_cache[text] = esi
    return esi


def _etag(value: object) -> int:
    if type(value) is not int or not 0 <= value <= _U32:  # type: ignore[operator]
        raise MalformedError(f"ethernet-tag is not a 32-bit number: {value!r}")
    return value  # type: ignore[return-value]


def _ip(value: object, what: str) -> str:
    if type(value) is not str or not _IP_OK(value):
        raise MalformedError(f"{what} is not an IP address: {value!r}")
    return value


def _labels(labels: object) -> tuple[int, int]:
    """[[x, raw1]] or [[x, raw1], [y, raw2]] -> (raw1, raw2); [[0]] (FRR's withdraw) -> 0."""
    if labels is None:
        return 0, 0
    if type(labels) is not list or not labels:
        raise MalformedError(f"label is not a list of pairs: {labels!r}")
    first = labels[0]
    if type(first) is not list:
        raise MalformedError(f"label is not a list of pairs: {labels!r}")
    vni = first[1] if len(first) > 1 else 0
    if type(vni) is not int or not 0 <= vni <= _U24:
        raise MalformedError(f"label is not a 24-bit VNI: {labels!r}")
    if len(labels) == 1:
        return vni, 0
    second = labels[1]
    if type(second) is not list:
        raise MalformedError(f"label is not a list of pairs: {labels!r}")
    l3vni = second[1] if len(second) > 1 else 0
    if type(l3vni) is not int or not 0 <= l3vni <= _U24:
        raise MalformedError(f"label 2 is not a 24-bit VNI: {labels!r}")
    return vni, l3vni


# ExaBGP 5.0.15 reads only the first label of a type-2 NLRI (nlri/evpn/mac.py), so the JSON
# lacks label 2 (the L3VNI of symmetric IRB, RFC 9135 section 5.1). The hex `raw` NLRI has it:
# type, length, then a body of 36/40/52 bytes (no IP/IPv4/IPv6) ending with two 3-byte labels.
# hex of the length byte -> length of the whole raw hex string (type + length + body)
_TWO_LABEL_RAW_LENGTHS = {f"{n:02X}": 4 + 2 * n for n in (36, 40, 52)}


def _label2_from_raw(raw: object) -> int:
    if type(raw) is str and _TWO_LABEL_RAW_LENGTHS.get(raw[2:4]) == len(raw):
        return int(raw[-6:], 16)
    return 0


def _prefix(ip: object, iplen: object) -> str:
    """Type-5 ip/iplen -> canonical 'net/len' (host bits cleared). Type 5 is rare: cache it."""
    if type(ip) is not str or type(iplen) is not int:
        raise MalformedError(f"type-5 prefix is not ip/len: {ip!r}/{iplen!r}")
    cached = _prefix_cache.get((ip, iplen))  # type: ignore[arg-type]
    if cached is not None:
        return cached
    try:
        net = ipaddress.ip_network(f"{ip}/{iplen}", strict=False)
    except ValueError as exc:
        raise MalformedError(f"type-5 prefix is not ip/len: {ip!r}/{iplen!r}") from exc
    text = str(net)
    if len(_prefix_cache) >= _CACHE_MAX:
        _prefix_cache.clear()
    _prefix_cache[(ip, iplen)] = text  # type: ignore[index]
    return text


# ----------------------------------------------------------------------------- NLRI -> key


def _mac_ip_key(nlri: dict) -> MacIpKey:
    mac = nlri["mac"]
    if type(mac) is not str or not _MAC_OK(mac.lower()):
        raise MalformedError(f"not a MAC address: {mac!r}")
    ip = nlri.get("ip")
    if ip is not None:
        ip = _ip(ip, "ip")
    return MacIpKey(_rd(nlri["rd"]), _etag(nlri["ethernet-tag"]), mac.lower(), ip)


def _imet_key(nlri: dict) -> ImetKey:
    return ImetKey(_rd(nlri["rd"]), _etag(nlri["ethernet-tag"]), _ip(nlri["ip"], "ip"))


def _prefix_key(nlri: dict) -> PrefixKey:
    prefix = _prefix(nlri["ip"], nlri["iplen"])
    return PrefixKey(_rd(nlri["rd"]), _etag(nlri["ethernet-tag"]), prefix)


_KEYS = {2: _mac_ip_key, 3: _imet_key, 5: _prefix_key}


def _key(nlri: object) -> RouteKey | None:
    """The route key of a withdrawn NLRI, or None (counted) if it is bad or unsupported."""
    try:
        make = _KEYS.get(nlri["code"])  # type: ignore[index]
        if make is None or nlri.get("parsed") is False:  # type: ignore[union-attr]
            _reject("unsupported_nlri", f"unsupported EVPN NLRI: {str(nlri)[:120]}")
            return None
        return make(nlri)  # type: ignore[arg-type]
    except (LookupError, TypeError, AttributeError, ValueError) as exc:
        _reject("malformed_nlri", f"bad withdrawn NLRI ({exc!r}): {str(nlri)[:120]}")
        return None


def _path(nlri: object, peer: str, next_hop: str, attrs: Attributes) -> Path | None:
    """The Path of an announced NLRI, or None (counted) if it is bad or unsupported."""
    try:
        code = nlri["code"]  # type: ignore[index]
        if code == 2:
            vni, l3vni = _labels(nlri.get("label"))  # type: ignore[union-attr]
            l3vni = l3vni or _label2_from_raw(nlri.get("raw"))  # type: ignore[union-attr]
            return Path(
                _mac_ip_key(nlri),  # type: ignore[arg-type]
                peer,
                next_hop,
                vni,
                l3vni,
                _esi(nlri.get("esi", "-")),  # type: ignore[union-attr]
                None,
                attrs,
            )
        if code == 3:
            vni = attrs.pmsi.vni if attrs.pmsi is not None else 0
            return Path(_imet_key(nlri), peer, next_hop, vni, 0, ZERO_ESI, None, attrs)  # type: ignore[arg-type]
        if code == 5:
            vni, _ = _labels(nlri.get("label"))  # type: ignore[union-attr]
            gateway = nlri.get("gateway")  # type: ignore[union-attr]
            if gateway is not None:
                gateway = None if gateway in _ZERO_GATEWAYS else _ip(gateway, "gateway")
            return Path(
                _prefix_key(nlri),  # type: ignore[arg-type]
                peer,
                next_hop,
                vni,
                0,
                _esi(nlri.get("esi", "-")),  # type: ignore[union-attr]
                gateway,
                attrs,
            )
        _reject("unsupported_nlri", f"unsupported EVPN NLRI: {str(nlri)[:120]}")
        return None
    except (LookupError, TypeError, AttributeError, ValueError) as exc:
        _reject("malformed_nlri", f"bad announced NLRI ({exc!r}): {str(nlri)[:120]}")
        return None


def _announce(nlris: object, peer: str, next_hop: str, attrs: Attributes, out: list[Path]) -> None:
    """Append the Paths of announced NLRIs to `out`. Type 2 is inlined: it is most routes."""
    new = tuple.__new__  # NamedTuple(...) costs twice as much through its keyword-aware __new__
    rd_get = _rd_cache.get
    esi_get = _esi_cache.get
    mac_ok = _MAC_OK
    ip_ok = _IP_OK
    append = out.append
    two_labels = _TWO_LABEL_RAW_LENGTHS
    for nlri in nlris:  # type: ignore[attr-defined]
        try:
            if nlri["code"] != 2:
                path = _path(nlri, peer, next_hop, attrs)
                if path is not None:
                    append(path)
                continue
            mac = nlri["mac"].lower()
            ip = nlri.get("ip")
            etag = nlri["ethernet-tag"]
            rd = rd_get(nlri["rd"]) or _rd(nlri["rd"])
            esi = nlri.get("esi", "-")
            esi = esi_get(esi) or _esi(esi)
            labels = nlri.get("label")
            if (
                not mac_ok(mac)
                or type(etag) is not int
                or not 0 <= etag <= _U32
                or (ip is not None and (type(ip) is not str or not ip_ok(ip)))
            ):
                raise MalformedError("bad MAC, IP or ethernet tag")
            # [[label>>4, raw VNI]] is the common case; _labels() handles the rest
            if type(labels) is list and len(labels) == 1:
                first = labels[0]
                vni = first[1] if type(first) is list and len(first) == 2 else -1
                if type(vni) is not int or not 0 <= vni <= _U24:
                    vni, l3vni = _labels(labels)
                else:
                    l3vni = 0
            else:
                vni, l3vni = _labels(labels)
            if not l3vni:  # label 2 hides in the raw NLRI (see _label2_from_raw)
                raw = nlri.get("raw")
                if type(raw) is str and two_labels.get(raw[2:4]) == len(raw):
                    l3vni = int(raw[-6:], 16)
            key = new(MacIpKey, (rd, etag, mac, ip))
            append(new(Path, (key, peer, next_hop, vni, l3vni, esi, None, attrs)))
        except (LookupError, TypeError, AttributeError, ValueError) as exc:
            _reject("malformed_nlri", f"bad announced NLRI ({exc!r}): {str(nlri)[:120]}")


# ----------------------------------------------------------------------------- attributes

_PMSI_TUNNELS = {  # ExaBGP prints the RFC 6514 section 5 name without spaces, lower-case
    "notunnel": 0,
    "rsvp-tep2mplsp": 1,
    "mldpp2mplsp": 2,
    "pim-ssmtree": 3,
    "pim-smtree": 4,
    "bidir-pimtree": 5,
    "ingressreplication": Pmsi.INGRESS_REPLICATION,
    "mldpmp2mplsp": 7,
}


def _pmsi(text: object) -> Pmsi | None:
    """'pmsi:ingressreplication:0:6(100):192.0.2.1' -> Pmsi(6, 100, '192.0.2.1')."""
    if type(text) is not str:
        raise MalformedError(f"pmsi is not a string: {text!r}")
    parts = text.split(":", 4)
    if len(parts) != 5 or parts[0] != "pmsi":
        raise MalformedError(f"pmsi not pmsi:TYPE:FLAGS:LABEL:TUNNEL: {text!r}")
    tunnel_type = _PMSI_TUNNELS.get(parts[1])
    if tunnel_type is None:
        return None  # a tunnel type evpnd does not use: keep the route, ignore the PMSI
    label = parts[3]
    raw = label[label.index("(") + 1 : -1] if label.endswith(")") else label
    if not raw.isdecimal() or int(raw) > _U24:
        raise MalformedError(f"pmsi label is not a 24-bit VNI: {text!r}")
    endpoint = parts[4]
    if endpoint.startswith("0x"):  # ExaBGP prints tunnels it cannot name in hex: IPv6 IR
        data = bytes.fromhex(endpoint[2:])
        endpoint = str(ipaddress.ip_address(data)) if len(data) in (4, 16) else endpoint
    elif endpoint:
        _ip(endpoint, "pmsi tunnel endpoint")
    return Pmsi(tunnel_type, int(raw), endpoint)


def _as_path(value: object) -> tuple[int, ...]:
    if type(value) is not dict:
        raise MalformedError(f"as-path is not an object: {value!r}")
    out: list[int] = []
    for segment in value.values():  # type: ignore[union-attr]
        asns = segment["value"]
        if type(asns) is not list or not all(type(a) is int for a in asns):
            raise MalformedError(f"as-path segment is not a list of ASNs: {segment!r}")
        out.extend(asns)
    return tuple(out)


def _optional_int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= _U32:  # type: ignore[operator]
        raise MalformedError(f"{what} is not a 32-bit number: {value!r}")
    return value  # type: ignore[return-value]


def decode_attributes(attribute: object) -> Attributes:
    """ExaBGP's ``attribute`` object -> Attributes (interned: equal sets share one object)."""
    if attribute is None:
        attribute = {}
    if type(attribute) is not dict:
        raise MalformedError(f"attribute is not an object: {attribute!r}")
    get = attribute.get  # type: ignore[union-attr]
    values = []
    for community in get("extended-community") or ():
        value = community["value"]
        if type(value) is not int or not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            raise MalformedError(f"extended community value is not 8 bytes: {community!r}")
        values.append(value)
    ec = interpret(values)
    origin = get("origin", "igp")
    if type(origin) is not str:
        raise MalformedError(f"origin is not a string: {origin!r}")
    as_path = get("as-path")
    originator = get("originator-id")
    if originator is not None:
        originator = _ip(originator, "originator-id")
    clusters = get("cluster-list") or ()
    if type(clusters) is not list and clusters != ():
        raise MalformedError(f"cluster-list is not a list: {clusters!r}")
    pmsi = get("pmsi")
    attrs = Attributes(
        route_targets=ec.route_targets,
        encap=ec.encap,
        mobility_seq=ec.mobility_seq,
        sticky=ec.sticky,
        has_mobility=ec.has_mobility,
        router_mac=ec.router_mac,
        default_gw=ec.default_gw,
        as_path=() if as_path is None else _as_path(as_path),
        origin=origin,
        local_pref=_optional_int(get("local-preference"), "local-preference"),
        med=_optional_int(get("med"), "med"),
        originator_id=originator,
        cluster_list=tuple(_ip(c, "cluster-list entry") for c in clusters),
        pmsi=None if pmsi is None else _pmsi(pmsi),
        other_communities=ec.others,
    )
    shared = _attr_cache.get(attrs)
    if shared is not None:
        return shared
    if len(_attr_cache) >= _CACHE_MAX:
        _attr_cache.clear()
    _attr_cache[attrs] = attrs
    return attrs


# ----------------------------------------------------------------------------- messages


def _peer(neighbor: dict) -> str:
    peer = neighbor["address"]["peer"]
    if type(peer) is not str or not peer:
        raise MalformedError(f"neighbor address is not a string: {peer!r}")
    return peer


def _update(msg: dict) -> list[Event]:
    neighbor = msg["neighbor"]
    peer = _peer(neighbor)
    if neighbor.get("direction", "receive") != "receive":
        return []  # our own UPDATEs echoed back if `send` were configured: never routes
    message = neighbor["message"]
    eor = message.get("eor")
    if eor is not None:
        if eor.get("afi") == "l2vpn" and eor.get("safi") == "evpn":
            return [EndOfRib(peer)]
        return []
    update = message["update"]
    announce = update.get("announce")
    withdraw = update.get("withdraw")
    announced: list[Path] = []
    withdrawn: list[RouteKey] = []
    if withdraw:
        for nlri in withdraw.get(FAMILY) or ():
            key = _key(nlri)
            if key is not None:
                withdrawn.append(key)
    if announce:
        by_next_hop = announce.get(FAMILY)
        if by_next_hop:
            try:
                attrs = decode_attributes(update.get("attribute"))
            except (LookupError, TypeError, AttributeError, ValueError) as exc:
                # RFC 7606 section 2: a malformed attribute withdraws the UPDATE's routes.
                _reject("malformed_attributes", f"treat-as-withdraw ({exc!r}) from {peer}")
                attrs = None
            for next_hop, nlris in by_next_hop.items():
                if attrs is None:
                    withdrawn.extend(k for k in map(_key, nlris) if k is not None)
                    continue
                if not _IP_OK(next_hop):
                    _reject("malformed_nlri", f"bad next hop {next_hop!r} from {peer}")
                    continue
                _announce(nlris, peer, next_hop, attrs, announced)
    if not announced and not withdrawn:
        return []
    return [RouteUpdate(peer, announced, withdrawn)]


def _state(msg: dict) -> list[Event]:
    neighbor = msg["neighbor"]
    state = neighbor["state"]
    reason = neighbor.get("reason") or ""
    if type(state) is not str or type(reason) is not str:
        raise MalformedError(f"state/reason are not strings: {state!r} {reason!r}")
    local = neighbor["address"].get("local") or ""
    peer_as = (neighbor.get("asn") or {}).get("peer") or 0
    if type(local) is not str or type(peer_as) is not int:
        raise MalformedError("state line with a bad local address or peer ASN")
    return [PeerState(_peer(neighbor), state, reason, local, peer_as)]


def _notification(msg: dict) -> list[Event]:
    neighbor = msg.get("neighbor")
    if neighbor is None:  # ExaBGP's own: {"type": "notification", "notification": "shutdown"}
        return [Notification(None, message=str(msg["notification"]))]
    note = neighbor["notification"]
    code, subcode = note.get("code", 0), note.get("subcode", 0)
    if type(code) is not int or type(subcode) is not int:
        raise MalformedError(f"notification code is not a number: {note!r}")
    text = note.get("message") or ""
    data = note.get("data") or ""
    if not text and data not in ("", "0x"):
        text = data
    if neighbor.get("direction") == "send":
        text = f"sent: {text}" if text else "sent"
    return [Notification(_peer(neighbor), code, subcode, str(text))]


GRACEFUL_RESTART = "64"  # capability code (RFC 4724 section 3), ExaBGP's key in the JSON


def _open(msg: dict) -> list[Event]:
    """A received OPEN -> PeerOpen with the peer's graceful-restart capability.

    ExaBGP 5.0.15 (capability/graceful.py json()) prints the per-family Forwarding State bit
    (0x80) as ``"restart"`` and the Restart State bit (R) as ``"restart-flags": ["forwarding"]``:
    the per-family list is what says "forwarding state preserved".
    """
    neighbor = msg["neighbor"]
    if neighbor.get("direction", "receive") != "receive":
        return []
    peer = _peer(neighbor)
    gr = neighbor["open"]["capabilities"].get(GRACEFUL_RESTART)
    if gr is None:
        return [PeerOpen(peer)]
    restart_time = gr["time"]
    flags = gr["address-family-flags"]
    if type(restart_time) is not int or not 0 <= restart_time <= 0xFFF or type(flags) is not dict:
        raise MalformedError(f"graceful-restart capability with a bad shape: {gr!r}")
    families: dict[str, bool] = {}
    for family, bits in flags.items():
        if type(family) is not str or type(bits) is not list:
            raise MalformedError(f"graceful-restart family with a bad shape: {family!r}")
        families[family.replace("/", " ")] = "restart" in bits
    return [PeerOpen(peer, restart_time, families)]


_DECODERS = {
    "update": _update,
    "state": _state,
    "notification": _notification,
    "open": _open,
}


def decode_line(line: str | bytes) -> list[Event]:
    """One line of ExaBGP's API output (str, or bytes as read from the pipe) -> events.

    Never raises; bad input is counted (see `counters`).
    """
    counters["lines"] += 1
    text = line.strip()
    if not text:
        return []
    start = text[:1]
    if start != "{" and start != b"{":
        if text == "done" or text == b"done":
            return [CommandReply(True)]
        if text == "error" or text == b"error":
            return [CommandReply(False)]
        _reject("malformed_lines", f"not JSON: {text[:120]!r}")
        return []
    try:
        msg = _json_loads(text)
        decoder = _DECODERS.get(msg.get("type"))
        if decoder is None:
            return []  # keepalive, negotiated, fsm, signal, refresh: not needed
        return decoder(msg)
    except (LookupError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        _reject("malformed_lines", f"bad line ({exc!r}): {text[:120]!r}")
        return []


# ----------------------------------------------------------------------------- commands


def _nlri_text(path: Path) -> str:
    key = path.key
    etag = f" etag {key.etag}" if key.etag else ""
    if isinstance(key, MacIpKey):
        out = f"mac-ip rd {key.rd}{etag} mac {key.mac}"
        if key.ip is not None:
            out += f" ip {key.ip}"
        out += f" label {path.vni}"
        if path.l3vni:
            out += f" label2 {path.l3vni}"
    elif isinstance(key, ImetKey):
        return f"multicast rd {key.rd}{etag} ip {key.origin} next-hop {path.next_hop}"
    elif isinstance(key, PrefixKey):
        out = f"prefix rd {key.rd}{etag} prefix {key.prefix}"
        if path.gateway is not None:
            out += f" gateway {path.gateway}"
        out += f" label {path.vni}"
    else:
        raise ValueError(f"no command for route key {key!r}")
    if path.esi != ZERO_ESI:
        out += f" esi {path.esi}"
    return f"{out} next-hop {path.next_hop}"


def _attributes_text(attrs: Attributes) -> str:
    out = ""
    if attrs.encap is not None:
        out += f" encap {tunnel_name(attrs.encap)}"
    if attrs.has_mobility or attrs.sticky:
        out += f" mac-mobility {attrs.mobility_seq}"
        if attrs.sticky:
            out += " sticky"
    if attrs.router_mac is not None:
        out += f" router-mac {attrs.router_mac}"
    if attrs.default_gw:
        out += " default-gateway"
    pmsi = attrs.pmsi
    if pmsi is not None:
        if pmsi.tunnel_type != Pmsi.INGRESS_REPLICATION:
            raise ValueError(f"only ingress-replication PMSI can be announced: {pmsi!r}")
        out += f" pmsi ingress-replication {pmsi.endpoint} label {pmsi.vni}"
    communities = [f"target:{rt}" for rt in attrs.route_targets]
    communities += [f"0x{value:016x}" for value in attrs.other_communities]
    if communities:
        out += f" extended-community [ {' '.join(communities)} ]"
    return out


def encode_announce(path: Path) -> str:
    """The `announce evpn` command for a local path (grammar in the module docstring)."""
    return f"announce evpn {_nlri_text(path)}{_attributes_text(path.attrs)}"


def encode_withdraw(path: Path) -> str:
    """The `withdraw evpn` command; `path` must be the Path that was announced."""
    return f"withdraw evpn {_nlri_text(path)}"


__all__ = [
    "FAMILY",
    "TUNNEL_VXLAN",
    "MalformedError",
    "counters",
    "decode_attributes",
    "decode_line",
    "encode_announce",
    "encode_withdraw",
    "reset_stats",
    "stats",
]
