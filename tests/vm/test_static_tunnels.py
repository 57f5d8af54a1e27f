"""Static GENEVE/gretap/GRE tunnels (issue 9) against a plain Linux site and Open vSwitch, on
the full kernel. Each leaf is a namespace with a Dataplane whose desired state is given by hand
(as tests/vm/test_vrf_traffic.py does): the BGP half of `advertise` (a site's MAC as a type-2
from the gateway, received by another evpnd leaf) runs on the host tier with a static `vxlan`
tunnel and two full daemons (tests/netns/test_tunnels_mtu.py); here the dataplane half: the
gateway reports the site's MAC as local only with `advertise: true`, and a second leaf whose
FDB points the MAC at the gateway reaches the site through it.

    h1 ─ L1 (gateway) ══ u0 ══ L2 ─ h2
         │ s0 (underlay to the site)
         S (plain `ip link` site, or OVS) ─ h3
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import FDB, FLOOD, RMAC, ROUTE, DesiredState, RouteNextHop
from evpnd.core.events import LocalMac
from evpnd.dataplane import Dataplane
from evpnd.lab.netns import wait_for
from tests.collect import collect
from tests.netns.test_dataplane_traffic import host, ping

pytestmark = pytest.mark.netns

H1, H2, H3 = "02:aa:00:00:01:01", "02:aa:00:00:02:01", "02:aa:00:00:09:03"
SITE_VNI = 5001


def link(ns, dev: str) -> dict:
    return json.loads(ns.ip("-d", "-j", "link", "show", dev))[0]


def l2_config(vtep: str, tunnels: list[dict]):
    return parse_config({
        "router_id": "10.0.0.1" if ":" in vtep else vtep, "asn": 65001, "vtep": vtep,
        "sweep_hold_time": 0,
        "l2vnis": [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}],
        "static_tunnels": tunnels,
    })  # fmt: skip


async def program(dp: Dataplane, d: DesiredState, fdb: dict[str, str], flood: set[str]) -> None:
    d.fdb[100] = dict(fdb)
    d.flood[100] = set(flood)
    d.dirty |= {(FDB, 100, m) for m in fdb} | {(FLOOD, 100, v) for v in flood}
    dp.wanted_changed()
    await dp.idle()


def underlay(lab, v6: bool):
    """L1, L2, the site S; L1-L2 on u0 (the EVPN underlay, IPv4), L1-S on s0 (IPv4, or IPv6
    only). Returns (l1, l2, s, vteps, site address, the address the site names as remote)."""
    l1, l2, s = lab.netns("l1"), lab.netns("l2"), lab.netns("site")
    lab.link(l1, "u0", l2, "u0", "10.0.0.1/24", "10.0.0.2/24")
    vteps = ("10.0.0.1", "10.0.0.2")
    if v6:
        lab.link(l1, "s0", s, "eth0", "fd00:3::1/64", "fd00:3::2/64")
        wait_for(lambda: not any("tentative" in ns.ip("-6", "addr") for ns in (l1, s)), 20,
                 what="IPv6 duplicate address detection")  # fmt: skip
        return l1, l2, s, vteps, "fd00:3::2", "fd00:3::1"
    lab.link(l1, "s0", s, "eth0", "10.0.3.1/30", "10.0.3.2/30")
    # A geneve device has no local address: its packets leave with the route's source, which
    # must be the VTEP the site's side names as remote (README, "Static tunnels").
    l1.ip("route", "add", "10.0.3.2/32", "dev", "s0", "src", "10.0.0.1")
    s.ip("route", "add", "10.0.0.1", "via", "10.0.3.1")
    return l1, l2, s, vteps, "10.0.3.2", "10.0.0.1"


def plain_site(s, kind: str, gateway: str, site_addr: str, h3_port: str = "p3") -> None:
    """The site's side, as README "Static tunnels" gives it."""
    if kind == "geneve":
        s.ip("link", "add", "tun0", "type", "geneve", "id", str(SITE_VNI), "remote", gateway)
    elif ":" in gateway:
        s.ip("link", "add", "tun0", "type", f"ip6{kind}", "remote", gateway, "local", site_addr,
             "encaplimit", "none")  # fmt: skip
    else:
        s.ip("link", "add", "tun0", "type", kind, "remote", gateway, "local", site_addr)
    s.ip("link", "add", "br0", "type", "bridge")
    for dev in ("tun0", h3_port):
        s.ip("link", "set", dev, "master", "br0")
    for dev in ("tun0", "br0"):
        s.ip("link", "set", dev, "up")


