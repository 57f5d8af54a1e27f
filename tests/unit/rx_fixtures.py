"""Captured ExaBGP lines as evpnd receives them today: UPDATEs raw, the rest JSON.

The captures in tests/fixtures/exabgp/*.jsonl were recorded with ExaBGP printing every UPDATE
as JSON. evpnd's extension hands UPDATEs over raw (`evpnd-rx PEER ASN4 HEX`) instead, so
`raw_lines` rebuilds the UPDATE bytes of a captured JSON UPDATE: each NLRI from the `raw` hex
ExaBGP printed beside it (or, for NLRIs a test writes by hand, packed by evpnd.bgp.wire), the
path attributes packed by ExaBGP 5.0.15's own attribute classes. tests/unit/test_codec.py
checks the rebuilt bytes decode, through ExaBGP's own decoder and JSON encoder, back to the
captured JSON.
"""

from __future__ import annotations

import struct
from functools import cache

import orjson

from evpnd.bgp import wire
from evpnd.bgp.codec import MessageDecoder
from evpnd.bgp.compact import UpdateDecoder
from evpnd.core.events import Event
from evpnd.routes.esi import pack_esi
from evpnd.routes.rd import pack_rd

FAMILY = "l2vpn evpn"


@cache
def _negotiated(asn4: bool = True):
    from tests.unit.exabgp_helpers import negotiated_and_neighbor

    return negotiated_and_neighbor(asn4=asn4)[0]


def pack_nlri(nlri: dict) -> bytes:
    """One EVPN NLRI (type, length, route data) of ExaBGP's JSON."""
    raw = nlri.get("raw")
    if raw is not None:
        return bytes.fromhex(raw)
    code = nlri["code"]
    rd = pack_rd(nlri["rd"])
    etag = nlri["ethernet-tag"]
    if code == 2:
        esi = bytes(10) if nlri.get("esi", "-") == "-" else pack_esi(nlri["esi"])
        labels = [pair[1] if len(pair) > 1 else 0 for pair in nlri.get("label") or [[0]]]
        ip = wire.ip_bytes(nlri["ip"]) if nlri.get("ip") else b""
        mac = wire.mac_bytes(nlri["mac"].lower())
        data = wire.pack_mac_ip(rd, esi, etag, mac, ip, labels[0], *labels[1:2])
    elif code == 3:
        data = wire.pack_imet(rd, etag, wire.ip_bytes(nlri["ip"]))
    elif code == 5:
        esi = bytes(10) if nlri.get("esi", "-") == "-" else pack_esi(nlri["esi"])
        prefix = wire.ip_bytes(nlri["ip"])
        gateway = wire.ip_bytes(nlri["gateway"]) if nlri.get("gateway") else bytes(len(prefix))
        vni = (nlri.get("label") or [[0, 0]])[0][-1]
        data = wire.pack_prefix(rd, esi, etag, nlri["iplen"], prefix, gateway, vni)
    else:
        raise ValueError(f"no packing for route type {code}")
    return bytes((code, len(data))) + data


