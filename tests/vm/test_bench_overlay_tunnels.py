"""benchmarks/overlay_tunnels.py, shortened (MTU 1500, offloads as set, 1-second runs of one
TCP stream and one UDP size, the wrong-MTU rows' DF pings without TCP, no plot), in the
full-kernel VM so it cannot rot: every mode carries traffic, every ratio to native exists, and
the wrong MTU drops full-size DF frames on the layer-2 tunnels that the derived MTU carries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]


def test_overlay_tunnels_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overlay_tunnels.py"),
                           "--quick", "--no-plot", "--out", str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)  # the figures, in the tier's log
    results = json.loads((tmp_path / "overlay-vm.json").read_text())
    runs = {r["mode"]: r for r in results["runs"]}
    assert set(runs) == {"native", "vxlan", "geneve", "gretap", "gre"}
    for r in runs.values():
        assert r["tcp1"] > 0 and r["udp1400"] > 0, r  # traffic really flowed
        assert r["tcp4"] is None and r["udp64"] is None, r  # --quick leaves them out
        assert 0 < r["rtt_p50"] <= r["rtt_p99"], r
    wrong = {(row["mode"], row["host_mtu"] == row["derived"]): row for row in
             results["wrong_mtu"]}  # fmt: skip
    for mode in ("vxlan", "geneve", "gretap"):
        assert wrong[(mode, True)]["df_ping"] == "5/5", wrong  # derived MTU: full size passes
        assert wrong[(mode, False)]["df_ping"] == "0/5", wrong  # the bridge drops them
    assert wrong[("gre", True)]["df_ping"] == "5/5", wrong
    table = (tmp_path / "overlay-vm.md").read_text()
    assert "Emulated (QEMU/TCG" in table and "| geneve |" in table and "(x" in table
    assert "1500 (wrong)" in table
    assert not (tmp_path / "overlay-vm.png").exists()  # --no-plot: the host tests the plot
