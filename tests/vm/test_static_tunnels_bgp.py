"""`advertise: true` with real daemons (issue 9): two evpnd leaves (ExaBGP, eBGP) and a plain
Linux site behind leaf A over GENEVE or gretap. The site's host reaches the host behind leaf B
over EVPN, and B's FDB points the site host's MAC at A (the type-2 A originates for it).

    h1 ─ A ══ uplink ══ B ─ h2
         │ s0
         S ─ h3   (bridge + `ip link add ... type geneve|gretap`)
"""

from __future__ import annotations

import os
import subprocess

import pytest

from evpnd.lab.evpnd_node import EvpndNode
from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import add_host, evpnd_config, host_mac, two_leaves

pytestmark = pytest.mark.netns


def reaches(ns, ip: str) -> bool:
    """One ping; under TCG with two daemons starting even spawning it can take seconds, so the
    process gets its own generous timeout (Netns.ping allows 6.5 s)."""
    try:
        res = subprocess.run(ns.cmd("ping", "-c", "1", "-W", "1", ip), capture_output=True,
                             timeout=60)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


@pytest.mark.parametrize("kind", ["geneve", "gretap"])
def test_site_host_reaches_a_second_leaf_through_the_advertising_gateway(kind):
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="tadv")
    try:
        a, b = two_leaves(lab)
        s = lab.netns("site")
        lab.link(a.ns, "s0", s, "eth0", "10.0.3.1/30", "10.0.3.2/30")
        # the geneve device's source is the route's: the VTEP (README, "Static tunnels")
        a.ns.ip("route", "add", "10.0.3.2/32", "dev", "s0", "src", a.vtep)
        s.ip("route", "add", a.vtep, "via", "10.0.3.1")
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        h3 = lab.netns("h3")
        lab.link(h3, "eth0", s, "p3")
        h3.ip("link", "set", "eth0", "address", host_mac(9, 3))
        h3.ip("addr", "add", "10.100.0.3/24", "dev", "eth0")
        if kind == "geneve":
            s.ip("link", "add", "tun0", "type", "geneve", "id", "5001", "remote", a.vtep)
        else:
            s.ip("link", "add", "tun0", "type", "gretap", "remote", a.vtep, "local", "10.0.3.2")
        s.ip("link", "add", "br0", "type", "bridge")
        for dev in ("tun0", "p3"):
            s.ip("link", "set", dev, "master", "br0")
        for dev in ("tun0", "br0"):
            s.ip("link", "set", dev, "up")
        tunnel = {"name": "site-s", "type": kind, "remote": "10.0.3.2", "bridge": "br100",
                  "advertise": True, **({"vni": 5001} if kind == "geneve" else {})}  # fmt: skip
        for leaf, cfg in (
            (a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}],
                             static_tunnels=[tunnel])),
            (b, evpnd_config(b, [a], [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}])),
        ):  # fmt: skip
            node = EvpndNode(leaf.ns, cfg)
            lab.on_cleanup(node.remove)
            leaf.node = node
            node.start(wait=False)
        for leaf in (a, b):
            leaf.node.wait_ready(300)  # under TCG the daemon and ExaBGP start slowly
        # under TCG ExaBGP takes its time
        wait_for(lambda: reaches(h1.ns, h2.ip), 240, interval=0.5, what="h1 -> h2 (EVPN)")
        wait_for(lambda: reaches(h3, h1.ip), 60, interval=0.5, what="h3 -> h1 (tunnel)")
        wait_for(lambda: reaches(h3, h2.ip), 120, interval=0.5, what="h3 -> h2 (EVPN)")
        wait_for(lambda: b.remote_macs("vx100").get(host_mac(9, 3)) == a.vtep, 60,
                 what="B's FDB: the site host's MAC at A")  # fmt: skip
        assert a.node is not None
        rows = {r["device"]: r for r in a.node.data("show mtu")["devices"]}
        assert rows["site-s"]["type"] == kind and rows["site-s"]["status"] == "ok"
    finally:
        lab.cleanup()
