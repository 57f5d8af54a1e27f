"""Derived overlay MTUs, `evpnctl mtu` (+ --probe) and a static VXLAN tunnel to a plain Linux
site, on this host's kernel (issue 9). GENEVE/GRE/gretap need the VM tier (tests/vm/).

    h1 ─ A ══(1400)══ R ══(1400, later 1300)══ B ─ h2        A, B: evpnd leaves (VNI 100)
         │ site0 (1500)                                       R: a plain router
         S ─ h3                                               S: a plain Linux site: bridge +
                                                                 `ip link ... type vxlan` to A
A's uplink is 1400 bytes: its VXLAN devices derive 1350. S reaches A over a 1500 link: the
static tunnel derives 1450. With `advertise: true`, h3 (behind S) reaches h2 (behind B) over
EVPN and B's FDB points h3's MAC at A.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import Leaf, add_host, evpnd_config, host_mac, start_evpnd, wait_ping

pytestmark = pytest.mark.netns
EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))
SITE_VNI = 5001


@pytest.fixture(scope="module")
def fabric():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="mtu")
    try:
        a = Leaf(lab.netns("la"), "10.0.1.1", 65001)
        b = Leaf(lab.netns("lb"), "10.0.2.2", 65002)
        r = lab.netns("r")
        s = lab.netns("site")
        lab.link(a.ns, "uplink", r, "ra", "10.0.1.1/30", "10.0.1.2/30", mtu=1400)
        lab.link(r, "rb", b.ns, "uplink", "10.0.2.1/30", "10.0.2.2/30", mtu=1400)
        lab.link(a.ns, "site0", s, "eth0", "10.0.3.1/30", "10.0.3.2/30")
        r.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        a.ns.ip("route", "add", "10.0.2.0/30", "via", "10.0.1.2")
        b.ns.ip("route", "add", "10.0.1.0/30", "via", "10.0.2.1")
        s.ip("route", "add", "10.0.1.1/32", "via", "10.0.3.1")
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        # The site: a bridge, a VXLAN device towards A's VTEP, h3 on an access port. Plain
        # iproute2, as a site's operator would type it (README, "Static tunnels").
        s.ip("link", "add", "br0", "type", "bridge")
        s.ip("link", "add", "vxa", "type", "vxlan", "id", str(SITE_VNI), "remote", "10.0.1.1",
             "local", "10.0.3.2", "dstport", "4789")  # fmt: skip
        s.ip("link", "set", "vxa", "master", "br0")
        for dev in ("vxa", "br0"):
            s.ip("link", "set", dev, "up")
        h3 = lab.netns("h3")
        lab.link(h3, "eth0", s, "p3")
        s.ip("link", "set", "p3", "master", "br0")
        h3.ip("link", "set", "eth0", "address", host_mac(9, 3))
        h3.ip("addr", "add", "10.100.0.3/24", "dev", "eth0")
        tunnel = {"name": "site-s", "type": "vxlan", "remote": "10.0.3.2", "vni": SITE_VNI,
                  "bridge": "br100", "advertise": True}  # fmt: skip
        start_evpnd(lab, a, evpnd_config(a, [b], [
            {"vni": 100, "bridge": "br100", "access_ports": ["p1"]},
        ], static_tunnels=[tunnel]))  # fmt: skip
        start_evpnd(lab, b, evpnd_config(b, [a], [
            {"vni": 100, "bridge": "br100", "access_ports": ["p2"]},
        ]))  # fmt: skip
        wait_ping(h1, h2, timeout=45)
        yield {"lab": lab, "a": a, "b": b, "r": r, "s": s, "h1": h1, "h2": h2, "h3": h3}
    finally:
        lab.cleanup()


def link(ns, dev: str) -> dict:
    return json.loads(ns.ip("-d", "-j", "link", "show", dev))[0]


def df_ping(src, dst_ip: str, size: int) -> bool:
    """One DF-set echo of an IP packet of `size` bytes (ICMP payload size - 28)."""
    cmd = src.ns.cmd("ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", str(size - 28),
                     dst_ip)  # fmt: skip
    return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0


def test_overlay_mtu_derived_from_the_1400_byte_underlay(fabric):
    a = fabric["a"]
    assert link(a.ns, "vx100")["mtu"] == 1350  # 1400 - 50 (VXLAN over IPv4)
    assert link(a.ns, "site-s")["mtu"] == 1450  # the site's link is 1500
    rows = {d["device"]: d for d in a.node.data("show mtu")["devices"]}
    vx = rows["vx100"]
    assert (vx["underlay_interface"], vx["underlay_mtu"], vx["overlay_mtu"], vx["source"]) == (
        "uplink", 1400, 1350, "derived"
    )  # fmt: skip
    assert vx["overhead"] == {"type": "vxlan", "family": 4, "outer_ip": 20, "udp": 8,
                              "header": 8, "inner_ethernet": 14, "key": 0, "options": 0,
                              "total": 50}  # fmt: skip
    site = rows["site-s"]
    assert (site["type"], site["remote"], site["underlay_interface"], site["overlay_mtu"]) == (
        "vxlan", "10.0.3.2", "site0", 1450
    )  # fmt: skip
    assert site["ownership"] == "created" and site["status"] == "ok"
    text = a.node.ctl("mtu").stdout
    print(text)  # (-s: the README's example)
    assert "ip 20 + udp 8 + vxlan 8 + eth 14 = 50" in text and "uplink 1400" in text
    # the bridge holds ports of 1350 and 1450 bytes: a warning with the numbers
    assert "br100: ports with different MTUs" in text and "site-s 1450" in text, text
    assert "vx100: overlay MTU 1350 < 1500" in text or "VNI devices: overlay MTU 1350" in text


def test_full_size_df_ping_passes_and_one_byte_more_fails(fabric):
    h1, h2 = fabric["h1"], fabric["h2"]
    assert df_ping(h1, h2.ip, 1350)
    assert not df_ping(h1, h2.ip, 1351)


def test_static_vxlan_tunnel_to_a_plain_linux_site(fabric):
    a, b, h1, h2, h3 = fabric["a"], fabric["b"], fabric["h1"], fabric["h2"], fabric["h3"]
    assert link(a.ns, "site-s")["ifalias"] == "evpnd:tunnel=site-s"
    assert link(a.ns, "site-s")["master"] == "br100"
    wait_for(lambda: h3.ping(h1.ip, timeout=0.5), 20, interval=0.2, what="h3 -> h1 (tunnel)")
    # advertise: true: h3's MAC is a type-2 of A, so B points it at A's VTEP and h2 reaches it
    wait_for(lambda: h3.ping(h2.ip, timeout=0.5), 30, interval=0.2, what="h3 -> h2 (EVPN)")
    wait_for(lambda: b.remote_macs("vx100").get(host_mac(9, 3)) == a.vtep, 20,
             what="B's FDB: h3's MAC at A")  # fmt: skip
    routes = a.node.data("show routes", type=2)["routes"]
    assert any(r["mac"] == host_mac(9, 3) and r["peer"] == "local" for r in routes), routes


def test_probe_reports_the_middle_link_smaller_than_the_ends(fabric):
    a, r, b = fabric["a"], fabric["r"], fabric["b"]
    r.ip("link", "set", "rb", "mtu", "1300")  # the ends stay at 1400
    b.ns.ip("link", "set", "uplink", "mtu", "1300")
    try:
        cmd = a.ns.cmd(EVPNCTL, "-s", str(a.node.socket), "mtu", "--probe", "--json")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        probes = {p["remote"]: p for p in json.loads(res.stdout)["probes"]}
        far = probes["10.0.2.2"]
        assert (far["size"], far["passed"], far["black_hole"], far["path_mtu"]) == (
            1400, False, True, 1300
        ), far  # fmt: skip
        site = probes["10.0.3.2"]
        assert (site["size"], site["passed"], site["black_hole"]) == (1500, True, False)
        text = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=120).stdout
        print(text)
        assert "BLACK HOLE" in text and "1300" in text, text
    finally:
        r.ip("link", "set", "rb", "mtu", "1400")
        b.ns.ip("link", "set", "uplink", "mtu", "1400")
