"""What to capture on: the local VTEP and its interface, and checks of VNI/MAC/IP against evpnd.

evpnctl runs with the operator's privileges; it asks the daemon over the control socket (the same
JSON-line protocol as every evpnctl command) and reads interface addresses with iproute2.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path("/etc/evpnd/evpnd.yaml")
DEFAULT_SOCKET = Path("/run/evpnd/evpnd.sock")


class DaemonError(Exception):
    """The daemon answered with an error (`unreachable` False) or could not be reached."""

    def __init__(self, message: str, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _config_field(config: Path, *path: str) -> Any:
    """One field of the daemon's config, without validating the rest (None if unreadable)."""
    try:
        data: Any = yaml.safe_load(config.read_text())
        for key in path:
            data = data.get(key) if isinstance(data, dict) else None
        return data
    except Exception:  # unreadable or odd: the caller has a fallback
        return None


def default_socket(config: Path = DEFAULT_CONFIG) -> Path:
    value = _config_field(config, "api", "socket")
    return Path(value) if isinstance(value, str) and value else DEFAULT_SOCKET


def ask(path: Path, cmd: str, args: dict[str, Any], timeout: float = 10.0) -> Any:
    """One request on the control socket; the reply's data, or DaemonError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
    except OSError as exc:
        raise DaemonError(f"cannot talk to evpnd at {path}: {exc.strerror or exc}", True) from None
    try:
        reply = json.loads(buf)
    except json.JSONDecodeError:
        raise DaemonError(f"{path}: no JSON answer (not evpnd?)", True) from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        message = reply.get("error", "error") if isinstance(reply, dict) else "bad answer"
        raise DaemonError(str(message), False)
    return reply.get("data")


def local_vtep(path: Path, config: Path = DEFAULT_CONFIG) -> str | None:
    """The local VTEP: the origin of evpnd's own type-3 routes, else `vtep` in the config."""
    try:
        data = ask(path, "show routes", {"type": 3})
        for route in data.get("routes", []):
            if route.get("peer") == "local":
                return route.get("origin") or route.get("next_hop")
    except DaemonError:
        pass
    value = _config_field(config, "vtep")
    return str(value) if value else None


def interface_of(address: str) -> str | None:
    """The interface that holds `address` (None if none does)."""
    out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=10)
    try:
        links = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return None
    for link in links:
        for addr in link.get("addr_info", []):
            if addr.get("local") == address:
                return link.get("ifname")
    return None


def check_vni(path: Path, vni: int) -> None:
    """DaemonError(unknown VNI N; evpnd has ...) unless evpnd serves `vni`."""
    try:
        ask(path, "show vni", {"vni": vni})
    except DaemonError as exc:
        if exc.unreachable:
            raise
        try:
            known = sorted(v["vni"] for v in ask(path, "show vni", {}).get("vnis", []))
        except DaemonError:
            known = []
        have = ", ".join(map(str, known)) or "none"
        raise DaemonError(f"unknown VNI {vni} (evpnd has {have})", False) from None


def check_address(path: Path, target: str, kind: str, vni: int | None) -> None:
    """DaemonError unless evpnd knows the MAC or IP (in `vni` when given)."""
    data = ask(path, "explain", {"target": target})
    vnis = [v.get("vni") for v in data.get("vnis", [])]
    known = bool(vnis) or bool(data.get("routes"))
    if not known:
        hint = "" if kind == "MAC" else " (VNIs without an SVI carry no IPs in EVPN: use --mac)"
        raise DaemonError(f"unknown {kind} {target}: evpnd has no local or remote entry for "
                          f"it{hint}", False)  # fmt: skip
    if vni is not None and vnis and vni not in vnis:
        raise DaemonError(f"{kind} {target} is not in VNI {vni} (it is in "
                          f"{', '.join(map(str, vnis))})", False)  # fmt: skip
