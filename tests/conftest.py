"""Shared fixtures. Network tests build their own namespaces and always remove them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from evpnd.lab.netns import Lab

FIXTURES = Path(__file__).parent / "fixtures"

# Property tests check behaviour, not speed: on a loaded 2-core CI machine a first example can
# take longer than hypothesis's 200 ms default and fail as "Unreliable test timings".
settings.register_profile("evpnd", deadline=None)
settings.load_profile("evpnd")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


def dump_daemon_logs(lab: Lab, lines: int = 60) -> None:
    """After a failure: the end of every daemon's log the lab knows (evpnd nodes, FRR), since
    their files go with the cleanup."""
    for fn in lab.cleanups:
        owner = getattr(fn, "__self__", None)
        log = getattr(owner, "log", None)
        if not callable(log):
            continue
        try:
            text = log()
        except Exception:  # noqa: BLE001 - diagnostics must not hide the real failure
            continue
        name = getattr(getattr(owner, "ns", None), "name", type(owner).__name__)
        tail = "\n".join(text.splitlines()[-lines:])
        print(f"\n===== {type(owner).__name__} in {name}: last {lines} log lines\n{tail}")


@pytest.fixture
def lab(request):
    """A Lab whose namespaces and processes are removed after the test, pass or fail."""
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    lab = Lab()
    try:
        yield lab
    finally:
        if getattr(request.node, "call_failed", False):
            dump_daemon_logs(lab)
        lab.cleanup()
