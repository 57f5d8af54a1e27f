"""The live capture: libpcap (pcapy-ng) with the filter attached to the socket in the kernel.

libpcap on Linux opens an AF_PACKET socket with a TPACKET_V3 ring and attaches the compiled
classic BPF program with SO_ATTACH_FILTER, so non-matching packets are dropped in the kernel
and never copied to user space. Its statistics come from PACKET_STATISTICS: `received` counts
packets that passed the filter, `dropped` those lost for want of ring space. The interface's
own counters, read before and after, say how many packets the filter did not let through.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pcapy

CAP_NET_RAW = 13
SNAPLEN = 65535
BLOCK_TIMEOUT_MS = 50  # how long the kernel may hold a ring block: the display latency


@dataclass
class Stats:
    interface: str
    received: int = 0  # kernel: passed the BPF filter
    dropped: int = 0  # kernel: passed the filter, lost (ring full)
    if_dropped: int = 0  # the driver's drops, when it reports them
    captured: int = 0  # handed to evpnctl
    interface_packets: int = 0  # rx + tx on the interface(s) meanwhile

    @property
    def filtered_out(self) -> int:
        return max(self.interface_packets - self.received, 0)

    def to_dict(self) -> dict:
        return {
            "interface": self.interface,
            "captured": self.captured,
            "kernel_received": self.received,
            "kernel_dropped": self.dropped,
            "interface_dropped": self.if_dropped,
            "interface_packets": self.interface_packets,
            "filtered_out_in_kernel": self.filtered_out,
        }


def has_net_raw() -> bool:
    """CAP_NET_RAW in this process's effective set (what an AF_PACKET socket needs)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def interface_packets(iface: str) -> int:
    """rx + tx packets of an interface ('any': of all), from sysfs of this namespace."""
    base = Path("/sys/class/net")
    names = [p.name for p in base.iterdir()] if iface == "any" else [iface]
    total = 0
    for name in names:
        for what in ("rx_packets", "tx_packets"):
            try:
                total += int((base / name / "statistics" / what).read_text())
            except (OSError, ValueError):
                pass
    return total


class Capture:
    """An open capture handle with the kernel filter attached."""

    def __init__(self, iface: str, expression: str, snaplen: int = SNAPLEN) -> None:
        self.iface = iface
        self.pcap = pcapy.open_live(iface, snaplen, 0, BLOCK_TIMEOUT_MS)
        self.linktype = self.pcap.datalink()
        self.pcap.setfilter(expression)
        # The same program in user space, for the few packets libpcap may still hold from
        # before the filter was attached (they must not be shown); C code, per delivered packet.
        self.check = pcapy.compile(self.linktype, snaplen, expression, 1, 0)
        self.pcap.setnonblock(1)
        # The kernel's counters (read and reset by libpcap, which keeps the sums) count a packet
        # when it is queued; a packet queued before `base` but delivered after it would be
        # captured and not received. So what is queued is dropped (it came before the capture
        # started) and `base` taken again until nothing came in between: from `base` on, what
        # the kernel counts is exactly what run() delivers.
        self.base = self.pcap.stats()
        for _ in range(100):
            if not self.pcap.dispatch(-1, lambda _hdr, _data: None):
                break
            self.base = self.pcap.stats()
        self.base_if = interface_packets(iface)
        self.stats = Stats(iface)

    def run(
        self,
        on_packet: Callable[[float, bytes, int], None],
        count: int | None = None,
        seconds: float | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Stats:
        """Deliver matching packets (ts, bytes, wire length) until count/seconds/stop()."""
        deadline = time.monotonic() + seconds if seconds is not None else None
        fd = self.pcap.getfd()
        done = False
        upto: int | None = None  # the last drain: deliver what the kernel counted, no more

        def handle(hdr, data) -> None:
            nonlocal done
            if done or (upto is not None and self.stats.captured >= upto):
                return
            if not self.check.filter(data):
                return
            sec, usec = hdr.getts()
            self.stats.captured += 1
            on_packet(sec + usec / 1e6, data, hdr.getlen())
            if count is not None and self.stats.captured >= count:
                done = True

        while not done and not stop():
            wait = 0.2
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    break
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                self.pcap.dispatch(-1, handle)
        # The kernel counts a packet as it queues it in the ring; libpcap sees a ring block
        # when it is full or BLOCK_TIMEOUT_MS old. So what was counted up to this look is
        # delivered too (its block is handed over within that time), and what came after it is
        # not: `captured` is then what the kernel says passed the filter. Without this the
        # packets of the last 50 ms were counted and never shown.
        recv, drop, ifdrop = self.pcap.stats()
        if not done:
            upto = recv - self.base[0]
            until = time.monotonic() + 3 * BLOCK_TIMEOUT_MS / 1000
            while self.stats.captured < upto:
                wait = until - time.monotonic()
                if wait <= 0:
                    break  # one the user-space check refused, or lost: not waited for longer
                if select.select([fd], [], [], wait)[0]:
                    self.pcap.dispatch(-1, handle)
        self.stats.received = recv - self.base[0]
        self.stats.dropped = drop - self.base[1]
        self.stats.if_dropped = ifdrop - self.base[2]
        self.stats.interface_packets = interface_packets(self.iface) - self.base_if
        return self.stats

    def close(self) -> None:
        self.pcap.close()
