"""Events that flow into the core. Plain values: the adapters make them, the core consumes them."""

from __future__ import annotations

from dataclasses import dataclass, field

from evpnd.routes.evpn import Path, RouteKey


@dataclass(slots=True)
class RouteUpdate:
    """One BGP UPDATE from a peer: paths announced and keys withdrawn."""

    peer: str
    announced: list[Path] = field(default_factory=list)
    withdrawn: list[RouteKey] = field(default_factory=list)


@dataclass(slots=True)
class PeerState:
    """A session changed state: 'connected', 'up' (Established) or 'down'."""

    peer: str
    state: str
    reason: str = ""
    local_address: str = ""
    peer_as: int = 0


@dataclass(slots=True)
class PeerOpen:
    """The OPEN a peer sent: its graceful-restart capability (RFC 4724 section 3).

    gr_time is the peer's Restart Time in seconds, None when it sent no such capability;
    gr_families maps each family it listed ("l2vpn evpn") to its Forwarding State (F) bit.
    """

    peer: str
    gr_time: int | None = None
    gr_families: dict[str, bool] = field(default_factory=dict)


@dataclass(slots=True)
class Notification:
    """A BGP NOTIFICATION from a peer, or ExaBGP's own shutdown notice (peer None)."""

    peer: str | None
    code: int = 0
    subcode: int = 0
    message: str = ""


@dataclass(slots=True)
class EndOfRib:
    peer: str


@dataclass(slots=True)
class CommandReply:
    """ExaBGP's answer to an API command: 'done' or 'error'. Not FIFO (see the samples)."""

    ok: bool


@dataclass(slots=True)
class LocalMac:
    """The dataplane learned (present=True) or lost a local MAC, optionally with an IP."""

    vni: int
    mac: str
    ip: str | None = None
    present: bool = True
    sticky: bool = False


@dataclass(slots=True)
class LocalMacBatch:
    """LocalMac events the dataplane read in one go (up to a read's worth of notifications),
    applied in order as one event: a burst of learning (a rack of VMs starting, a host's 100k
    MACs) costs the owner task and the core one entry point per batch, not one per MAC, and the
    speaker gets one change set (issue 14)."""

    macs: list[LocalMac]


Event = (
    RouteUpdate | PeerState | PeerOpen | Notification | EndOfRib | CommandReply | LocalMac
    | LocalMacBatch
)  # fmt: skip


def unbatched(event: Event) -> list[Event]:
    """The events one emitted event stands for: a LocalMacBatch's LocalMacs, else itself."""
    if isinstance(event, LocalMacBatch):
        return list(event.macs)
    return [event]
