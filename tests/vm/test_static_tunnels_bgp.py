"""`advertise: true` with real daemons (issue 9): two evpnd leaves (ExaBGP, eBGP) and a plain
Linux site behind leaf A.

L2 (GENEVE and gretap): each site's host reaches the host behind leaf B over EVPN, and B's FDB
points each site host's MAC at A (the type-2 A originates for it).

    h1 ─ A ══ uplink ══ B ─ h2
         │ s0 │ s1
        S0    S1 ─ h4 (bridge + `ip link add ... type gretap`)
         └ h3 (bridge + `ip link add ... type geneve`)

L3 (GRE): the site's prefix is a type-5 route A originates; B receives it over BGP, installs it
in its VRF, and a host in B's tenant subnet pings an address of the site through A.

    h1 ─ A (vrf-blue) ══ uplink ══ B (vrf-blue) ─ h2 (10.2.0.0/24)
         │ s0
         S ─ gre1 ─ 10.9.0.1 (10.9.0.0/16)
"""

from __future__ import annotations

import json
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


def test_site_hosts_reach_a_second_leaf_through_the_advertising_gateway():
    """Both layer-2 kinds at once (one set-up: under TCG each daemon start costs seconds): a
    GENEVE site and a gretap site, each its own namespace, bridge and host, both in A's br100."""
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="tadv")
    try:
        a, b = two_leaves(lab)
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        tunnels, sites = [], {}
        for n, kind in enumerate(("geneve", "gretap")):
            s = lab.netns(f"site{n}")
            site_ip = f"10.0.{3 + n}.2"
            lab.link(a.ns, f"s{n}", s, "eth0", f"10.0.{3 + n}.1/30", f"{site_ip}/30")
            # the geneve device's source is the route's: the VTEP (README, "Static tunnels")
            a.ns.ip("route", "add", f"{site_ip}/32", "dev", f"s{n}", "src", a.vtep)
            s.ip("route", "add", a.vtep, "via", f"10.0.{3 + n}.1")
            h = lab.netns(f"h{3 + n}")
            lab.link(h, "eth0", s, "p3")
            h.ip("link", "set", "eth0", "address", host_mac(9, 3 + n))
            h.ip("addr", "add", f"10.100.0.{3 + n}/24", "dev", "eth0")
            if kind == "geneve":
                s.ip("link", "add", "tun0", "type", "geneve", "id", "5001", "remote", a.vtep)
            else:
                s.ip("link", "add", "tun0", "type", "gretap", "remote", a.vtep, "local", site_ip)
            s.ip("link", "add", "br0", "type", "bridge")
            for dev in ("tun0", "p3"):
                s.ip("link", "set", dev, "master", "br0")
            for dev in ("tun0", "br0"):
                s.ip("link", "set", dev, "up")
            tunnels.append({"name": f"site-{kind}", "type": kind, "remote": site_ip,
                            "bridge": "br100", "advertise": True,
                            **({"vni": 5001} if kind == "geneve" else {})})  # fmt: skip
            sites[kind] = (h, f"site-{kind}", host_mac(9, 3 + n))
        for leaf, cfg in (
            (a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}],
                             static_tunnels=tunnels)),
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
        assert a.node is not None
        rows = {r["device"]: r for r in a.node.data("show mtu")["devices"]}
        for kind, (h, device, mac) in sites.items():
            wait_for(lambda h=h: reaches(h, h1.ip), 60, interval=0.5, what=f"{kind} host -> h1")
            wait_for(lambda h=h: reaches(h, h2.ip), 120, interval=0.5,
                     what=f"{kind} host -> h2 (EVPN)")  # fmt: skip
            wait_for(lambda mac=mac: b.remote_macs("vx100").get(mac) == a.vtep, 60,
                     what=f"B's FDB: the {kind} site host's MAC at A")  # fmt: skip
            assert rows[device]["type"] == kind and rows[device]["status"] == "ok", rows
    finally:
        lab.cleanup()


RMAC_A, RMAC_B = "02:ee:00:00:00:01", "02:ee:00:00:00:02"
SITE_PREFIX, SITE_ADDR = "10.9.0.0/16", "10.9.0.1"


def l2vni(vni: int, port: str, svi: str) -> list[dict]:
    """The tenant subnet of one leaf: an L2VNI with an SVI (in the L3VNI's VRF)."""
    return [{"vni": vni, "bridge": f"br{vni}", "access_ports": [port], "svi_address": svi}]


def l3vni(vni: int, rmac: str, **extra) -> list[dict]:
    return [{"vni": 200, "vrf": "vrf-blue", "router_mac": rmac, "l2vnis": [vni], **extra}]


