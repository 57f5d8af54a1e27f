"""`evpnctl trace` on a host without an optional tool (ebtables, nft): the hints that need it are
left out, a step that needs it says which tool is missing; never a traceback. (A machine
without ebtables showed it: every trace that looked for a reason crashed.)"""

from __future__ import annotations

import pytest

from evpnd.capture import trace

MISSING = "evpnd-test-no-such-tool"


def test_a_missing_tool_is_no_hint():
    assert trace._run([MISSING, "-L", "FORWARD"], check=False) == ""


def test_a_missing_tool_that_is_needed_names_itself():
    with pytest.raises(RuntimeError, match=f"{MISSING}: not installed"):
        trace._run([MISSING])


def test_the_wire_hint_without_ebtables_or_nft(monkeypatch):
    real = trace._run
    # `bridge` and `ip` answer (in this process's namespace: nothing named so exists), the
    # firewall tools are missing
    monkeypatch.setattr(
        trace,
        "_run",
        lambda cmd, **kw: real([MISSING] if cmd[0] in ("ebtables", "nft") else cmd, **kw),
    )
    hint = trace._wire_hint("evpnd-no-br", "evpnd-no-vx", "02:00:00:00:00:01")
    assert hint == " (the bridge evpnd-no-br did not forward it to evpnd-no-vx)"
