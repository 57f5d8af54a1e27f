"""benchmarks/overlay_tunnels.py's report (markdown table and PNG plot) from the results of its
last full run in the VM (docs/bench/overlay-vm.json): the VM tier's quick test runs the
benchmark with --no-plot (under emulation importing matplotlib alone costs ~35 s), so the
plotting is checked here, on the host, with real figures; and a quick run's missing metrics
(None) print as "-" instead of failing."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import overlay_tunnels  # noqa: E402

RESULTS = json.loads((ROOT / "docs" / "bench" / "overlay-vm.json").read_text())


def test_full_run_table_and_plot(tmp_path):
    table = overlay_tunnels.write(RESULTS, tmp_path)
    assert table == (tmp_path / "overlay-vm.md").read_text()
    for mode in ("vxlan", "geneve", "gretap", "gre"):
        assert f"| {mode} |" in table or f" {mode} |" in table
    assert "(x" in table and "1500 (wrong)" in table
    assert (tmp_path / "overlay-vm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_run_without_some_metrics_prints_dashes(tmp_path):
    quick = copy.deepcopy(RESULTS)
    for r in quick["runs"]:
        r["tcp4"] = r["udp64"] = None
    for row in quick["wrong_mtu"]:
        row["tcp1"] = None
    table = overlay_tunnels.write(quick, tmp_path, with_plot=False)
    assert "| TCP 4 streams (Gbit/s) | - | - |" in table
    assert not (tmp_path / "overlay-vm.png").exists()
