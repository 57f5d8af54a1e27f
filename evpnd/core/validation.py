"""Import validation of received routes: where a path would send traffic. Pure.

A received path names two addresses the dataplane sends to: its next hop (type 2 and 5: the
VTEP of the MAC or prefix) and, for type 3, its PMSI tunnel endpoint (the head-end replication
target). Each must be a unicast address a VXLAN tunnel can reach:
  - not unspecified, loopback, multicast, reserved or broadcast (0/8, 127/8, 224/4, 240/4,
    255.255.255.255, ::, ::1, ff00::/8) nor IPv6 link-local (fe80::/10): `*_martian`;
  - not our own VTEP, whatever the spelling (non-canonical IPv6 text, IPv4-mapped
    ::ffff:a.b.c.d): `own_vtep`;
  - of our VTEP's address family (a VXLAN device has one `local` address; an IPv6 next hop
    cannot be reached from an IPv4 VTEP, IPv4-mapped included): `*_family`.
Further: a type-3 PMSI must be ingress replication (tunnel type 6, RFC 8365 section 9) to
become a flood entry (`pmsi_type`; no PMSI at all means ingress replication to the next hop, as
FRR reads it); an encapsulation extended community other than VXLAN (tunnel type 8,
RFC 9012) is not installed as VXLAN (`encap`); a type-2 MAC must be unicast and non-zero (`mac`).

The reasons are the journal's counter names without their `rejected_` prefix.
"""

from __future__ import annotations

import ipaddress

TUNNEL_VXLAN = 8  # RFC 9012 / RFC 8365 section 5.1.3: the encapsulation extended community
PMSI_INGRESS_REPLICATION = 6  # RFC 6514 section 5, RFC 8365 section 9

VALIDATION_REASONS = (
    "rejected_nexthop_martian",
    "rejected_nexthop_family",
    "rejected_pmsi_martian",
    "rejected_pmsi_family",
    "rejected_pmsi_type",
    "rejected_encap",
    "rejected_mac",
)

_MARTIAN_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")  # 240/4 has broadcast
)
_MARTIAN_V6 = tuple(
    ipaddress.IPv6Network(n) for n in ("::/128", "::1/128", "ff00::/8", "fe80::/10")
)
# The second hex digit of a MAC's first octet: even = the group (multicast) bit is clear
UNICAST_DIGIT = frozenset("02468aceACE")
ZERO_MAC = "00:00:00:00:00:00"
_CACHE_MAX = 100_000  # a hostile peer cannot grow the cache without bound


def mac_ok(mac: str) -> bool:
    """A MAC in its 17-character text form, unicast and not all-zero."""
    return len(mac) == 17 and mac[1] in UNICAST_DIGIT and mac != ZERO_MAC


def _kind(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """'martian' for an address no tunnel can be sent to, else None."""
    nets = _MARTIAN_V4 if addr.version == 4 else _MARTIAN_V6
    for net in nets:
        if addr in net:
            return "martian"
    return None


class AddressCheck:
    """The verdict on an address text, against our VTEP: None (fine), 'martian', 'family',
    'own_vtep' or 'malformed'. Cached per text: a fabric has few VTEPs."""

    def __init__(self, vtep: str) -> None:
        self.vtep = ipaddress.ip_address(vtep)
        self._cache: dict[str, str | None] = {}
        # The texts found fine: the hot path of a table load tests membership only.
        self.good: set[str] = set()

    def reason(self, text: str) -> str | None:
        cache = self._cache
        if text in cache:
            return cache[text]
        verdict = self._judge(text)
        if len(cache) >= _CACHE_MAX:
            cache.clear()
            self.good.clear()
        cache[text] = verdict
        if verdict is None:
            self.good.add(text)
        return verdict

    def _judge(self, text: str) -> str | None:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return "malformed"
        plain = addr
        if addr.version == 6 and addr.ipv4_mapped is not None:
            plain = addr.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 address a.b.c.d
        if plain == self.vtep:
            return "own_vtep"
        kind = _kind(plain)
        if kind is not None:
            return kind
        if addr.version != self.vtep.version or plain is not addr:
            return "family"  # an IPv4-mapped address is IPv4 whatever our VTEP's family
        return None
