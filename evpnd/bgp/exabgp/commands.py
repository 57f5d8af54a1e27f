"""The `announce evpn` / `withdraw evpn` command grammar -> packed EVPN routes. Pure.

Both directions of the grammar: `encode_announce`/`encode_withdraw` write it for a Path (the
text a person or a test sends; the speaker itself sends packed routes, evpnd.bgp.batch), and
`parse` reads it inside ExaBGP (see tests/fixtures/exabgp/announce-samples.txt):

  announce evpn mac-ip rd RD [etag N] mac MAC [ip IP] label VNI [label2 L3VNI] [esi ESI]
           next-hop NH ATTRIBUTES
  announce evpn multicast rd RD [etag N] ip ORIGIN next-hop NH ATTRIBUTES
  announce evpn prefix rd RD [etag N] prefix NET/LEN [gateway GW] label VNI [esi ESI]
           next-hop NH ATTRIBUTES
  ATTRIBUTES = [origin igp|egp|incomplete] [encap TUNNEL] [mac-mobility SEQ [sticky]]
               [router-mac MAC] [default-gateway] [pmsi ingress-replication ENDPOINT label VNI]
               [extended-community [ target:ADMIN:NUM ... 0xHEX16 ... ]]
  withdraw evpn <the same NLRI part; attributes are ignored>

Labels are the raw 24-bit VNI (RFC 8365), not MPLS ``label<<4|BOS``. The encoder writes
``etag`` only when not 0, ``esi`` only when not zero, ``label2`` only when not 0, ``gateway``
only when the Path has one. TUNNEL is vxlan, nvgre, mpls, geneve or a number (RFC 9012).
ExaBGP keys its outgoing RIB on the whole packed NLRI (label and ESI included), so a withdraw
repeats exactly the label(s), ESI and gateway of its announce: pass the Path that was announced.

The extension runs this inside ExaBGP; it is kept free of exabgp so it is tested directly.
Parsing is split at `next-hop NH`: the attribute text after it is parsed once per distinct
text (`parse_attributes` is memoised), because thousands of routes share a few attribute sets.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import NamedTuple

from evpnd.bgp import wire
from evpnd.routes.communities import (
    TUNNEL_GENEVE,
    TUNNEL_MPLS,
    TUNNEL_NVGRE,
    TUNNEL_VXLAN,
    default_gateway,
    encapsulation,
    mac_mobility,
    pack_route_target,
    router_mac,
    tunnel_name,
)
from evpnd.routes.esi import ZERO_ESI, pack_esi
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from evpnd.routes.rd import pack_rd

_TUNNELS = {"vxlan": TUNNEL_VXLAN, "nvgre": TUNNEL_NVGRE, "mpls": TUNNEL_MPLS}
_TUNNELS["geneve"] = TUNNEL_GENEVE
_ZERO_ESI = bytes(10)


class CommandError(ValueError):
    """A command that does not follow the grammar."""


class AttributeSet(NamedTuple):
    """The path attributes evpnd sets, already packed (ExaBGP adds AS_PATH/LOCAL_PREF itself)."""

    origin: bytes  # packed ORIGIN attribute
    communities: bytes  # packed EXTENDED_COMMUNITIES attribute, b'' when none
    pmsi: bytes  # packed PMSI_TUNNEL attribute, b'' when none


class RouteCommand(NamedTuple):
    announce: bool
    code: int  # EVPN route type: 2, 3 or 5
    data: bytes  # route-type-specific data (RFC 7432 7), without type and length
    key: bytes  # identity bytes, see wire.route_key_bytes
    next_hop: str
    attrs: AttributeSet | None  # None for a withdraw


@lru_cache(maxsize=4096)
def _rd(text: str) -> bytes:
    return pack_rd(text)


@lru_cache(maxsize=4096)
def _esi(text: str) -> bytes:
    return pack_esi(text)


def _int(text: str, what: str, limit: int) -> int:
    if not text.isdigit() or int(text) > limit:
        raise CommandError(f"{what} is not a number up to {limit}: {text!r}")
    return int(text)


def parse(line: str) -> RouteCommand:
    """One command -> RouteCommand; CommandError (a ValueError) when it does not parse."""
    head, sep, rest = line.partition(" next-hop ")
    if not sep:
        raise CommandError("no next-hop")
    nh, _, attr_text = rest.strip().partition(" ")
    tokens = head.split()
    if len(tokens) < 3 or tokens[1] != "evpn" or tokens[0] not in ("announce", "withdraw"):
        raise CommandError(f"not an announce/withdraw evpn command: {line[:80]!r}")
    announce = tokens[0] == "announce"
    kind = tokens[2]
    fields: dict[str, str] = {}
    i, n = 3, len(tokens)
    while i < n:
        name = tokens[i]
        if i + 1 >= n:
            raise CommandError(f"{name} without a value")
        if name in fields:
            raise CommandError(f"{name} given twice")
        fields[name] = tokens[i + 1]
        i += 2
    try:
        wire.ip_bytes(nh)
        code, data = _nlri(kind, fields)
    except (wire.WireError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    attrs = parse_attributes(attr_text.strip()) if announce else None
    return RouteCommand(announce, code, data, wire.route_key_bytes(code, data), nh, attrs)


_ALLOWED = {
    "mac-ip": {"rd", "etag", "mac", "ip", "label", "label2", "esi"},
    "multicast": {"rd", "etag", "ip", "label"},
    "prefix": {"rd", "etag", "prefix", "gateway", "label", "esi"},
}


def _nlri(kind: str, f: dict[str, str]) -> tuple[int, bytes]:
    allowed = _ALLOWED.get(kind)
    if allowed is None:
        raise CommandError(f"unknown EVPN route kind {kind!r}")
    unknown = set(f) - allowed
    if unknown:
        raise CommandError(f"unknown fields for {kind}: {sorted(unknown)}")
    if "rd" not in f:
        raise CommandError("no rd")
    rd = _rd(f["rd"])
    etag = _int(f.get("etag", "0"), "etag", 0xFFFFFFFF)
    if kind == "mac-ip":
        if "mac" not in f or "label" not in f:
            raise CommandError("mac-ip needs mac and label")
        ip = wire.ip_bytes(f["ip"]) if "ip" in f else b""
        esi = _esi(f["esi"]) if "esi" in f else _ZERO_ESI
        vni = _int(f["label"], "label", 0xFFFFFF)
        l3vni = _int(f.get("label2", "0"), "label2", 0xFFFFFF)
        return 2, wire.pack_mac_ip(rd, esi, etag, wire.mac_bytes(f["mac"].lower()), ip, vni, l3vni)
    if kind == "multicast":
        if "ip" not in f:
            raise CommandError("multicast needs ip (the originating router)")
        return 3, wire.pack_imet(rd, etag, wire.ip_bytes(f["ip"]))
    if "prefix" not in f or "label" not in f:
        raise CommandError("prefix needs prefix and label")
    net = ipaddress.ip_network(f["prefix"], strict=False)
    width = 4 if net.version == 4 else 16
    gateway = wire.ip_bytes(f["gateway"]) if "gateway" in f else bytes(width)
    esi = _esi(f["esi"]) if "esi" in f else _ZERO_ESI
    vni = _int(f["label"], "label", 0xFFFFFF)
    data = wire.pack_prefix(rd, esi, etag, net.prefixlen, net.network_address.packed, gateway, vni)
    return 5, data


@lru_cache(maxsize=4096)
def parse_attributes(text: str) -> AttributeSet:
    """The attribute part of an announce (after `next-hop NH`) -> packed attributes."""
    tokens = text.split()
    communities: list[int] = []
    targets: list[int] = []
    origin = "igp"
    pmsi = b""
    i, n = 0, len(tokens)
    try:
        while i < n:
            name = tokens[i]
            if name == "origin":
                origin = tokens[i + 1]
                if origin not in wire.ORIGIN_NAMES:
                    raise CommandError(f"unknown origin {origin!r}")
                i += 2
            elif name == "encap":
                tunnel = tokens[i + 1]
                kind = _TUNNELS.get(tunnel)
                if kind is None:
                    kind = _int(tunnel, "encap", 0xFFFF)
                communities.append(encapsulation(kind))
                i += 2
            elif name == "mac-mobility":
                seq = _int(tokens[i + 1], "mac-mobility", 0xFFFFFFFF)
                sticky = i + 2 < n and tokens[i + 2] == "sticky"
                communities.append(mac_mobility(seq, sticky))
                i += 3 if sticky else 2
            elif name == "router-mac":
                wire.mac_bytes(tokens[i + 1].lower())
                communities.append(router_mac(tokens[i + 1].lower()))
                i += 2
            elif name == "default-gateway":
                communities.append(default_gateway())
                i += 1
            elif name == "pmsi":
                if tokens[i + 1] != "ingress-replication" or tokens[i + 3] != "label":
                    raise CommandError("pmsi must be: ingress-replication ENDPOINT label VNI")
                endpoint = wire.ip_bytes(tokens[i + 2])
                vni = _int(tokens[i + 4], "pmsi label", 0xFFFFFF)
                pmsi = wire.pack_pmsi_ingress_replication(endpoint, vni)
                i += 5
            elif name == "extended-community":
                i += 1
                bracket = i < n and tokens[i] == "["
                if bracket:
                    i += 1
                while i < n and tokens[i] != "]":
                    targets.append(_community(tokens[i]))
                    i += 1
                    if not bracket:
                        break
                if bracket:
                    if i >= n:
                        raise CommandError("extended-community [ without ]")
                    i += 1
            else:
                raise CommandError(f"unknown attribute {name!r}")
    except IndexError:
        raise CommandError(f"attribute without its value in {text[:80]!r}") from None
    except wire.WireError as exc:
        raise CommandError(str(exc)) from None
    values = communities + targets
    return AttributeSet(
        wire.pack_origin(origin),
        wire.pack_extended_communities(values) if values else b"",
        pmsi,
    )


def _community(token: str) -> int:
    if token.startswith("target:"):
        try:
            return pack_route_target(token[7:])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if token.startswith("0x") and len(token) == 18:
        try:
            return int(token, 16)
        except ValueError:
            pass
    raise CommandError(f"unknown extended community {token!r}")


# ----------------------------------------------------------------------------- writing


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
