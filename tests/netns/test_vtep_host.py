"""The start-time VTEP check reads this namespace's addresses with one raw dump of the VTEP's
family (issue 17: pyroute2's decoded dump of 8,000 devices' link-locals stayed in memory):
an IPv6 VTEP held by an interface passes, one that is not is named with what the host has."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.netns

SNIPPET = """
import json, sys
from evpnd.cli.start_checks import start_problems
from evpnd.config import parse_config
out = {}
base = sys.argv[1]
for vtep in sys.argv[2:]:
    cfg = parse_config({"router_id": "10.0.0.1", "asn": 65001, "vtep": vtep,
                        "runtime_dir": base + "-" + vtep.replace(":", "_"),
                        "api": {"socket": base + "-sock/evpnd.sock"}})
    out[vtep] = start_problems(cfg)
print(json.dumps(out))
"""


def test_vtep_checked_against_the_namespaces_own_addresses(lab, tmp_path):
    ns = lab.netns("vtep")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "2001:db8::1/64", "dev", "u0", "nodad")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    for dev in ("u0", "u1"):
        ns.ip("link", "set", dev, "up")
    for i in range(50):  # devices whose IPv6 link-locals the dump of an IPv4 VTEP skips
        ns.ip("link", "add", f"b{i}", "type", "bridge")
        ns.ip("link", "set", f"b{i}", "up")
    argv = [str(tmp_path / "rt"), "2001:db8::1", "2001:db8::9", "10.0.0.1"]
    proc = subprocess.run(ns.cmd(sys.executable, "-c", SNIPPET, *argv), capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    found = json.loads(proc.stdout)
    assert found["2001:db8::1"] == [] and found["10.0.0.1"] == []
    ((field, why),) = found["2001:db8::9"]
    assert field == "vtep" and why.startswith("2001:db8::9 is not an address of any interface")
    assert "this host has 2001:db8::1" in why
