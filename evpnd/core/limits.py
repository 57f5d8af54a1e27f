"""Per-peer route limits with FRR's `neighbor X maximum-prefix N [warning-only] [restart M]`
semantics. Pure.

When a peer holds more than `max_routes` paths:
  - warning-only: one notice each time it crosses the limit; nothing else changes;
  - otherwise the session is ended with a Cease NOTIFICATION, subcode 1 "Maximum Number of
    Prefixes Reached" (RFC 4486), the peer's paths are flushed, and the peer is held down:
    every UPDATE from it is dropped and every new session is ended the same way, until
    `restart_minutes` have passed (0: until `clear peer`).
The NOTIFICATIONs to send are collected here (`take`) and handed to the speaker in Effects.
"""

from __future__ import annotations

from evpnd.core.journal import Journal
from evpnd.core.settings import PeerLimitSettings, SettingsView

CEASE = 6
MAX_PREFIXES = 1  # RFC 4486 section 4


class RouteLimits:
    def __init__(self, view: SettingsView, journal: Journal) -> None:
        self.view = view
        self.journal = journal
        self.down: dict[str, float | None] = {}  # peer held down -> until (None: until cleared)
        self.warned: set[str] = set()  # warning-only peers currently above their limit
        self._notify: list[tuple[str, int, int]] = []

    def configure(self, view: SettingsView) -> None:
        self.view = view
        for peer in [p for p in self.down if p not in view.peer_limits]:
            del self.down[peer]  # its limit was removed: it may come back
        self.warned &= set(view.peer_limits)

    def limit(self, peer: str) -> PeerLimitSettings | None:
        return self.view.peer_limits.get(peer)

    def is_down(self, peer: str) -> bool:
        return peer in self.down

    def check(self, peer: str, held: int) -> bool:
        """After an UPDATE: True when the peer just went over its limit and must be flushed."""
        limit = self.view.peer_limits.get(peer)
        if limit is None:
            return False
        if held <= limit.max_routes:
            self.warned.discard(peer)
            return False
        journal = self.journal
        if limit.warning_only:
            if peer not in self.warned:
                self.warned.add(peer)
                journal.count("max_routes_warnings")
                journal.notice("max_routes_exceeded", peer=peer, limit=limit.max_routes,
                               held=held, action="warning only")  # fmt: skip
            return False
        until = journal.now + 60.0 * limit.restart_minutes if limit.restart_minutes else None
        self.down[peer] = until
        self._notify.append((peer, CEASE, MAX_PREFIXES))
        journal.count("max_routes_exceeded")
        journal.notice("max_routes_exceeded", peer=peer, limit=limit.max_routes, held=held,
                       action="session ended", restart_minutes=limit.restart_minutes)  # fmt: skip
        return True

    def session_up(self, peer: str) -> None:
        """A held-down peer came back before its time: end that session too."""
        if peer in self.down:
            self._notify.append((peer, CEASE, MAX_PREFIXES))

    def expire(self, now: float) -> list[str]:
        """The peers whose restart time ran out (they may come back) -> which."""
        out = []
        for peer, until in list(self.down.items()):
            if until is not None and now >= until:
                del self.down[peer]
                self.journal.notice("max_routes_restart", peer=peer)
                out.append(peer)
        return out

    def clear(self, peer: str | None = None) -> list[str]:
        """`clear peer`: the held-down peers (one or all) may come back -> which were."""
        peers = [p for p in self.down if peer is None or p == peer]
        for p in peers:
            del self.down[p]
            self.journal.notice("max_routes_cleared", peer=p)
        if peer is None:
            self.warned.clear()
        else:
            self.warned.discard(peer)
        return peers

    def state(self, peer: str) -> str:
        """'' (within its limit or none), 'warning' or 'max-routes' (held down)."""
        if peer in self.down:
            return "max-routes"
        return "warning" if peer in self.warned else ""

    def take(self) -> list[tuple[str, int, int]]:
        out, self._notify = self._notify, []
        return out
