"""A Dataplane `emit` for tests: records the events one by one (LocalMacBatch unpacked)."""

from __future__ import annotations

from collections.abc import Callable

from evpnd.core.events import Event, unbatched


def collect(events: list) -> Callable[[Event], None]:
    """`emit` that appends every event, a LocalMacBatch as its LocalMacs, in order."""
    return lambda event: events.extend(unbatched(event))
