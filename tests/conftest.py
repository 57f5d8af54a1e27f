"""Shared fixtures. Network tests build their own namespaces and always remove them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evpnd.lab.netns import Lab

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def lab():
    """A Lab whose namespaces and processes are removed after the test, pass or fail."""
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.cleanup()
