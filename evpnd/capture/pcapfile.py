"""A classic pcap file writer (the format tcpdump -w writes; Wireshark and tshark read it).

Written here rather than through libpcap's dumper so that it is pure and testable, and keeps
the original length of frames cut by the snap length.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

MAGIC_USEC = 0xA1B2C3D4
VERSION = (2, 4)


class PcapWriter:
    def __init__(self, out: BinaryIO, linktype: int, snaplen: int = 65535) -> None:
        self.out = out
        out.write(struct.pack("<IHHiIII", MAGIC_USEC, *VERSION, 0, 0, snaplen, linktype))

    def write(self, ts: float, data: bytes, length: int | None = None) -> None:
        sec = int(ts)
        usec = int(round((ts - sec) * 1_000_000))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        wire = len(data) if length is None else length
        self.out.write(struct.pack("<IIII", sec, usec, len(data), wire))
        self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def read(data: bytes) -> tuple[int, list[tuple[float, bytes, int]]]:
    """(linktype, [(ts, bytes, original length)]) of a little-endian microsecond pcap: for tests
    and for reading back what `PcapWriter` wrote."""
    magic, _maj, _min, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", data)
    if magic != MAGIC_USEC:
        raise ValueError("not a little-endian microsecond pcap file")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        off += 16
        out.append((sec + usec / 1e6, data[off : off + incl], orig))
        off += incl
    return linktype, out
