"""MAC mobility (RFC 7432 section 15) and duplicate address detection (FRR semantics). Pure.

Who wins a MAC: `rank(path)`, the larger wins:
  1. a local sticky (static) MAC is never overridden (section 15.2),
  2. a sticky path beats a non-sticky one,
  3. the higher MAC mobility sequence number wins (section 15.1),
  4. on equal sequence numbers the path from the lowest VTEP IP wins (section 15.1).

Duplicate address detection follows FRR's `dup-addr-detection max-moves N time S` with freeze: a
move is a switch between local and remote; the window starts at the first move, and on the Nth
move inside it the MAC is flagged duplicate and frozen (kernel state kept as it was, the local
route withdrawn) until cleared.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from evpnd.routes.evpn import LOCAL_PEER, Path

_V6_OFFSET = 1 << 128
_VTEP_RANK: dict[str, int] = {}


def vtep_rank(ip: str) -> int:
    """Larger for lower addresses (IPv4 before IPv6), so that max() picks the lowest VTEP.

    Raises ValueError for text that is not an IP address. Cached: there are few VTEPs.
    """
    rank = _VTEP_RANK.get(ip)
    if rank is None:
        addr = ipaddress.ip_address(ip)
        rank = -(int(addr) + (_V6_OFFSET if addr.version == 6 else 0))
        if len(_VTEP_RANK) < 1_000_000:
            _VTEP_RANK[ip] = rank
    return rank


def rank(path: Path) -> tuple[bool, bool, int, int]:
    """The MAC mobility order of a path: compare with max() (see the module docstring)."""
    attrs = path.attrs
    return (
        attrs.sticky and path.peer == LOCAL_PEER,
        attrs.sticky,
        attrs.mobility_seq,
        vtep_rank(path.next_hop),
    )


def order(path: Path) -> tuple[bool, bool, int, int]:
    """rank() turned around for min(): smaller is better, so a text tie-break can follow."""
    a, b, c, d = rank(path)
    return (not a, not b, -c, -d)


def why_wins(winner: Path, other: Path) -> str:
    """The rule that made `winner` beat `other`, in words (for explain)."""
    a, b = rank(winner), rank(other)
    if a[0] and not b[0]:
        return "local sticky MAC is never overridden"
    if a[1] and not b[1]:
        return "sticky beats non-sticky"
    if a[2] != b[2]:
        return f"higher sequence ({a[2]} > {b[2]})"
    if a[3] != b[3]:
        return f"lowest VTEP IP tie-break ({winner.next_hop} < {other.next_hop})"
    return "same VTEP"


NO_IPS: frozenset[str] = frozenset()


@dataclass(slots=True)
class LocalMacState:
    """A MAC the dataplane learned locally, and whether evpnd advertises it."""

    vni: int
    mac: str
    present: bool = False  # the MAC itself (FDB entry) is learned
    # neighbour entries on it; a shared empty frozenset until the first (most MACs have none:
    # a set each was 21 MB at 100k local MACs)
    ips: set[str] | frozenset[str] = NO_IPS
    sticky: bool = False
    seq: int = 0  # our MAC mobility sequence for it
    advertised: bool = False  # False while a remote path wins or while frozen
    learned_at: float = 0.0
    over_limit: bool = False  # refused once by the VNI's max_local_macs (noticed once)


@dataclass(slots=True)
class DadState:
    count: int = 0
    start: float = 0.0
    duplicate: bool = False
    since: float = 0.0


MacId = tuple[int, str]


class Mobility:
    """Local MAC states, move counting and frozen (duplicate) MACs."""

    def __init__(self, enabled: bool = True, max_moves: int = 5, window: float = 180.0) -> None:
        self.enabled = enabled
        self.max_moves = max_moves
        self.window = window
        self.local: dict[MacId, LocalMacState] = {}
        self.dad: dict[MacId, DadState] = {}
        # Frozen kernel values: what desired state keeps while a MAC is duplicate.
        self.frozen_fdb: dict[MacId, str | None] = {}
        self.frozen_neigh: dict[tuple[int, str], str | None] = {}
        self.frozen_ips: dict[MacId, tuple[str, ...]] = {}

    def configure(self, enabled: bool, max_moves: int, window: float) -> None:
        self.enabled, self.max_moves, self.window = enabled, max_moves, window

    def is_frozen(self, vni: int, mac: str) -> bool:
        return (vni, mac) in self.frozen_fdb

    def record_move(self, vni: int, mac: str, now: float, local_learn: bool) -> bool:
        """Count one local<->remote move; True when it makes the MAC a duplicate.

        FRR starts the detection window on local learning (RFC 7432 section 15.1: 'a PE that
        detects a MAC mobility event via local learning starts an M-second timer'); a
        local-to-remote move counts only once a window is running.
        """
        if not self.enabled:
            return False
        state = self.dad.get((vni, mac))
        if state is None:
            if not local_learn:
                return False
            state = self.dad[(vni, mac)] = DadState()
        if state.duplicate:
            return False
        if state.count and now - state.start > self.window:
            state.count = 0
        if state.count == 0:
            if not local_learn:
                return False
            state.start = now
        state.count += 1
        if state.count >= self.max_moves:
            state.duplicate = True
            state.since = now
            return True
        return False

    def freeze(self, vni: int, mac: str, fdb: str | None, neigh: dict[str, str | None]) -> None:
        self.frozen_fdb[(vni, mac)] = fdb
        self.frozen_ips[(vni, mac)] = tuple(neigh)
        for ip, value in neigh.items():
            self.frozen_neigh[(vni, ip)] = value

    def duplicates(self, vni: int | None = None, mac: str | None = None) -> list[MacId]:
        return [
            (v, m)
            for (v, m), st in self.dad.items()
            if st.duplicate and (vni is None or v == vni) and (mac is None or m == mac)
        ]

    def thaw(self, vni: int, mac: str) -> tuple[str, ...]:
        """Clear the duplicate flag and the move count; returns the IPs that were frozen."""
        self.dad.pop((vni, mac), None)
        self.frozen_fdb.pop((vni, mac), None)
        ips = self.frozen_ips.pop((vni, mac), ())
        for ip in ips:
            self.frozen_neigh.pop((vni, ip), None)
        return ips

    def forget_vni(self, vni: int) -> None:
        for table in (self.local, self.dad, self.frozen_fdb, self.frozen_ips):
            for k in [k for k in table if k[0] == vni]:
                del table[k]
        for k in [k for k in self.frozen_neigh if k[0] == vni]:
            del self.frozen_neigh[k]
