"""benchmarks/overlay.py --quick runs (so it cannot rot) and its figures make sense physically:
both modes measured, ratios to native present, and the wrong MTU drops full-size DF frames
that the derived MTU carries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]


def test_overlay_benchmark_quick(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("needs root")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overlay.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "overlay.json").read_text())
    runs = {(r["mode"], r["mtu"], r["offloads"]): r for r in results["runs"]}
    assert set(runs) == {("native", 1500, "on"), ("vxlan", 1500, "on")}
    for r in runs.values():
        assert r["tcp1"] > 0.05 and r["tcp4"] > 0.05, r  # Gbit/s: traffic really flowed
        assert r["udp64"] > 1 and r["udp1400"] > 1, r  # kpps
        assert 0 < r["rtt_p50"] <= r["rtt_p99"], r
        assert r["raw"]["ping"]["received"] >= 0.9 * r["raw"]["ping"]["sent"], r
        assert r["cpu_per_gbit"] > 0, r
    wrong = {row["host_mtu"]: row for row in results["wrong_mtu"]}
    assert wrong[1450]["df_ping"] == "5/5", wrong  # the derived MTU carries full-size frames
    assert wrong[1500]["df_ping"] == "0/5", wrong  # the wrong one drops them (no ICMP back)
    table = (tmp_path / "overlay.md").read_text()
    assert "| TCP 1 stream (Gbit/s) |" in table and "(x" in table and "1500 (wrong)" in table
    assert (tmp_path / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["seconds"] < 120, results["seconds"]