def pack_attributes(attribute: dict | None, asn4: bool = True) -> bytes:
    """ExaBGP's JSON `attribute` object -> the packed path attributes, by ExaBGP's classes."""
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.update.attribute.aspath import (
        CONFED_SEQUENCE,
        CONFED_SET,
        SEQUENCE,
        SET,
        ASPath,
    )
    from exabgp.bgp.message.update.attribute.clusterlist import ClusterList
    from exabgp.bgp.message.update.attribute.community.extended import (
        ExtendedCommunities,
        ExtendedCommunity,
    )
    from exabgp.bgp.message.update.attribute.localpref import LocalPreference
    from exabgp.bgp.message.update.attribute.med import MED
    from exabgp.bgp.message.update.attribute.origin import Origin
    from exabgp.bgp.message.update.attribute.originatorid import OriginatorID
    from exabgp.bgp.message.update.attribute.pmsi import PMSIIngressReplication
    from exabgp.protocol.ip import IP

    attribute = attribute or {}
    negotiated = _negotiated(asn4)
    out = []
    if "origin" in attribute:
        names = {"igp": Origin.IGP, "egp": Origin.EGP, "incomplete": Origin.INCOMPLETE}
        out.append(Origin(names[attribute["origin"]]))
    if "as-path" in attribute:
        kinds = {
            "as-sequence": SEQUENCE,
            "as-set": SET,
            "confed-sequence": CONFED_SEQUENCE,
            "confed-set": CONFED_SET,
        }
        segments = [
            kinds[s["element"]]([ASN(a) for a in s["value"]]) for s in attribute["as-path"].values()
        ]
        out.append(ASPath(segments))
    else:
        # ExaBGP's JSON leaves an empty AS_PATH out; the wire always carries one (well-known
        # mandatory, RFC 4271 5.1.2; RFC 7606 3(d) treats its absence as withdraw)
        out.append(ASPath([]))
    if "med" in attribute:
        out.append(MED(attribute["med"]))
    if "local-preference" in attribute:
        out.append(LocalPreference(attribute["local-preference"]))
    if "originator-id" in attribute:
        out.append(OriginatorID(attribute["originator-id"]))
    if "cluster-list" in attribute:
        out.append(ClusterList([IP.create(c) for c in attribute["cluster-list"]]))
    if "extended-community" in attribute:
        communities = ExtendedCommunities()
        for community in attribute["extended-community"]:
            packed = struct.pack("!Q", community["value"])
            communities.communities.append(ExtendedCommunity.unpack(packed))
        out.append(communities)
    packed = b"".join(a.pack(negotiated) for a in out)
    if "pmsi" in attribute:  # pmsi:ingressreplication:FLAGS:LABEL(RAW):ENDPOINT
        _, kind, flags, label, endpoint = attribute["pmsi"].split(":", 4)
        assert kind == "ingressreplication", attribute["pmsi"]
        raw = int(label[label.index("(") + 1 : -1]) if "(" in label else int(label)
        pmsi = PMSIIngressReplication(endpoint, flags=int(flags), raw_label=raw)
        packed += pmsi.pack(negotiated)
    return packed


def update_bodies(update: dict, asn4: bool = True) -> list[bytes]:
    """ExaBGP's JSON `update` object -> the UPDATE bodies (after the 19-byte header) it came
    from: one per next hop (an MP_REACH carries one), the withdraws in the first."""
    family = wire.AFI_L2VPN.to_bytes(2, "big") + bytes((wire.SAFI_EVPN,))
    optional = wire.FLAG_OPTIONAL
    withdraw = b"".join(pack_nlri(n) for n in (update.get("withdraw") or {}).get(FAMILY, ()))
    unreach = wire.pack_attribute(wire.MP_UNREACH_NLRI, optional, family + withdraw)
    groups = list((update.get("announce") or {}).get(FAMILY, {}).items())
    attributes = pack_attributes(update.get("attribute"), asn4) if groups else b""
    bodies = []
    for next_hop, nlris in groups or [(None, [])]:
        attrs = attributes
        if next_hop is not None:
            nh = wire.ip_bytes(next_hop)
            value = family + bytes((len(nh),)) + nh + b"\x00"
            value += b"".join(pack_nlri(n) for n in nlris)
            attrs += wire.pack_attribute(wire.MP_REACH_NLRI, optional, value)
        if withdraw and not bodies:
            attrs = unreach + attrs
        bodies.append(b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs)
    return bodies


def raw_lines(line: str) -> list[str] | None:
    """A captured JSON UPDATE with EVPN routes -> its `evpnd-rx` lines; None for other lines."""
    if not line.startswith("{"):
        return None
    msg = orjson.loads(line)
    if msg.get("type") != "update":
        return None
    neighbor = msg["neighbor"]
    update = neighbor["message"].get("update")
    if not update or not (update.get("announce") or update.get("withdraw")):
        return None
    peer = neighbor["address"]["peer"]
    return [f"evpnd-rx {peer} 1 {body.hex()}" for body in update_bodies(update)]


class Receiver:
    """The Speaker's receive side without the Speaker: raw UPDATEs to its UpdateDecoder, the
    rest to its MessageDecoder (Speaker._on_line dispatches the same way)."""

    def __init__(self) -> None:
        self.updates = UpdateDecoder()
        self.messages = MessageDecoder()

    def decode(self, line: str) -> list[Event]:
        raw = raw_lines(line)
        if raw is None:
            return self.messages.decode_line(line)
        return [event for r in raw for event in self.updates.decode_line(r)]