def tx_packets(ns, dev: str) -> int:
    return json.loads(ns.ip("-s", "-j", "link", "show", dev))[0]["stats64"]["tx"]["packets"]


def test_gre_site_prefix_reaches_a_second_leaf_as_type5_and_routes_through_the_gateway():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="tgre")
    try:
        a, b = two_leaves(lab)
        s = lab.netns("site")
        lab.link(a.ns, "s0", s, "eth0", "10.0.3.1/30", "10.0.3.2/30")
        s.ip("route", "add", a.vtep, "via", "10.0.3.1")
        # The site, as README "Static tunnels" gives it: a GRE device to A's VTEP, its network
        # (an address on lo) and the route back to the tenant's subnets into the tunnel.
        s.ip("link", "add", "gre1", "type", "gre", "remote", a.vtep, "local", "10.0.3.2")
        s.ip("link", "set", "gre1", "up")
        s.ip("addr", "add", f"{SITE_ADDR}/16", "dev", "lo")
        s.ip("route", "add", "10.2.0.0/24", "dev", "gre1")
        add_host(lab, a, "h1", "p1", "10.1.0.11", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.2.0.12", host_mac(2, 2))
        h2.ns.ip("route", "add", "default", "via", "10.2.0.1")
        gre = {"name": "site-g", "type": "gre", "remote": "10.0.3.2", "prefixes": [SITE_PREFIX],
               "table": 200, "advertise": True}  # fmt: skip
        for leaf, cfg in (
            (a, evpnd_config(a, [b], l2vni(100, "p1", "10.1.0.1/24"),
                             l3vnis=l3vni(100, RMAC_A), static_tunnels=[gre])),
            # B's subnet as a type-5 too: the site's replies find their way back through A
            (b, evpnd_config(b, [a], l2vni(101, "p2", "10.2.0.1/24"),
                             l3vnis=l3vni(101, RMAC_B, advertise_prefixes=["10.2.0.0/24"]))),
        ):  # fmt: skip
            leaf.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            node = EvpndNode(leaf.ns, cfg)
            lab.on_cleanup(node.remove)
            leaf.node = node
            node.start(wait=False)
        for leaf in (a, b):
            leaf.node.wait_ready(300)  # under TCG the daemon and ExaBGP start slowly
        assert a.node is not None and b.node is not None
        node_a, node_b = a.node, b.node

        def received() -> list[dict]:
            return [r for r in node_b.data("show routes", type=5)["routes"]
                    if r["ip"] == SITE_PREFIX and r["peer"] != "local"]  # fmt: skip

        # B learns the site's prefix over BGP from A: a type-5 in the L3VNI, next hop A
        wait_for(received, 240, interval=1, what="B: the site's type-5 from A")
        route = received()[0]
        assert (route["vni"], route["next_hop"], route["router_mac"]) == (200, a.vtep, RMAC_A)
        mine = node_a.data("show routes", type=5)["routes"]
        assert any(r["ip"] == SITE_PREFIX and r["peer"] == "local" for r in mine), mine
        # ...and installs it in its VRF with evpnd's protocol, towards A over the L3VNI
        wait_for(lambda: SITE_PREFIX in b.ns.ip("route", "show", "vrf", "vrf-blue"), 60,
                 what="B: the site's prefix in vrf-blue")  # fmt: skip
        line = next(ln for ln in b.ns.ip("route", "show", "vrf", "vrf-blue").splitlines()
                    if ln.startswith(SITE_PREFIX))  # fmt: skip
        assert f"via {a.vtep} dev br200" in line and "proto 235" in line, line
        # On A the prefix goes into the tunnel (the tunnel's route, not a type-5's)
        assert f"{SITE_PREFIX} dev site-g proto 235" in a.ns.ip("route", "show", "vrf", "vrf-blue")
        sent = tx_packets(a.ns, "site-g")
        wait_for(lambda: reaches(h2.ns, SITE_ADDR), 120, interval=0.5,
                 what="h2 (behind B) -> the site's 10.9.0.1 through A")  # fmt: skip
        assert tx_packets(a.ns, "site-g") > sent  # the echo requests left A into the tunnel
        rows = {r["device"]: r for r in node_a.data("show mtu")["devices"]}
        assert rows["site-g"]["type"] == "gre" and rows["site-g"]["status"] == "ok"
        assert rows["site-g"]["overlay_mtu"] == 1476  # s0's 1500 - 24
        # show vni: the GRE tunnel under the L3VNI that owns its table
        l3 = node_a.data("show vni", vni=200)["vnis"][0]
        assert l3["tunnels"] == [
            {"name": "site-g", "type": "gre", "remote": "10.0.3.2", "status": "ok"}
        ], l3
    finally:
        lab.cleanup()
