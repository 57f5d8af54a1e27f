"""The core's record of what happened: the clock of the current call, counters, notices and
the last rejected routes. Shared by the collaborators; the daemon logs the notices and the
metrics read the counters."""

from __future__ import annotations

from collections import deque

from evpnd.core.validation import VALIDATION_REASONS
from evpnd.routes.evpn import RouteKey

REJECT_REASONS = (
    "rejected_own_as",
    "rejected_own_rd",
    "rejected_own_vtep",
    "rejected_originator",
    "rejected_no_vni",
    "rejected_malformed",
    *VALIDATION_REASONS,
)
_MAX_REJECTION_RECORDS = 10_000
_MAX_NOTICES = 1_000

Notice = dict[str, object]


class Journal:
    def __init__(self) -> None:
        self.now = 0.0  # the `now` of the call being handled: the core reads no clock
        self.counters: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        # Notable events for the daemon to log (the core does no I/O): Core.drain_notices().
        self.notices: deque[Notice] = deque(maxlen=_MAX_NOTICES)
        self.rejections: dict[RouteKey, tuple[str, str, float]] = {}  # last few: peer, reason

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def notice(self, event: str, **fields: object) -> None:
        self.notices.append({"event": event, "at": self.now, **fields})

    def reject(self, peer: str, key: RouteKey, reason: str) -> None:
        self.count(reason)
        records = self.rejections
        records.pop(key, None)
        if len(records) >= _MAX_REJECTION_RECORDS:
            del records[next(iter(records))]
        records[key] = (peer, reason, self.now)

    def drain_notices(self) -> list[Notice]:
        out = list(self.notices)
        self.notices.clear()
        return out
