"""`evpnctl capture`: overlay packets on the underlay, filtered in the kernel.

- `filter`: the pcap filter expression (compiled to classic BPF by libpcap) for VNI/MAC/IP/VTEP
- `decode`: dpkt decoding of matching packets, one line or one JSON object each
- `pcapfile`: the pcap writer behind `-w`
- `target`: the local VTEP, its interface, and checks of VNI/MAC/IP against evpnd
- `live`: the libpcap handle and the kernel's counters
- `cli`: `add_arguments(parser)` and `run(args) -> int` for evpnctl
"""

from evpnd.capture.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
