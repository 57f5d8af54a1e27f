"""Ethernet segment identifiers (RFC 7432 section 5): 10 bytes, all-zero for single-homed."""

from __future__ import annotations

ZERO_ESI = "00:00:00:00:00:00:00:00:00:00"


class ESIError(ValueError):
    """An ESI that is not ten colon-separated bytes."""


def normalize_esi(text: str | None) -> str:
    """'-', '', None and all-zero become ZERO_ESI; others lower-case, validated."""
    if not text or text == "-" or text == "0":
        return ZERO_ESI
    parts = text.lower().split(":")
    if len(parts) != 10 or not all(len(p) == 2 for p in parts):
        raise ESIError(f"ESI must be 10 colon-separated bytes: {text!r}")
    try:
        bytes.fromhex("".join(parts))
    except ValueError as exc:
        raise ESIError(f"ESI has non-hex digits: {text!r}") from exc
    return ":".join(parts)


def pack_esi(text: str) -> bytes:
    return bytes.fromhex(normalize_esi(text).replace(":", ""))


def unpack_esi(data: bytes) -> str:
    if len(data) != 10:
        raise ESIError(f"ESI must be 10 bytes, got {len(data)}")
    return ":".join(f"{b:02x}" for b in data)
