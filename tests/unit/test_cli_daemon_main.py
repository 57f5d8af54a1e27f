"""`evpnd --check-config -c FILE`: the real console script, run as operators run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
CONFIGS = ROOT / "tests" / "fixtures" / "configs"
EVPND = Path(sys.executable).parent / "evpnd"  # .venv/bin/evpnd


def check(path: Path | str) -> subprocess.CompletedProcess[str]:
    assert EVPND.exists(), f"console script missing: {EVPND} (pip install -e .)"
    return subprocess.run(
        [str(EVPND), "--check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("path", [ROOT / "config" / "leaf.yaml", CONFIGS / "minimal.yaml"])
def test_valid_config_exits_0(path):
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK" in result.stdout
    assert result.stderr == ""


# (fixture file, field path, words of the reason)
INVALID = [
    ("wrong-type.yaml", "asn", "valid integer"),
    ("unknown-field.yaml", "peers[0].remote_ass", "unknown field"),
    ("vni-zero.yaml", "l2vnis[0].vni", "greater than or equal to 1"),
    ("vni-too-big.yaml", "l2vnis[1].vni", "less than or equal to 16777215"),
    ("duplicate-vni.yaml", "l3vnis[0].vni", "duplicate VNI 100"),
    ("bad-ip.yaml", "peers[0].address", "not a valid IPv4 or IPv6 address"),
    ("bad-rd.yaml", "l2vnis[0].rd", "above 65535"),
    ("bad-mac.yaml", "l3vnis[0].router_mac", "not a MAC address"),
    ("empty.yaml", None, "expected a mapping of settings at the top, got empty"),
    ("invalid-yaml.yaml", None, "invalid YAML: line 5"),
    ("missing.yaml", None, "file not found"),
    ("max-routes-zero.yaml", "peers[0].max_routes", "greater than or equal to 1"),
    ("max-local-macs-text.yaml", "l2vnis[0].max_local_macs", "valid integer"),
]


@pytest.mark.parametrize("name,field,reason", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_config_exits_2_naming_file_field_and_reason(name, field, reason):
    path = CONFIGS / name
    assert path.exists() == (name != "missing.yaml")
    result = check(path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    expected = f"{path}: {field}: " if field else f"{path}: "
    lines = [line for line in result.stderr.splitlines() if line.startswith(expected)]
    assert any(reason in line for line in lines), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00 not text", b"[" * 1200, b"- a\n- b\n", b"asn: !!python/object:os.system x"],
    ids=["binary", "deep", "list", "python-tag"],
)
def test_hostile_files_exit_2_without_traceback(tmp_path, content):
    path = tmp_path / "evpnd.yaml"
    path.write_bytes(content)
    result = check(path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}: ")


def test_directory_instead_of_file(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_starting_with_an_invalid_config_exits_2_before_anything_runs():
    result = subprocess.run(
        [str(EVPND), "-c", str(CONFIGS / "vni-zero.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{CONFIGS / 'vni-zero.yaml'}: l2vnis[0].vni: " in result.stderr
