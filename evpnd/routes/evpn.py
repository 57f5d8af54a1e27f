"""EVPN routes as immutable, hashable values.

A route is a key (what BGP best-path selection compares paths for) plus a Path (one
advertisement of that key by one peer). Keys follow RFC 7432 section 7: a type-2 route is
(RD, ethernet tag, MAC, IP), never its label or ESI, because peers withdraw with label 0.
Keys and paths are NamedTuples: hashing and creation are cheap at 100k routes.
Text forms are canonical (MAC lower-case, IPs as Python prints them) so text is the key.
"""

from __future__ import annotations

from typing import NamedTuple

from evpnd.routes.esi import ZERO_ESI

LOCAL_PEER = "local"  # the peer name of routes evpnd originates itself


# Each key is a NamedTuple of its fields, subclassed to carry its route type as a class
# constant (a NamedTuple body may hold fields only; type checkers reject anything else).


class _MacIpFields(NamedTuple):
    rd: str
    etag: int
    mac: str
    ip: str | None


class MacIpKey(_MacIpFields):
    """Type 2, MAC/IP advertisement (RFC 7432 section 7.2)."""

    __slots__ = ()
    route_type = 2


class _ImetFields(NamedTuple):
    rd: str
    etag: int
    origin: str  # originating router's IP, the VTEP


class ImetKey(_ImetFields):
    """Type 3, inclusive multicast ethernet tag (RFC 7432 section 7.3)."""

    __slots__ = ()
    route_type = 3


class _PrefixFields(NamedTuple):
    rd: str
    etag: int
    prefix: str  # 'net/len' text


class PrefixKey(_PrefixFields):
    """Type 5, IP prefix (RFC 9136 section 3.1). The prefix is 'net/len' text."""

    __slots__ = ()
    route_type = 5


# Room for type 1 (Ethernet auto-discovery) and type 4 (Ethernet segment): add a key class.
RouteKey = MacIpKey | ImetKey | PrefixKey


class _PmsiFields(NamedTuple):
    tunnel_type: int
    vni: int  # raw 24-bit label (RFC 8365 section 5.1.3)
    endpoint: str


class Pmsi(_PmsiFields):
    """PMSI tunnel attribute (RFC 6514 section 5); evpnd uses ingress replication (type 6)."""

    __slots__ = ()
    INGRESS_REPLICATION = 6


class Attributes(NamedTuple):
    """Path attributes shared by every NLRI of one UPDATE."""

    route_targets: tuple[str, ...] = ()
    encap: int | None = None  # tunnel type of the encapsulation community (8 = VXLAN)
    mobility_seq: int = 0
    sticky: bool = False
    has_mobility: bool = False
    router_mac: str | None = None
    default_gw: bool = False
    as_path: tuple[int, ...] = ()
    origin: str = "igp"
    local_pref: int | None = None
    med: int | None = None
    originator_id: str | None = None
    cluster_list: tuple[str, ...] = ()
    pmsi: Pmsi | None = None
    other_communities: tuple[int, ...] = ()  # kept and shown, not interpreted


NO_ATTRIBUTES = Attributes()


class Path(NamedTuple):
    """One advertisement of a route by one peer (or by evpnd itself: peer LOCAL_PEER)."""

    key: RouteKey
    peer: str
    next_hop: str
    vni: int = 0  # label 1, the raw 24-bit VNI (RFC 8365): L2VNI for type 2, L3VNI for type 5
    l3vni: int = 0  # label 2 of a type-2 route (symmetric IRB), 0 when absent
    esi: str = ZERO_ESI
    gateway: str | None = None  # type-5 gateway IP
    attrs: Attributes = NO_ATTRIBUTES

    @property
    def seq(self) -> int:
        return self.attrs.mobility_seq

    @property
    def sticky(self) -> bool:
        return self.attrs.sticky

    @property
    def is_local(self) -> bool:
        return self.peer == LOCAL_PEER


def route_type(key: RouteKey) -> int:
    return key.route_type


def describe(key: RouteKey) -> str:
    """FRR-like one-line form: [2]:[0]:[48]:[mac]:[32]:[ip] etc. (without the RD)."""
    if isinstance(key, MacIpKey):
        if key.ip is None:
            return f"[2]:[{key.etag}]:[48]:[{key.mac}]"
        plen = 128 if ":" in key.ip else 32
        return f"[2]:[{key.etag}]:[48]:[{key.mac}]:[{plen}]:[{key.ip}]"
    if isinstance(key, ImetKey):
        bits = 128 if ":" in key.origin else 32
        return f"[3]:[{key.etag}]:[{bits}]:[{key.origin}]"
    net, _, length = key.prefix.partition("/")
    return f"[5]:[{key.etag}]:[{length}]:[{net}]"
