"""How long one piece of work may hold the event loop before it lets the others run.

The API, the speaker, the owner task and the dataplane share one asyncio loop, and asyncio runs
every callback that was ready at the start of an iteration before it polls the sockets again.
So a request to the API waits for about the sum of the turns that are ready at once (the owner
task applying routes, a dirty pass planning, the speaker decoding UPDATEs, the netlink monitor
reading notifications). Each of them bounds its turn by time, TURN_BUDGET, not by a count that
is cheap on a quiet machine and slow on a loaded one (issue 10: the API answers within 100 ms
during a 1M announce/withdraw flood).
"""

from __future__ import annotations

import asyncio
from time import perf_counter

# Seconds of work per turn. A request waits for about one turn of each busy task plus a GC
# pause, twice (read, then answer): at 10 ms the API's worst answer during the 1M churn of `make
# chaos` was 96-122 ms (CPU-bound stretches of 40-70 ms between two loop iterations, measured
# with a heartbeat task); 5 ms gives 85-91 ms with the churn as fast; 3 ms made it 25% slower.
TURN_BUDGET = 0.005


class Turn:
    """One task's turn: `over()` once its budget is spent; `pause()` yields then."""

    __slots__ = ("budget", "deadline")

    def __init__(self, budget: float = TURN_BUDGET) -> None:
        self.budget = budget
        self.deadline = perf_counter() + budget

    def restart(self) -> None:
        self.deadline = perf_counter() + self.budget

    def expire(self) -> None:
        """End the turn now: the next pause() yields."""
        self.deadline = 0.0

    def over(self) -> bool:
        return perf_counter() >= self.deadline

    async def pause(self) -> None:
        """Yield to the loop if the budget is spent (and start a new turn after)."""
        if perf_counter() >= self.deadline:
            await asyncio.sleep(0)
            self.deadline = perf_counter() + self.budget
