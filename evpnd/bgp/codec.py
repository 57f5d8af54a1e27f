"""ExaBGP 5's JSON API lines -> evpnd's session events. Pure.

Routes never come this way: evpnd's extension hands every received UPDATE over raw, and
evpnd.bgp.compact is evpnd's one decoder of EVPN routes and attributes. What ExaBGP still
reports in JSON, and `MessageDecoder.decode_line` turns into events:

- ``done`` / ``error``                  -> CommandReply(ok). Not FIFO: never match by position.
- ``type: update`` with ``message.eor`` for l2vpn/evpn -> EndOfRib(peer) (an End-of-RIB is
  too short for the raw path: ExaBGP decodes it itself)
- ``type: state`` (connected, up, down + reason)      -> PeerState
- ``type: open`` received from a peer                 -> PeerOpen (its graceful restart)
- ``type: notification`` from a peer, or ExaBGP's own ``"notification": "shutdown"``
                                        -> Notification (peer None for ExaBGP's own)
- anything else ExaBGP may print (a sent open, keepalive, negotiated, other families)
  -> [] silently.
- an UPDATE with routes in JSON means the raw receive path is not installed in that ExaBGP:
  [] and counted as ``json_routes_ignored`` (never decoded twice, never silently).

The peer is ``neighbor.address.peer``. See tests/fixtures/exabgp/*.jsonl for the real lines.

Bad input never raises out of `decode_line`: a line that is not JSON, not an object, or not of
the expected shape is dropped and counted as ``malformed_lines`` (the decoder's `stats()`,
which the Speaker reports; the latest reason in `last_reject`).
"""

from __future__ import annotations

try:  # orjson parses ExaBGP's lines about twice as fast as the standard library
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - orjson is a pinned dependency
    from json import loads as _json_loads

from evpnd.core.events import (
    CommandReply,
    EndOfRib,
    Event,
    Notification,
    PeerOpen,
    PeerState,
)


class MalformedError(ValueError):
    """A value in ExaBGP's JSON that does not have the expected type or range."""


# ----------------------------------------------------------------------------- messages


def _peer(neighbor: dict) -> str:
    peer = neighbor["address"]["peer"]
    if type(peer) is not str or not peer:
        raise MalformedError(f"neighbor address is not a string: {peer!r}")
    return peer


def _update(msg: dict) -> list[Event]:
    neighbor = msg["neighbor"]
    peer = _peer(neighbor)
    if neighbor.get("direction", "receive") != "receive":
        return []  # our own UPDATEs echoed back if `send` were configured: never routes
    message = neighbor["message"]
    eor = message.get("eor")
    if eor is not None:
        if eor.get("afi") == "l2vpn" and eor.get("safi") == "evpn":
            return [EndOfRib(peer)]
        return []
    update = message["update"]
    if type(update) is not dict:
        raise MalformedError(f"update is not an object: {update!r}")
    for part in ("announce", "withdraw"):
        families = update.get(part)
        if families and FAMILY in families:
            raise _JsonRoutes(f"EVPN routes from {peer} in ExaBGP's JSON (raw receive is off)")
    return []


def _state(msg: dict) -> list[Event]:
    neighbor = msg["neighbor"]
    state = neighbor["state"]
    reason = neighbor.get("reason") or ""
    if type(state) is not str or type(reason) is not str:
        raise MalformedError(f"state/reason are not strings: {state!r} {reason!r}")
    local = neighbor["address"].get("local") or ""
    peer_as = (neighbor.get("asn") or {}).get("peer") or 0
    if type(local) is not str or type(peer_as) is not int:
        raise MalformedError("state line with a bad local address or peer ASN")
    return [PeerState(_peer(neighbor), state, reason, local, peer_as)]