@pytest.mark.parametrize(
    "kind,v6,advertise,overlay",
    [
        ("geneve", False, True, 1450),
        ("gretap", False, False, 1462),
        ("geneve", True, True, 1430),
        ("gretap", True, True, 1442),  # ip6gretap, made with encaplimit none: 58 bytes
    ],
)
async def test_l2_tunnel_to_a_plain_linux_site(lab, kind, v6, advertise, overlay):
    l1, l2, s, (vtep1, vtep2), site, gateway = underlay(lab, v6)
    host(lab, l1, "h1", "p1", H1, "10.1.0.11")
    h2 = host(lab, l2, "h2", "p1", H2, "10.1.0.12")
    h3 = host(lab, s, "h3", "p3", H3, "10.1.0.13")
    plain_site(s, kind, gateway, site)
    tunnel = {"name": "site-s", "type": kind, "remote": site, "bridge": "br100",
              "advertise": advertise}  # fmt: skip
    if v6:  # the EVPN VTEP is IPv4; towards the site this leaf is its IPv6 address
        tunnel["local"] = gateway
    if kind == "geneve":
        tunnel["vni"] = SITE_VNI
    events1: list = []
    d1, d2 = DesiredState(), DesiredState()
    dp1 = Dataplane(l2_config(vtep1, [tunnel]), collect(events1), netns=l1.name)
    dp2 = Dataplane(l2_config(vtep2, []), lambda e: None, netns=l2.name)
    await dp1.start(d1)
    await dp2.start(d2)
    try:
        assert dp1.stats()["device_problems"] == []
        dev = link(l1, "site-s")
        assert dev["linkinfo"]["info_kind"] == (f"ip6{kind}" if v6 and kind != "geneve" else kind)
        assert dev["ifalias"] == "evpnd:tunnel=site-s" and dev["master"] == "br100"
        assert dev["mtu"] == overlay  # the s0 link's 1500 - the encapsulation
        mtu = {r["device"]: r for r in dp1.mtu()["devices"]}["site-s"]
        assert (mtu["underlay_interface"], mtu["source"]) == ("s0", "derived")
        assert await ping(h3, "10.1.0.11")  # site host <-> gateway's host over the tunnel
        # The site's MAC is local to the gateway only with advertise: true
        site_local = [e for e in events1 if isinstance(e, LocalMac) and e.mac == H3 and e.present]
        assert bool(site_local) == advertise, events1
        # A second leaf whose FDB points the site's MAC at the gateway (what the type-2 of an
        # advertised MAC makes it install) reaches the site through it.
        await program(dp1, d1, {H2: vtep2}, {vtep2})
        await program(dp2, d2, {H1: vtep1, H3: vtep1}, {vtep1})
        assert await ping(h2, "10.1.0.13")
        assert H3 in l2.run(["bridge", "fdb", "show", "dev", "vx100"])
        # Drift: a person deletes the tunnel; the next set-up makes it again
        l1.ip("link", "del", "site-s")
        await dp1._kernel_resetup()
        assert link(l1, "site-s")["ifalias"] == "evpnd:tunnel=site-s"
        # Removed on reload when it leaves the configuration
        await dp1.reconfigure(l2_config(vtep1, []))
        assert "site-s" not in l1.ip("-o", "link")
    finally:
        await dp1.stop()
        await dp2.stop()


def ovs(s, rundir: str, *args: str) -> str:
    return s.run(["ovs-vsctl", f"--db=unix:{rundir}/db.sock", *args])


# Debian installs the switch daemon outside PATH
OVS_VSWITCHD = shutil.which("ovs-vswitchd") or "/usr/lib/openvswitch-switch/ovs-vswitchd"


async def test_geneve_to_open_vswitch(lab, tmp_path):
    """OVS (kernel datapath) in the site's namespace: a bridge with a type=geneve port to evpnd
    and h3 on a veth port; h3 pings h1 behind evpnd."""
    l1, _l2, s, (vtep1, _), site, _gw = underlay(lab, False)
    h1 = host(lab, l1, "h1", "p1", H1, "10.1.0.11")
    h3 = host(lab, s, "h3", "p3", H3, "10.1.0.13")
    run = tmp_path / "ovs"
    run.mkdir()
    env = {**os.environ, "OVS_RUNDIR": str(run), "OVS_DBDIR": str(run), "OVS_LOGDIR": str(run)}
    subprocess.run(["ovsdb-tool", "create", f"{run}/conf.db",
                    "/usr/share/openvswitch/vswitch.ovsschema"], check=True)  # fmt: skip
    subprocess.run(s.cmd("ovsdb-server", f"{run}/conf.db", f"--remote=punix:{run}/db.sock",
                         f"--pidfile={run}/ovsdb-server.pid", "--detach",
                         f"--log-file={run}/ovsdb-server.log"), check=True, env=env)  # fmt: skip
    pids = [run / "ovsdb-server.pid"]
    try:
        ovs(s, str(run), "--no-wait", "init")
        subprocess.run(s.cmd(OVS_VSWITCHD, f"unix:{run}/db.sock",
                             f"--pidfile={run}/ovs-vswitchd.pid", "--detach",
                             f"--log-file={run}/ovs-vswitchd.log"), check=True, env=env,
                       timeout=120)  # fmt: skip
        pids.append(run / "ovs-vswitchd.pid")
        ovs(s, str(run), "--timeout=60", "add-br", "br-s", "--", "set", "bridge", "br-s",
            "datapath_type=system")  # fmt: skip
        ovs(s, str(run), "--timeout=60", "add-port", "br-s", "p3")
        ovs(s, str(run), "--timeout=60", "add-port", "br-s", "gen0", "--", "set", "interface",
            "gen0", "type=geneve", f"options:remote_ip={vtep1}",
            f"options:key={SITE_VNI}")  # fmt: skip
        s.ip("link", "set", "br-s", "up")
        tunnel = {"name": "site-ovs", "type": "geneve", "remote": site, "vni": SITE_VNI,
                  "bridge": "br100"}  # fmt: skip
        dp = Dataplane(l2_config(vtep1, [tunnel]), lambda e: None, netns=l1.name)
        await dp.start(DesiredState())
        try:
            assert dp.stats()["device_problems"] == []
            ok = False
            for _ in range(10):  # OVS sets its datapath flows up on the first packets
                if await ping(h3, "10.1.0.11", count=1):
                    ok = True
                    break
            assert ok, (run / "ovs-vswitchd.log").read_text()[-2000:]
            assert "geneve" in s.run(["ovs-vsctl", f"--db=unix:{run}/db.sock", "show"])
        finally:
            await dp.stop()
    finally:
        for pid_file in reversed(pids):  # our own daemons, by their pid files
            try:
                os.kill(int(pid_file.read_text().strip()), 15)
            except (OSError, ValueError):
                pass
        _ = h1


