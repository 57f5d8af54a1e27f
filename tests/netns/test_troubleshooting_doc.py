"""docs/troubleshooting.py runs (so the page cannot rot): every failure it produces shows in
the real `evpnctl` output it records, and the committed docs/troubleshooting.md has the same
sections and commands as a fresh run (only timings, MACs of bridges and counters may differ)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]


def skeleton(page: str) -> list[str]:
    """Headings and the commands run (prompt lines), in order."""
    return [ln for ln in page.splitlines() if ln.startswith("## ") or re.match(r"leaf-[ab]# ", ln)]


def test_troubleshooting_page_is_generated_from_real_output(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("needs root")
    out = tmp_path / "troubleshooting.md"
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "troubleshooting.py"), "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = out.read_text()
    for text in (
        "ok: 10.100.0.2 reached, rtt ",  # healthy
        " vxlan vni 100 02:aa:00:00:01:01 > 02:aa:00:00:02:02 ICMP 10.100.0.1 > 10.100.0.2 echo "
        "request",  # capture
        "failed at import: route received from 10.0.0.2 but its RT 65002:999 imports into no "
        "VNI (VNIs here import: 100: ",  # RT mismatch
        "failed at reply: no reply from 10.100.0.2 (the remote side",  # missing flood entry
        "failed at kernel: no kernel entry: 02:aa:00:00:02:02 dst 10.0.0.2 missing on vx100 "
        "(has 10.0.0.99); show kernel --diff: fdb 02:aa:00:00:02:02 conflict",  # hand-made
        "conflict  fdb   100  02:aa:00:00:02:02  10.0.0.2  -",
        "failed at size: full-size probe dropped (MTU): 1450-byte packets with DF; vx100 MTU "
        "1450, a 1464-byte frame needs 1500-byte underlay packets",  # MTU black hole
        "failed at wire: probe left towards 10.0.0.99, expected VTEP 10.0.0.2: ARP suppression "
        "on br100 answers 10.100.0.2 is-at 02:aa:00:00:09:99",  # moved IP
        "conflict  neigh  100  10.100.0.2  02:aa:00:00:02:02  -",
        "note:    duplicate: frozen after too many moves",  # duplicate MAC
        "Cleared duplicate-address state for all VNIs (1 MACs released).",
    ):
        assert text in page, text
    assert re.search(r"02:aa:00:00:02:02  remote  D?F", page), page
    assert "Traceback" not in page
    committed = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert skeleton(committed) == skeleton(page), "docs/troubleshooting.md is stale: make " \
        "troubleshooting"  # fmt: skip
