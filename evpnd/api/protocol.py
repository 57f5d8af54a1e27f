"""The control socket's wire protocol: one JSON object per line, each way.

    request:  {"cmd": "show routes", "args": {"type": 2, "vni": 100}}
    reply:    {"ok": true, "data": {...}}   or   {"ok": false, "error": "unknown VNI 7"}

A connection may carry several requests; each gets exactly one reply line, in order.
Arguments are validated by the models below (unknown arguments are errors, not ignored).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
)

MAX_REQUEST = 64 * 1024  # a request is a command and a few arguments; more is abuse
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class ProtocolError(Exception):
    """A request that cannot be served; the message is sent to the client as is."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Vni = int  # range-checked where it is looked up: an unknown VNI is its own error


class RoutesArgs(_Args):
    type: Literal[2, 3, 5] | None = None
    vni: Vni | None = None
    rd: str | None = None


class PeersArgs(_Args):
    pass


class VniArgs(_Args):
    vni: Vni | None = None


class MacsArgs(_Args):
    vni: Vni | None = None
    duplicate: bool = False


class KernelDiffArgs(_Args):
    pass


def _mac(value: str | None) -> str | None:
    if value is None:
        return None
    mac = value.lower().replace("-", ":")
    if not _MAC_RE.match(mac):
        raise ValueError(f"not a MAC address: {value!r}")
    return mac


class ClearDupArgs(_Args):
    vni: Vni | None = None
    mac: str | None = None

    _n_mac = field_validator("mac")(lambda v: _mac(v))


class ClearPeerArgs(_Args):
    address: IPvAnyAddress | None = Field(default=None, description="the peer; all if absent")


class ExplainArgs(_Args):
    target: str = Field(description="a MAC or an IP address")
    vni: Vni | None = None
    to: str | None = Field(default=None, description="policy verdict for a flow to this address")
    port: int | None = Field(default=None, ge=1, le=65535)
    proto: Literal["tcp", "udp", "icmp", "icmpv6"] | None = None


class PolicyArgs(_Args):
    pass


class StatusArgs(_Args):
    pass


class MtuArgs(_Args):
    pass


ARGS: dict[str, type[_Args]] = {
    "show routes": RoutesArgs,
    "show peers": PeersArgs,
    "show vni": VniArgs,
    "show macs": MacsArgs,
    "show kernel diff": KernelDiffArgs,
    "clear dup-addr": ClearDupArgs,
    "clear peer": ClearPeerArgs,
    "explain": ExplainArgs,
    "show status": StatusArgs,
    "show policy": PolicyArgs,
    "show mtu": MtuArgs,
}


def parse_request(line: bytes) -> tuple[str, _Args]:
    """A request line -> (command, validated arguments), or ProtocolError saying what is wrong."""
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"request is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
        raise ProtocolError('request must be an object with a "cmd" string')
    cmd = obj["cmd"]
    model = ARGS.get(cmd)
    if model is None:
        raise ProtocolError(f"unknown command {cmd!r} (known: {', '.join(sorted(ARGS))})")
    raw = obj.get("args")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ProtocolError('"args" must be an object')
    try:
        return cmd, model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
        raise ProtocolError(f"{cmd}: {where}: {msg.removeprefix('Value error, ')}") from None


def ok(data: Any) -> bytes:
    return orjson.dumps({"ok": True, "data": data}) + b"\n"


def error(message: str) -> bytes:
    return json.dumps({"ok": False, "error": message}).encode() + b"\n"
