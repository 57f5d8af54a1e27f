"""evpnd.logs: JSON lines for journald and files, key=value on a terminal, bound context."""

from __future__ import annotations

import io
import json
import os
import pty

import pytest
import structlog

from evpnd import logs

CONTEXT = {"peer": "10.0.1.2", "vni": 100, "mac": "02:00:00:00:aa:01"}


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging():
    """Leave structlog as the other tests found it."""
    config, configured = structlog.get_config(), logs._configured
    yield
    structlog.configure(**config)
    logs._configured = configured


def test_json_lines_when_not_a_terminal():
    stream = io.StringIO()
    logs.setup_logging("info", stream=stream)
    log = logs.get_logger("evpnd.bgp", peer=CONTEXT["peer"])
    log.info("route learned", vni=100, mac=CONTEXT["mac"])
    log.bind(vni=200).warning("route withdrawn", mac="02:00:00:00:aa:02")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "route learned" and first["level"] == "info"
    assert {k: first[k] for k in CONTEXT} == CONTEXT
    assert first["logger"] == "evpnd.bgp" and first["timestamp"].endswith("Z")
    assert (second["vni"], second["mac"], second["peer"]) == (200, "02:00:00:00:aa:02", "10.0.1.2")
    assert second["level"] == "warning"


def test_key_value_on_a_terminal():
    stream = FakeTerminal()
    logs.setup_logging("info", stream=stream)
    logs.get_logger("evpnd.core", **CONTEXT).info("mac moved", seq=3)
    line = stream.getvalue().strip()
    assert not line.startswith("{")
    assert "mac moved" in line and "[info" in line
    for part in ("peer=10.0.1.2", "vni=100", "mac=02:00:00:00:aa:01", "seq=3"):
        assert part in line
    assert "\x1b[" not in line  # no colour codes: journald and files stay readable


def test_a_real_pty_gets_key_value():
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=True) as terminal:
            assert terminal.isatty()
            logs.setup_logging("info", stream=terminal)
            logs.get_logger("evpnd.dataplane", vni=100).info(
                "fdb installed", mac="02:00:00:00:00:09"
            )
            terminal.flush()
            output = os.read(master, 4096).decode()
    finally:
        os.close(master)
    assert "fdb installed" in output and "vni=100" in output and "mac=02:00:00:00:00:09" in output
    assert "{" not in output


def test_force_json_overrides_the_terminal_check():
    stream = FakeTerminal()
    logs.setup_logging("info", stream=stream, force_json=True)
    logs.get_logger("x", **CONTEXT).info("hello")
    assert json.loads(stream.getvalue())["vni"] == 100


def test_level_filtering():
    stream = io.StringIO()
    logs.setup_logging("warning", stream=stream)
    log = logs.get_logger("x")
    log.debug("no")
    log.info("no")
    log.warning("yes")
    log.error("yes too")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == [
        "yes",
        "yes too",
    ]


def test_loggers_made_at_import_follow_a_later_setup():
    """Modules create loggers at import, before the daemon applies --log-level."""
    early = logs.get_logger("evpnd.early", peer="10.0.1.2")
    bound_early = early.bind(vni=7)
    stream = io.StringIO()
    logs.setup_logging("debug", stream=stream)
    early.debug("visible at debug")
    bound_early.info("bound before setup")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["visible at debug", "bound before setup"]
    assert events[1]["vni"] == 7 and events[1]["peer"] == "10.0.1.2"


def test_context_variables_and_exceptions():
    stream = io.StringIO()
    logs.setup_logging("info", stream=stream)
    structlog.contextvars.bind_contextvars(peer="10.0.2.2")
    try:
        try:
            raise ValueError("bad NLRI")
        except ValueError:
            logs.get_logger("x").exception("decode failed")
    finally:
        structlog.contextvars.clear_contextvars()
    (event,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert event["peer"] == "10.0.2.2" and event["level"] == "error"
    assert "ValueError: bad NLRI" in event["exception"]
