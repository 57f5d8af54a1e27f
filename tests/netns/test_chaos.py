"""The chaos suite stays alive (its --quick mode, every row), and a flood larger than the
daemon's queue bounds leaves memory bounded, the API answering and every route applied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]
ROOT = Path(__file__).parent.parent.parent


@pytest.fixture(autouse=True)
def _root():
    if os.geteuid() != 0:
        pytest.fail("needs root")


def test_chaos_quick_mode_runs_green():
    proc = subprocess.run([sys.executable, "-m", "chaos", "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) == 7  # the header and six faults
    assert all("| ok |" in row for row in rows[1:]), proc.stdout


def test_a_flood_beyond_the_queue_bounds_keeps_memory_bounded_and_applies_every_route():
    # 20k routes withdrawn and re-announced 8 times: 320k route updates, six times what the
    # daemon lets wait in its queue (QUEUE_HIGH_ROUTES); beyond that the speaker stops reading
    # and the TCP window towards the peer closes, instead of memory growing.
    sys.path.insert(0, str(ROOT))
    from chaos.__main__ import churn
    from evpnd.daemon import QUEUE_HIGH_ROUTES

    assert 6 * QUEUE_HIGH_ROUTES < 2 * 20_000 * 8
    row = churn(20_000, 8)
    assert row.extra.get("done"), row
    assert (row.lost, row.stale) == (0, 0), row
    assert row.extra["rss_growth_mib"] < 150, row  # 20k routes held: tens of MiB
    # The API keeps answering during the flood. Issue 10's goal is 100 ms, which `make chaos`
    # checks (its churn row). Each turn of evpnd's event loop is bounded by time (evpnd/turns.py,
    # 5 ms of CPU), but the wall-clock answer also waits for the CPU: on this 2-core machine
    # shared with other sessions (load 3 to 8) the worst answer during this flood was 102 to
    # 457 ms over 11 runs (idle right after: 2 to 75 ms). So this regression guard stays at
    # 500 ms (the daemon took seconds before the queues were bounded).
    assert row.extra["api_worst_ms"] <= 500, row
