"""The interpreter settings evpnd runs with (daemon.tune_interpreter, called by run()): they
are measured choices (see the comments there), so a change to them must be deliberate."""

from __future__ import annotations

import gc
import sys

from evpnd import daemon


def test_the_gil_switch_interval_and_the_collector_thresholds():
    interval, threshold = sys.getswitchinterval(), gc.get_threshold()
    try:
        daemon.tune_interpreter()
        # the netlink thread gets the GIL back within 1 ms of a system call (issue 14)
        assert sys.getswitchinterval() == daemon.SWITCH_INTERVAL == 0.001
        assert gc.get_threshold() == (10_000, 20, 1000)
        assert gc.get_freeze_count() > 0  # what was loaded before is never scanned again
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
