"""Route distinguishers and the route-target value formats (RFC 4364 section 4.2).

Both are 8 bytes: a 2-byte type and a 6-byte value. Type 0 is ASN2:NUM32, type 1 is IPv4:NUM16,
type 2 is ASN4:NUM16. Text form is canonical (no leading zeros), so text is used as the key.
"""

from __future__ import annotations

import ipaddress
import struct


class RDError(ValueError):
    """A route distinguisher or route target that cannot be parsed."""


def pack_rd(text: str) -> bytes:
    """'192.0.2.1:100' -> type 1, '65000:100' -> type 0, '4200000000:7' -> type 2."""
    admin, sep, num_text = text.rpartition(":")
    if not sep or not admin or not num_text.isdecimal():
        raise RDError(f"not ADMIN:NUMBER: {text!r}")
    num = int(num_text)
    if "." in admin:
        try:
            ip = ipaddress.IPv4Address(admin)
        except ValueError as exc:
            raise RDError(f"bad IPv4 administrator in {text!r}") from exc
        if num > 0xFFFF:
            raise RDError(f"number above 65535 with an IPv4 administrator: {text!r}")
        return struct.pack("!H4sH", 1, ip.packed, num)
    if not admin.isdecimal():
        raise RDError(f"administrator is neither an ASN nor an IPv4 address: {text!r}")
    asn = int(admin)
    if asn <= 0xFFFF and num <= 0xFFFFFFFF:
        return struct.pack("!HHI", 0, asn, num)
    if asn <= 0xFFFFFFFF and num <= 0xFFFF:
        return struct.pack("!HIH", 2, asn, num)
    raise RDError(f"value out of range: {text!r}")


def unpack_rd(data: bytes) -> str:
    """8 bytes -> canonical text."""
    if len(data) != 8:
        raise RDError(f"route distinguisher must be 8 bytes, got {len(data)}")
    rd_type = struct.unpack_from("!H", data)[0]
    if rd_type == 0:
        _, asn, num = struct.unpack("!HHI", data)
        return f"{asn}:{num}"
    if rd_type == 1:
        _, ip, num = struct.unpack("!H4sH", data)
        return f"{ipaddress.IPv4Address(ip)}:{num}"
    if rd_type == 2:
        _, asn, num = struct.unpack("!HIH", data)
        return f"{asn}:{num}"
    raise RDError(f"unknown route distinguisher type {rd_type}")


def normalize_rd(text: str) -> str:
    """Canonical text of an RD given by a person (validates it)."""
    return unpack_rd(pack_rd(text))


def auto_rd(router_id: str, index: int) -> str:
    """FRR's auto RD: router-id:index (type 1), index being the VNI's local number."""
    return f"{router_id}:{index}"


def stable_rd_indexes(previous: dict[int, int], vnis: list[int]) -> dict[int, int]:
    """The auto-RD index of each VNI in `vnis`, stable across reloads.

    A VNI that had an index keeps it; a new VNI takes the lowest index no configured VNI holds
    (FRR allocates from a bitmap the same way). Removing or inserting a VNI never renumbers the
    others, so their routes are not withdrawn and re-announced under a new RD.
    """
    kept = {vni: previous[vni] for vni in vnis if vni in previous}
    used = set(kept.values())
    out: dict[int, int] = {}
    candidate = 1
    for vni in vnis:
        if vni in kept:
            out[vni] = kept[vni]
            continue
        while candidate in used:
            candidate += 1
        out[vni] = candidate
        used.add(candidate)
    return out
