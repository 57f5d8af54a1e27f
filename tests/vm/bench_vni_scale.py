"""benchmarks/vni_scale.py in both `vxlan_mode`s, in one full-kernel VM (`make bench-vni-vm`):
single mode needs a VLAN-filtering bridge, which the host kernel lacks. Written into docs/bench
(mounted writable into the VM by that target) as vni_scale_vm_per_vni.* and
vni_scale_vm_single.*. The VM runs under TCG (emulated): the two modes' figures compare with
each other, not with the host's. Not collected by the tier's normal run (the file name does not
start with test_): the target selects it with `-o python_files=bench_*.py -k vni_scale`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_mode(mode: str, sizes: str) -> None:
    name = "vni_scale_vm_" + mode.replace("-", "_")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vni_scale.py"),
                           "--mode", mode, "--sizes", sizes, "--l3", "0", "--repeat", "1",
                           "--timeout", "1200", "--name", name, "--out",
                           str(ROOT / "docs" / "bench")], capture_output=True, text=True,
                          cwd=ROOT, timeout=3300)  # fmt: skip
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_vni_scale_both_modes():
    run_mode("single", "10,100,1000,4000")
    run_mode("per-vni", "10,100,1000")
