"""containerlab/evpn-fabric as generated, and the node images' entrypoints without their config
(the container tests in tests/netns/test_lab_docker.py run the same scripts inside images)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from evpnd.lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
FABRIC = ROOT / "containerlab/evpn-fabric"


def test_fabric_files_are_what_generate_py_writes(tmp_path):
    """The committed files are generate.py's output (edit the generator, not the files)."""
    gen = tmp_path / "evpn-fabric"
    gen.mkdir()
    (gen / "generate.py").write_text((FABRIC / "generate.py").read_text())
    subprocess.run([sys.executable, str(gen / "generate.py")], check=True)
    for path in sorted(p for p in gen.rglob("*") if p.is_file() and p.name != "generate.py"):
        rel = path.relative_to(gen)
        assert (FABRIC / rel).read_text() == path.read_text(), f"{rel} is stale: run generate.py"


def test_fabric_shape():
    topo = load_topology(FABRIC / "evpn-fabric.clab.yml")
    frr = sorted(n.name for n in topo.by_role("frr"))
    assert frr == ["leaf17", "leaf18", "rr1", "rr2"]
    assert len(topo.by_role("evpnd")) == 16
    leaves = [n for n in topo.nodes if n.startswith("leaf")]
    hosts = {
        link.b.node for link in topo.links if link.a.node in leaves and link.a.ifname == "eth2"
    }
    assert hosts == {f"h{i:02d}" for i in range(1, 19)}, "one host behind every leaf"


def _entrypoint(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(ROOT / "containerlab" / script), *args],
                          capture_output=True, text=True, timeout=10)  # fmt: skip


def test_evpnd_entrypoint_without_config_says_so_in_one_line(tmp_path):
    for conf in (tmp_path / "missing.yaml", tmp_path):  # a missing bind becomes a directory
        proc = _entrypoint("evpnd-entrypoint.sh", "evpnd", "-c", str(conf))
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and f"no config at {conf}:" in proc.stderr
        assert proc.stdout == ""
