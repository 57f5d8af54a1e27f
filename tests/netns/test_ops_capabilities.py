"""evpnd works with exactly the capabilities systemd/evpnd.service grants, and no others.

The unit cannot be started here (PID 1 is not systemd), so the daemon is started the way the
unit would: capability bounding, inheritable and ambient sets reduced to the unit's
CapabilityBoundingSet (with setpriv), NoNewPrivileges. It still runs as uid 0: the venv's
interpreter lives under /root, which another user cannot enter. With no CAP_DAC_OVERRIDE,
CAP_CHOWN, CAP_SETUID or CAP_SYS_ADMIN, uid 0 is an ordinary owner of its files.
The session to FRR comes up (incoming :179 needs CAP_NET_BIND_SERVICE), devices are created and
remote MACs installed (CAP_NET_ADMIN): the host behind evpnd reaches the host behind FRR.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evpnd.lab import evpnd_node
from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import (
    add_host,
    evpnd_config,
    host_mac,
    make_frr_leaf,
    two_leaves,
    wait_ping,
)

pytestmark = [pytest.mark.netns, pytest.mark.frr]
UNIT = Path(__file__).resolve().parents[2] / "systemd" / "evpnd.service"


def unit_capabilities() -> list[str]:
    for line in UNIT.read_text().splitlines():
        if line.startswith("CapabilityBoundingSet="):
            return [c.removeprefix("CAP_").lower() for c in line.split("=", 1)[1].split()]
    raise AssertionError("no CapabilityBoundingSet in the unit")


def capability_mask(names: list[str]) -> int:
    bits = {"net_bind_service": 10, "net_admin": 12}
    return sum(1 << bits[n] for n in names)


def test_daemon_runs_with_only_the_units_capabilities(monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("needs root")
    caps = unit_capabilities()
    assert caps == ["net_admin", "net_bind_service"]
    wanted = ",".join(["-all", *(f"+{c}" for c in caps)])
    plain = evpnd_node.evpnd_command
    limited = ["setpriv", "--no-new-privs", f"--bounding-set={wanted}", f"--inh-caps={wanted}",
               f"--ambient-caps={wanted}"]  # fmt: skip
    monkeypatch.setattr(evpnd_node, "evpnd_command", lambda: [*limited, *plain()])
    lab = Lab(prefix="cap")
    try:
        a, b = two_leaves(lab)
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        make_frr_leaf(lab, b, [a], {100: ["p2"]})
        vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}]
        node = evpnd_node.EvpndNode(a.ns, evpnd_config(a, [b], vnis))
        lab.on_cleanup(node.remove)
        node.start()
        status = Path(f"/proc/{node.proc.pid}/status").read_text()
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        mask = capability_mask(caps)
        for name in ("CapEff", "CapBnd", "CapAmb"):
            assert int(fields[name], 16) == mask, (name, fields[name])
        assert fields["NoNewPrivs"].strip() == "1"

        def up() -> bool:
            return node.data("show peers")["peers"][0]["state"] == "up"

        wait_for(up, 60, interval=0.5, what="session up with the unit's capabilities")
        wait_ping(h1, h2, timeout=60)
        wait_for(lambda: a.remote_macs("vx100") == {h2.mac: b.vtep}, 30, what="remote MAC")
        assert node.data("show peers")["exabgp_restarts"] == 0
    finally:
        lab.cleanup()
