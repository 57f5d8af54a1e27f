"""The full VM run of benchmarks/overlay_tunnels.py (`make bench-overlay-vm`), written into
docs/bench (mounted writable into the VM by that target). Not collected by the tier's normal
run (the file name does not start with test_): the target selects it with
`-o python_files=bench_*.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_overlay_tunnels_full():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overlay_tunnels.py"),
                           "--out", str(ROOT / "docs" / "bench")], capture_output=True,
                          text=True, cwd=ROOT, timeout=3300)  # fmt: skip
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
