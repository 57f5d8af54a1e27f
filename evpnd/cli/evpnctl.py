"""`evpnctl`: ask a running evpnd what it knows. A pure client of the control socket.

Exit status: 0 done, 1 the daemon answered with an error (e.g. unknown VNI), 2 bad usage,
3 the daemon cannot be reached (not running, permission denied). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from evpnd import capture
from evpnd.api.models import REPLIES, MacEntry, RouteEntry
from evpnd.capture import trace
from evpnd.cli import mtu_probe, tables
from evpnd.cli.version import package_version

DEFAULT_CONFIG = Path("/etc/evpnd/evpnd.yaml")
DEFAULT_SOCKET = Path("/run/evpnd/evpnd.sock")
EXIT_OK, EXIT_DAEMON, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
TIMEOUT = 60.0


class CtlError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def default_socket(config: Path = DEFAULT_CONFIG) -> Path:
    """api.socket from the daemon's config if we may read it, else the packaged default.

    Only that one field is read (no full validation): evpnctl must work with a config that a
    newer evpnd understands and this one does not.
    """
    try:
        import yaml

        data = yaml.safe_load(config.read_text())
        value = data.get("api", {}).get("socket") if isinstance(data, dict) else None
        if isinstance(value, str) and value:
            return Path(value)
    except Exception:  # unreadable, missing or odd: the default is the best guess
        pass
    return DEFAULT_SOCKET


def request(path: Path, cmd: str, args: dict[str, Any], timeout: float = TIMEOUT) -> Any:
    """One request; returns the reply's data or raises CtlError with one clear line."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            try:
                sock.sendall(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon answered at once (a refusal) and closed: read that answer
            chunks = []
            while True:
                try:
                    chunk = sock.recv(1 << 20)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    break
    except FileNotFoundError:
        raise CtlError(f"cannot connect to {path}: no such socket (is evpnd running?)",
                       EXIT_UNREACHABLE) from None  # fmt: skip
    except ConnectionRefusedError:
        raise CtlError(f"cannot connect to {path}: connection refused (is evpnd running?)",
                       EXIT_UNREACHABLE) from None  # fmt: skip
    except PermissionError:
        raise CtlError(f"cannot connect to {path}: permission denied (root or the evpnd group "
                       "may use it)", EXIT_UNREACHABLE) from None  # fmt: skip
    except TimeoutError:
        raise CtlError(f"{path}: no answer within {timeout:.0f}s", EXIT_UNREACHABLE) from None
    except OSError as exc:
        raise CtlError(f"cannot talk to evpnd at {path}: {exc.strerror or exc}",
                       EXIT_UNREACHABLE) from None  # fmt: skip
    raw = b"".join(chunks)
    if not raw:
        raise CtlError(f"{path}: evpnd closed the connection without answering", EXIT_DAEMON)
    try:
        reply = json.loads(raw)
    except json.JSONDecodeError:
        raise CtlError(f"{path}: the answer is not JSON (not evpnd?)", EXIT_DAEMON) from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise CtlError(f"{path}: unexpected answer (not evpnd?)", EXIT_DAEMON)
    if not reply["ok"]:
        message = str(reply.get("error", "unknown error"))
        code = EXIT_UNREACHABLE if message.startswith("permission denied") else EXIT_DAEMON
        raise CtlError(message, code)
    return reply.get("data")


def _vni(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a VNI: {text!r}") from None
    if not 1 <= value <= 16_777_215:
        raise argparse.ArgumentTypeError(f"VNI out of range 1-16777215: {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"evpnctl: {message} (see evpnctl --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="evpnctl", description="Query and control a running evpnd.")
    p.add_argument("-s", "--socket", type=Path, help="control socket (default: api.socket "
                   f"of {DEFAULT_CONFIG}, else {DEFAULT_SOCKET})")  # fmt: skip
    p.add_argument("--version", action="version", version=f"evpnctl {package_version()}")
    top = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    def with_json(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--json", action="store_true", help="print the reply as JSON")
        return sp

    show = top.add_parser("show", help="show state").add_subparsers(
        dest="what", required=True, parser_class=_Parser
    )
    sp = with_json(show.add_parser("routes", help="the EVPN RIB (every path)"))
    sp.add_argument("--type", type=int, choices=[2, 3, 5], help="route type")
    sp.add_argument("--vni", type=_vni)
    sp.add_argument("--rd", help="route distinguisher")
    with_json(show.add_parser("peers", help="BGP sessions and their counters"))
    sp = with_json(show.add_parser("vni", help="VNIs: devices, RD, RTs, MACs, VTEPs"))
    sp.add_argument("vni", nargs="?", type=_vni)
    sp = with_json(show.add_parser("macs", help="local and remote MACs per VNI"))
    sp.add_argument("--vni", type=_vni)
    sp.add_argument("--duplicate", action="store_true", help="only duplicate (frozen) MACs")
    sp = with_json(show.add_parser("kernel", help="kernel state vs wanted state"))
    sp.add_argument("--diff", action="store_true", default=True, help="(the only view)")
    with_json(show.add_parser("status", help="one-line summary"))
    with_json(show.add_parser("policy", help="network policy: groups, rules, counters"))

    clear = top.add_parser("clear", help="clear state").add_subparsers(
        dest="what", required=True, parser_class=_Parser
    )
    sp = with_json(clear.add_parser("dup-addr", help="release duplicate (frozen) MACs"))
    sp.add_argument("--vni", type=_vni)
    sp.add_argument("mac", nargs="?")
    sp = with_json(clear.add_parser("peer", help="let a peer over its max_routes come back"))
    sp.add_argument("address", nargs="?", help="the peer (all held-down peers if absent)")

    sp = with_json(top.add_parser("explain", help="why a MAC or IP is (not) installed"))
    sp.add_argument("target", help="MAC or IP address")
    sp.add_argument("--vni", type=_vni)
    sp.add_argument("--to", help="policy verdict for a flow from the target to this address")
    sp.add_argument("--port", type=int, help="destination port of that flow (proto tcp)")
    sp.add_argument("--proto", choices=["tcp", "udp", "icmp", "icmpv6"])
    sp = with_json(top.add_parser("mtu", help="overlay MTUs: underlay, overhead, derived or set"))
    probe_help = "DF-set probes of the full encapsulated size towards every remote"
    sp.add_argument("--probe", action="store_true", help=probe_help)
    capture.add_arguments(top.add_parser("capture", help="overlay packets on the underlay"))
    trace.add_arguments(top.add_parser("trace", help="expected path, then a probe, checked"))
    return p


def _strip_none(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if v is not None and v is not False}


def plan(ns: argparse.Namespace) -> tuple[str, dict[str, Any], Callable[[BaseModel], str]]:
    """The request a command line makes, and how to print its reply."""
    if ns.verb == "show":
        if ns.what == "routes":
            args = {"type": ns.type, "vni": ns.vni, "rd": ns.rd}
            return "show routes", _strip_none(args), tables.render_routes
        if ns.what == "peers":
            return "show peers", {}, tables.render_peers
        if ns.what == "vni":
            detail = ns.vni is not None
            return "show vni", _strip_none({"vni": ns.vni}), lambda r: tables.render_vnis(r, detail)
        if ns.what == "macs":
            args = {"vni": ns.vni, "duplicate": ns.duplicate}
            return "show macs", _strip_none(args), tables.render_macs
        if ns.what == "kernel":
            return "show kernel diff", {}, tables.render_kernel_diff
        if ns.what == "status":
            return "show status", {}, tables.render_status
        if ns.what == "policy":
            return "show policy", {}, tables.render_policy
    if ns.verb == "clear" and ns.what == "peer":
        return "clear peer", _strip_none({"address": ns.address}), tables.render_clear_peer
    if ns.verb == "clear":
        return "clear dup-addr", _strip_none({"vni": ns.vni, "mac": ns.mac}), tables.render_clear
    if ns.verb == "explain":
        args = _strip_none({"target": ns.target, "vni": ns.vni, "to": ns.to, "port": ns.port,
                            "proto": ns.proto})  # fmt: skip
        return "explain", args, tables.render_explain
    if ns.verb == "mtu":
        return "show mtu", {}, tables.render_mtu
    raise CtlError(f"unknown command {ns.verb}", EXIT_USAGE)


# Replies that may hold 100k entries: pydantic per entry costs seconds, so beyond a threshold
# a sample is validated (a version mismatch shows there) and the rest read as plain rows.
_LARGE: dict[str, tuple[str, type[BaseModel]]] = {
    "show routes": ("routes", RouteEntry),
    "show macs": ("macs", MacEntry),
}
LARGE_REPLY = 2000


def decode(cmd: str, data: Any) -> Any:
    large = _LARGE.get(cmd)
    if large is not None and isinstance(data, dict):
        field, entry = large
        rows = data.get(field)
        if isinstance(rows, list) and len(rows) > LARGE_REPLY:
            for row in rows[:: len(rows) // 50]:
                entry.model_validate(row)
            return SimpleNamespace(**{field: [SimpleNamespace(**row) for row in rows]})
    return REPLIES[cmd].model_validate(data)


def run(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    ns = build_parser().parse_args(argv)
    if ns.verb == "capture":
        return capture.run(ns)
    if ns.verb == "trace":
        return trace.run(ns)
    path = ns.socket or default_socket()
    if ns.verb == "mtu" and ns.probe:
        return _probe(path, ns.json, out)
    try:
        cmd, args, render = plan(ns)
        data = request(path, cmd, args)
        if ns.json:
            # The daemon's JSON as it is (it is the published model; docs/schema/): no
            # re-validation, which would cost seconds at 100k routes.
            out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
            return EXIT_OK
        try:
            reply = decode(cmd, data)
        except ValidationError as exc:
            raise CtlError(f"unexpected reply to {cmd!r} (evpnd and evpnctl versions differ?): "
                           f"{exc.errors()[0]['msg']}", EXIT_DAEMON) from None  # fmt: skip
        out.write(render(reply) + "\n")
    except CtlError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # `evpnctl show routes | head`
        return EXIT_OK
    return EXIT_OK


def _probe(path: Path, as_json: bool, out) -> int:
    """`evpnctl mtu --probe`: the daemon says what to probe; this process sends the probes.
    Black holes are reported, not an error: the command itself worked."""
    try:
        mtu = request(path, "show mtu", {})
        found = mtu_probe.targets_from(mtu, request(path, "show vni", {}))
        results = mtu_probe.probe(found) + mtu_probe.unreachable_from(mtu)
    except CtlError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return exc.code
    except RuntimeError as exc:
        print(f"evpnctl: {exc}", file=sys.stderr)
        return EXIT_DAEMON
    rows = [r.as_dict() for r in results]
    if as_json:
        out.write(orjson.dumps({"probes": rows}, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(tables.render_mtu_probe(rows) + "\n")
    return EXIT_OK


def main() -> int:
    try:
        return run()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