def _notification(msg: dict) -> list[Event]:
    neighbor = msg.get("neighbor")
    if neighbor is None:  # ExaBGP's own: {"type": "notification", "notification": "shutdown"}
        return [Notification(None, message=str(msg["notification"]))]
    note = neighbor["notification"]
    code, subcode = note.get("code", 0), note.get("subcode", 0)
    if type(code) is not int or type(subcode) is not int:
        raise MalformedError(f"notification code is not a number: {note!r}")
    text = note.get("message") or ""
    data = note.get("data") or ""
    if not text and data not in ("", "0x"):
        text = data
    if neighbor.get("direction") == "send":
        text = f"sent: {text}" if text else "sent"
    return [Notification(_peer(neighbor), code, subcode, str(text))]


GRACEFUL_RESTART = "64"  # capability code (RFC 4724 section 3), ExaBGP's key in the JSON


def _open(msg: dict) -> list[Event]:
    """A received OPEN -> PeerOpen with the peer's graceful-restart capability.

    ExaBGP 5.0.15 (capability/graceful.py json()) prints the per-family Forwarding State bit
    (0x80) as ``"restart"`` and the Restart State bit (R) as ``"restart-flags": ["forwarding"]``:
    the per-family list is what says "forwarding state preserved".
    """
    neighbor = msg["neighbor"]
    if neighbor.get("direction", "receive") != "receive":
        return []
    peer = _peer(neighbor)
    gr = neighbor["open"]["capabilities"].get(GRACEFUL_RESTART)
    if gr is None:
        return [PeerOpen(peer)]
    restart_time = gr["time"]
    flags = gr["address-family-flags"]
    if type(restart_time) is not int or not 0 <= restart_time <= 0xFFF or type(flags) is not dict:
        raise MalformedError(f"graceful-restart capability with a bad shape: {gr!r}")
    families: dict[str, bool] = {}
    for family, bits in flags.items():
        if type(family) is not str or type(bits) is not list:
            raise MalformedError(f"graceful-restart family with a bad shape: {family!r}")
        families[family.replace("/", " ")] = "restart" in bits
    return [PeerOpen(peer, restart_time, families)]


FAMILY = "l2vpn evpn"


class _JsonRoutes(Exception):
    """EVPN routes in ExaBGP's JSON: the raw receive path is missing (see the docstring)."""


_DECODERS = {
    "update": _update,
    "state": _state,
    "notification": _notification,
    "open": _open,
}


class MessageDecoder:
    """ExaBGP's JSON lines -> session events, with its counters. The Speaker owns one."""

    COUNTERS = ("lines", "malformed_lines", "json_routes_ignored")

    def __init__(self) -> None:
        self.counters: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.last_reject = ""  # the reason for the most recent rejection

    def stats(self) -> dict[str, int]:
        """A copy of the counters (the Speaker puts them in its status)."""
        return dict(self.counters)

    def _reject(self, counter: str, reason: str) -> None:
        self.counters[counter] += 1
        self.last_reject = reason[:200]

    def decode_line(self, line: str | bytes) -> list[Event]:
        """One line of ExaBGP's API output (str, or bytes as read from the pipe) -> events.

        Never raises; bad input is counted (see `stats`).
        """
        self.counters["lines"] += 1
        text = line.strip()
        if not text:
            return []
        start = text[:1]
        if start != "{" and start != b"{":
            if text == "done" or text == b"done":
                return [CommandReply(True)]
            if text == "error" or text == b"error":
                return [CommandReply(False)]
            self._reject("malformed_lines", f"not JSON: {text[:120]!r}")
            return []
        try:
            msg = _json_loads(text)
            decoder = _DECODERS.get(msg.get("type"))
            if decoder is None:
                return []  # keepalive, negotiated, fsm, signal, refresh: not needed
            return decoder(msg)
        except _JsonRoutes as exc:
            self._reject("json_routes_ignored", str(exc))
            return []
        except (LookupError, TypeError, AttributeError, ValueError, RecursionError) as exc:
            self._reject("malformed_lines", f"bad line ({exc!r}): {text[:120]!r}")
            return []
