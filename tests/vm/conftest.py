"""The full-kernel tier: tests that need kernel features this host lacks (VRF, geneve, gretap).

They run only inside the VM that scripts/vm-tier.sh boots (Debian 12's stock kernel), which sets
EVPND_VM_TIER=1. The host's plain `pytest` does not collect them at all, so they never show up
as skipped there; `make test` runs the tier for real after the host suite.
"""

from __future__ import annotations

import os

IN_VM = os.environ.get("EVPND_VM_TIER") == "1"

if not IN_VM:
    collect_ignore_glob = ["test_*.py"]
