"""`evpnctl capture`: print (and optionally save) overlay packets on the underlay.

Exit status: 0 done, 1 evpnd does not know the VNI/MAC/IP (or answered an error), 2 bad usage,
3 cannot capture (missing CAP_NET_RAW, no such interface, daemon unreachable without -i).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from pathlib import Path

import orjson

from evpnd.capture import filter as bpf
from evpnd.capture import target

EXIT_OK, EXIT_DAEMON, EXIT_USAGE, EXIT_CAPTURE = 0, 1, 2, 3


class _Fail(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _vni(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a VNI: {text!r}") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"VNI/key out of range: {value}")
    return value


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vni", type=_vni, help="only this VNI (GRE: this key)")
    p.add_argument("--mac", help="only frames from or to this inner MAC")
    p.add_argument("--ip", help="only packets (and ARP) from or to this inner IP")
    p.add_argument("--vtep", help="only tunnels from or to this remote VTEP")
    p.add_argument("--type", dest="encap", choices=bpf.ENCAPS, default="vxlan",
                   help="encapsulation (default vxlan)")  # fmt: skip
    p.add_argument("-i", "--interface", help="underlay interface (default: the one holding "
                   "the local VTEP address; 'any' for all)")  # fmt: skip
    p.add_argument("-c", "--count", type=_positive(int), help="stop after COUNT packets")
    p.add_argument("--seconds", type=_positive(float), help="stop after S seconds")
    p.add_argument("-w", "--write", type=Path, metavar="FILE.pcap", help="also save to a pcap")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per packet, then a summary object")  # fmt: skip


def _spec(args: argparse.Namespace) -> bpf.Spec:
    try:
        return bpf.Spec(
            encap=args.encap,
            vni=args.vni,
            mac=bpf.parse_mac(args.mac) if args.mac else None,
            ip=bpf.parse_ip(args.ip) if args.ip else None,
            vtep=bpf.parse_ip(args.vtep) if args.vtep else None,
        )
    except bpf.FilterError as exc:
        raise _Fail(str(exc), EXIT_USAGE) from None


def _check_with_daemon(args: argparse.Namespace, sock: Path) -> str | None:
    """Validate VNI/MAC/IP against evpnd; return the local VTEP (None if unknown)."""
    try:
        if args.vni is not None and args.encap != "gre":
            target.check_vni(sock, args.vni)
        if args.mac:
            target.check_address(sock, args.mac, "MAC", args.vni)
        if args.ip:
            target.check_address(sock, args.ip, "IP", args.vni)
    except target.DaemonError as exc:
        if not exc.unreachable:
            raise _Fail(str(exc), EXIT_DAEMON) from None
        if not args.interface:
            raise _Fail(f"{exc} (give -i IFACE to capture without the daemon)",
                        EXIT_CAPTURE) from None  # fmt: skip
        print(f"evpnctl: capture: {exc}; VNI/MAC/IP not checked", file=sys.stderr)
        return None
    return target.local_vtep(sock)


def run(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    try:
        return _run(args, out)
    except _Fail as exc:
        print(f"evpnctl: capture: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        return EXIT_OK


def _run(args: argparse.Namespace, out) -> int:
    # libpcap and dpkt are loaded only for this command, not for every evpnctl call
    from evpnd.capture import live
    from evpnd.capture.decode import decode, format_line
    from evpnd.capture.pcapfile import PcapWriter

    spec = _spec(args)
    if not live.has_net_raw():
        raise _Fail("needs CAP_NET_RAW to open a packet socket (run as root, or grant it: "
                    "setcap cap_net_raw+ep, or AmbientCapabilities=CAP_NET_RAW)",
                    EXIT_CAPTURE)  # fmt: skip
    sock = getattr(args, "socket", None) or target.default_socket()
    vtep = _check_with_daemon(args, Path(sock))
    iface = args.interface
    if not iface:
        if not vtep:
            raise _Fail("cannot find the local VTEP (evpnd has no local type-3 route and the "
                        "config has no vtep): give -i IFACE", EXIT_CAPTURE)  # fmt: skip
        iface = target.interface_of(vtep)
        if iface is None:
            raise _Fail(f"no interface holds the VTEP address {vtep}: give -i IFACE",
                        EXIT_CAPTURE)  # fmt: skip
        if iface == "lo":  # a loopback VTEP leaves through any uplink
            iface = "any"
    if vtep and spec.vtep is None:
        spec = bpf.Spec(**{**spec.__dict__, "family": ipaddress.ip_address(vtep).version})
    try:
        expression = bpf.build(spec)
    except bpf.FilterError as exc:
        raise _Fail(str(exc), EXIT_USAGE) from None
    try:
        cap = live.Capture(iface, expression)
    except Exception as exc:  # pcapy.PcapError: no such device, permission, bad filter
        raise _Fail(f"cannot capture on {iface}: {exc}", EXIT_CAPTURE) from None

    stopping = False

    def stop_signal(_sig, _frame) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, stop_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    writer = None
    fh = None
    try:
        if args.write:
            try:
                fh = open(args.write, "wb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise _Fail(f"cannot write {args.write}: {exc.strerror}", EXIT_USAGE) from None
            writer = PcapWriter(fh, cap.linktype)
        print(f"evpnctl: capturing on {iface}, kernel filter: {expression}", file=sys.stderr,
              flush=True)  # fmt: skip

        def on_packet(ts: float, data: bytes, length: int) -> None:
            if writer is not None:
                writer.write(ts, data, length)
            pkt = decode(ts, data, length, cap.linktype)
            if pkt is None:
                return
            if args.json:
                out.write(orjson.dumps(pkt.to_dict()).decode() + "\n")
            else:
                out.write(format_line(pkt) + "\n")
            out.flush()

        stats = cap.run(on_packet, args.count, args.seconds, lambda: stopping)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        cap.close()
        if fh is not None:
            fh.close()
    summary = {**stats.to_dict(), "filter": expression}
    if args.json:
        out.write(orjson.dumps({"summary": summary}).decode() + "\n")
    else:
        print(f"{stats.captured} packets captured; kernel: {stats.received} passed the filter, "
              f"{stats.dropped} dropped; {iface} carried {stats.interface_packets} packets "
              f"({stats.filtered_out} filtered out in the kernel)", file=sys.stderr)  # fmt: skip
    out.flush()
    return EXIT_OK
