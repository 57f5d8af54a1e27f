"""The systemd tier: evpnd as a systemd service in a container whose PID 1 is Debian's systemd.

scripts/systemd-tier.sh (`make test`, `make test-systemd`) builds the root, the wheel and the
wheelhouse and runs these tests with EVPND_SYSTEMD_TIER=1. The host's plain `pytest` does not
collect them (they would need those artefacts), so they never show up as skipped there.
"""

from __future__ import annotations

import os

if os.environ.get("EVPND_SYSTEMD_TIER") != "1":
    collect_ignore_glob = ["test_*.py"]
