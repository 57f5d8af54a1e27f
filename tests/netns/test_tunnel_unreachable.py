"""A static tunnel whose remote has no route in the underlay (issue 9, bad input), with a full
daemon on this host's kernel (`type: vxlan`; geneve and GRE need the VM tier): it is reported
where a person looks, in `evpnctl show vni` (table, detail and --json: under the L2VNI whose
bridge it joins) and `evpnctl mtu`, and the rest of the daemon keeps working: both VNIs,
including the tunnel's own, carry traffic between two evpnd leaves over BGP. When a route to
the remote appears, a reload reports the tunnel ok.

    h1 (VNI 100) ─ A ══ uplink ══ B ─ h2 (VNI 100)
    h3 (VNI 101) ─┘               └─ h4 (VNI 101)
    A's static tunnel site-far (VNI 5002, bridge br100) -> 192.0.2.99: no route
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import add_host, evpnd_config, host_mac, start_evpnd, two_leaves, wait_ping

pytestmark = pytest.mark.netns

EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))
FAR = "192.0.2.99"  # TEST-NET-1: no route to it until the test adds one
UNREACHABLE = "remote unreachable (no route)"


def vnis(*ports: str) -> list[dict]:
    return [{"vni": vni, "bridge": f"br{vni}", "access_ports": [port]}
            for vni, port in zip((100, 101), ports, strict=True)]  # fmt: skip


def test_unreachable_tunnel_remote_is_reported_and_the_daemon_keeps_working():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="tunr")
    try:
        a, b = two_leaves(lab)
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h3 = add_host(lab, a, "h3", "p3", "10.101.0.3", host_mac(1, 3))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        h4 = add_host(lab, b, "h4", "p4", "10.101.0.4", host_mac(2, 4))
        far = {"name": "site-far", "type": "vxlan", "remote": FAR, "vni": 5002,
               "bridge": "br100"}  # fmt: skip
        node = start_evpnd(lab, a, evpnd_config(a, [b], vnis("p1", "p3"), static_tunnels=[far]))
        start_evpnd(lab, b, evpnd_config(b, [a], vnis("p2", "p4")))
        # the rest works: both VNIs over EVPN, the tunnel's own VNI too
        wait_ping(h1, h2, timeout=45)
        wait_ping(h3, h4, timeout=45)
        assert b.remote_macs("vx100").get(h1.mac) == a.vtep
        assert b.remote_macs("vx101").get(h3.mac) == a.vtep

        # show vni --json: the tunnel and its problem under the VNI whose bridge it joins
        shown = {v["vni"]: v for v in json.loads(node.ctl("show", "vni", "--json").stdout)["vnis"]}
        assert shown[100]["tunnels"] == [
            {"name": "site-far", "type": "vxlan", "remote": FAR, "status": UNREACHABLE}
        ], shown[100]
        assert shown[101]["tunnels"] == [] and shown[100]["local_macs"] == 1
        text = node.ctl("show", "vni").stdout
        print(text)
        row = next(ln for ln in text.splitlines() if "site-far" in ln)
        assert row.split()[:4] == ["100", "site-far", "vxlan", FAR] and UNREACHABLE in row, text
        detail = node.ctl("show", "vni", "100").stdout
        assert f"site-far (vxlan to {FAR}): {UNREACHABLE}" in detail, detail
        # evpnctl mtu: no underlay interface, the status says why
        text = node.ctl("mtu").stdout
        print(text)
        row = next(ln for ln in text.splitlines() if ln.startswith("site-far"))
        assert "(no route)" in row and UNREACHABLE in row, text
        mtu = {d["device"]: d for d in json.loads(node.ctl("mtu", "--json").stdout)["devices"]}
        assert (mtu["site-far"]["underlay_interface"], mtu["site-far"]["status"]) == (
            None, UNREACHABLE
        )  # fmt: skip
        # --probe: reported as having no route, not as a black hole; B's VTEP probed as usual
        probe = subprocess.run(
            a.ns.cmd(EVPNCTL, "-s", str(node.socket), "mtu", "--probe", "--json"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode == 0, probe.stderr
        probes = {p["remote"]: p for p in json.loads(probe.stdout)["probes"]}
        assert (probes[FAR]["no_route"], probes[FAR]["black_hole"]) == (True, False), probes
        assert probes[b.vtep]["passed"] and not probes[b.vtep]["no_route"], probes
        assert mtu["vx100"]["status"] == "ok" and mtu["vx101"]["status"] == "ok"
        problems = node.data("show status")["device_problems"]
        assert f"tunnel site-far: no route to remote {FAR}" in problems, problems
        assert node.proc is not None and node.proc.poll() is None  # still running

        # a route to the remote appears: after a reload the tunnel is ok, nothing else moved
        a.ns.ip("route", "add", f"{FAR}/32", "via", b.vtep)
        node.reload()

        def status() -> str:
            reply = json.loads(node.ctl("show", "vni", "100", "--json").stdout)
            return reply["vnis"][0]["tunnels"][0]["status"]

        wait_for(lambda: status() == "ok", 30, interval=0.5, what="site-far reported ok")
        mtu = {d["device"]: d for d in json.loads(node.ctl("mtu", "--json").stdout)["devices"]}
        assert mtu["site-far"]["underlay_interface"] == "uplink"
        wait_ping(h1, h2, timeout=20)
        wait_ping(h3, h4, timeout=20)
    finally:
        lab.cleanup()
