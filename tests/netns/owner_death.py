"""evpnd with one deliberate bug, for tests/netns/test_daemon_faults.py: once the daemon is
ready, publishing the core's effects raises, as a bug in an edge would. Any change that makes
the core originate (the test's SIGHUP adding a VNI) then kills the owner task.

Usage (as evpnd): python -m tests.netns.owner_death -c CONFIG [--log-level LEVEL]
"""

from __future__ import annotations

import sys

from evpnd import daemon
from evpnd.cli.daemon_main import main

_publish = daemon.Daemon._publish


def _broken_publish(self: daemon.Daemon, effects) -> None:
    if self.ready.is_set() and (effects.announce or effects.withdraw):
        raise RuntimeError("injected by the test: publishing the core's effects failed")
    _publish(self, effects)


daemon.Daemon._publish = _broken_publish  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
