"""`evpnd --version` and `evpnctl --version`: the real console scripts print the package version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # .venv/bin, where pip put the console scripts


@pytest.mark.parametrize("program", ["evpnd", "evpnctl"])
def test_version_through_the_console_script(program):
    script = BIN / program
    assert script.exists(), f"console script missing: {script} (pip install -e .)"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{program} {version('evpnd')}\n"
    assert result.stderr == ""


def test_version_is_the_pyproject_version():
    pyproject = (Path(__file__).parent.parent.parent / "pyproject.toml").read_text()
    assert f'\nversion = "{version("evpnd")}"\n' in pyproject


def test_version_without_installed_metadata_falls_back_to_the_package(monkeypatch):
    """Run from a bare checkout (no dist-info): evpnd.__version__."""
    import importlib.metadata

    import evpnd
    from evpnd.cli import version as version_module

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version_module, "version", missing)
    assert version_module.package_version() == evpnd.__version__
