"""EVPN route model: keys, paths, RD/RT/ESI and extended communities. Pure: no I/O."""

from evpnd.routes.esi import ZERO_ESI, normalize_esi
from evpnd.routes.evpn import (
    LOCAL_PEER,
    NO_ATTRIBUTES,
    Attributes,
    ImetKey,
    MacIpKey,
    Path,
    Pmsi,
    PrefixKey,
    RouteKey,
    describe,
    route_type,
)
from evpnd.routes.rd import RDError, auto_rd, normalize_rd, pack_rd, unpack_rd

__all__ = [
    "LOCAL_PEER",
    "NO_ATTRIBUTES",
    "ZERO_ESI",
    "Attributes",
    "ImetKey",
    "MacIpKey",
    "Path",
    "Pmsi",
    "PrefixKey",
    "RDError",
    "RouteKey",
    "auto_rd",
    "describe",
    "normalize_esi",
    "normalize_rd",
    "pack_rd",
    "route_type",
    "unpack_rd",
]