RMAC1, RMAC2 = "02:ee:00:00:00:01", "02:ee:00:00:00:02"


def vrf_config(vtep: str, vni: int, svi: str, rmac: str, tunnels: list[dict]):
    return parse_config({
        "router_id": vtep, "asn": 65001, "vtep": vtep, "sweep_hold_time": 0,
        "l2vnis": [{"vni": vni, "bridge": f"br{vni}", "access_ports": ["p1"],
                    "svi_address": svi}],
        "l3vnis": [{"vni": 200, "vrf": "vrf-blue", "router_mac": rmac, "l2vnis": [vni]}],
        "static_tunnels": tunnels,
    })  # fmt: skip


async def test_gre_l3_routed_through_the_gateway_leaf(lab):
    """h2 (10.2.0.0/24 behind L2) pings 10.9.0.1 at a GRE site behind L1: L2 routes the
    site's prefix to L1 over the L3VNI (the type-5 L1 advertises, given by hand here: the
    dataplane half; tests/vm/test_static_tunnels_bgp.py has two daemons exchange it over BGP),
    L1's VRF table sends it into the GRE tunnel."""
    l1, l2, s, (vtep1, vtep2), site, _gw = underlay(lab, False)
    h1 = host(lab, l1, "h1", "p1", H1, "10.1.0.11")
    h2 = host(lab, l2, "h2", "p1", H2, "10.2.0.12")
    h2.ip("route", "add", "default", "via", "10.2.0.1")
    s.ip("link", "add", "gre1", "type", "gre", "remote", vtep1, "local", site)
    s.ip("link", "set", "gre1", "up")
    s.ip("addr", "add", "10.9.0.1/16", "dev", "lo")
    s.ip("route", "add", "10.2.0.0/24", "dev", "gre1")
    gre = {"name": "site-g", "type": "gre", "remote": site, "prefixes": ["10.9.0.0/16"],
           "table": 200, "advertise": True}  # fmt: skip
    sides = []
    for leaf, vtep, vni, svi, rmac, tunnels in (
        (l1, vtep1, 100, "10.1.0.1/24", RMAC1, [gre]),
        (l2, vtep2, 101, "10.2.0.1/24", RMAC2, []),
    ):
        leaf.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        d = DesiredState()
        dp = Dataplane(vrf_config(vtep, vni, svi, rmac, tunnels), lambda e: None,
                       netns=leaf.name)  # fmt: skip
        await dp.start(d)
        assert dp.stats()["device_problems"] == []
        sides.append((d, dp))
    try:
        dev = link(l1, "site-g")
        assert dev["linkinfo"]["info_kind"] == "gre" and dev["master"] == "vrf-blue"
        assert dev["mtu"] == 1476  # 1500 - 24
        assert "10.9.0.0/16 dev site-g proto 235" in l1.ip("route", "show", "vrf", "vrf-blue")
        for (d, dp), prefix, vtep, rmac in (
            (sides[0], "10.2.0.0/24", vtep2, RMAC2),
            (sides[1], "10.9.0.0/16", vtep1, RMAC1),
        ):
            d.routes[200] = {prefix: RouteNextHop(vtep, rmac)}
            d.rmacs[200] = {vtep: rmac}
            d.dirty |= {(ROUTE, 200, prefix), (RMAC, 200, vtep)}
            dp.wanted_changed()
            await dp.idle()
        assert await ping(h2, "10.9.0.1")
        # the full pass leaves the tunnel's route alone (it is not a type-5 route)
        await sides[0][1].reconcile_all()
        assert "10.9.0.0/16 dev site-g proto 235" in l1.ip("route", "show", "vrf", "vrf-blue")
        assert all(dp.stats()["errors"] == 0 for _d, dp in sides)
    finally:
        for _d, dp in sides:
            await dp.stop()
        _ = h1
