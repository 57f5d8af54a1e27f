"""Operations against a real daemon: evpnctl (table and JSON), metrics, SIGHUP reload.

Leaf A runs evpnd (AS 65001, VTEP 10.0.0.1, VNI 100, metrics on 127.0.0.1 in its namespace);
leaf B runs FRR (AS 65002, VTEP 10.0.0.2, VNI 100). Hosts h1 (behind A) and h2 (behind B).
Leaf C (FRR, AS 65003) is wired to A but only configured as A's peer by a SIGHUP reload.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from evpnd.api.models import REPLIES
from evpnd.lab.frr import Frr, evpn_leaf_conf
from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import (
    Leaf,
    add_host,
    evpnd_config,
    host_mac,
    make_frr_leaf,
    start_evpnd,
    two_leaves,
    wait_ping,
)

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]
METRICS_PORT = 9617
SCRAPE = (
    "import sys, urllib.request; "
    f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}/metrics', "
    "timeout=5).read().decode())"
)


@pytest.fixture(scope="module")
def ops():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="ops")
    try:
        a, b = two_leaves(lab)
        c = Leaf(lab.netns("lc"), "10.0.1.2", 65003)
        lab.link(a.ns, "uplink2", c.ns, "uplink", "10.0.1.1/30", "10.0.1.2/30")
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        make_frr_leaf(lab, b, [a], {100: ["p2"]})
        frr_c = Frr(c.ns, evpn_leaf_conf(c.asn, c.vtep, [("10.0.1.1", a.asn)])).start()
        lab.on_cleanup(frr_c.remove)
        cfg = evpnd_config(
            a, [b], [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}],
            metrics={"enabled": True, "port": METRICS_PORT},
        )  # fmt: skip
        node = start_evpnd(lab, a, cfg)
        yield {"lab": lab, "a": a, "b": b, "c": c, "h1": h1, "h2": h2, "node": node,
               "frr_c": frr_c}  # fmt: skip
    finally:
        lab.cleanup()


def ctl(node, *args: str) -> str:
    return node.ctl(*args).stdout


def ctl_json(node, *args: str):
    return json.loads(node.ctl(*args, "--json").stdout)


def peer_state(node, addr: str) -> str:
    peers = ctl_json(node, "show", "peers")["peers"]
    return next(p["state"] for p in peers if p["address"] == addr)


def scrape(ops) -> dict[str, float]:
    text = ops["a"].ns.run(["python3", "-c", SCRAPE])
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def established(ops):
    node, b = ops["node"], ops["b"]
    wait_for(lambda: peer_state(node, b.vtep) == "up", 60, interval=0.5, what="session A-B up")


def test_metrics_move_with_traffic(ops):
    established(ops)
    b, h2 = ops["b"], ops["h2"]
    before = scrape(ops)
    assert before[f'evpnd_bgp_session_up{{peer="{b.vtep}"}}'] == 1.0
    received = f'evpnd_bgp_nlri_received_total{{peer="{b.vtep}"}}'
    wait_ping(ops["h1"], h2, timeout=60)
    before = scrape(ops)
    # New traffic: a host appears behind B; FRR learns and advertises its MAC.
    h3 = add_host(ops["lab"], b, "h3", "p3", "10.100.0.3", host_mac(2, 3))
    b.ns.ip("link", "set", "p3", "master", "br100")
    wait_ping(h3, ops["h1"], timeout=60)
    wait_for(lambda: scrape(ops)[received] > before[received], 30, what="received to grow")
    after = scrape(ops)
    assert after['evpnd_bgp_advertised_paths{type="2"}'] >= 1  # h1's MAC
    assert after['evpnd_bgp_advertised_paths{type="3"}'] == 1
    assert after["evpnd_kernel_operations_total"] > before.get("evpnd_kernel_operations_total", 0)
    assert after["evpnd_exabgp_running"] == 1.0
    assert "evpnd_exabgp_restarts_total" in after


def test_every_command_in_table_and_json(ops):
    established(ops)
    node, a, b, h1, h2 = ops["node"], ops["a"], ops["b"], ops["h1"], ops["h2"]
    wait_ping(h1, h2, timeout=60)

    def remote_mac_known():
        return any(
            r["mac"] == h2.mac for r in ctl_json(node, "show", "routes", "--type", "2")["routes"]
        )

    wait_for(remote_mac_known, 30, what="h2's MAC in A's RIB")

    def local_mac_learned():
        macs = ctl_json(node, "show", "macs")["macs"]
        return any(m["mac"] == h1.mac and m["type"] == "local" for m in macs)

    wait_for(local_mac_learned, 30, what="h1's MAC learned on A")
    checks = {
        ("show", "routes"): [f"Route Distinguisher: {a.vtep}:1", h2.mac],
        ("show", "routes", "--type", "3", "--vni", "100"): [b.vtep, "Displayed 2 paths"],
        ("show", "routes", "--rd", f"{a.vtep}:1"): [h1.mac],
        ("show", "peers"): [b.vtep, "Total peers 1, established 1"],
        ("show", "vni"): ["br100", "vx100"],
        ("show", "vni", "100"): ["VNI: 100 (L2)", f"    {b.vtep}"],
        ("show", "macs"): [h1.mac, h2.mac],
        ("show", "macs", "--vni", "100", "--duplicate"): ["No MACs."],
        ("show", "status"): ["1/1 peers established"],
        ("explain", h2.mac): [f"fdb {h2.mac} -> {b.vtep}", f"peer {b.vtep}"],
        ("explain", h1.mac, "--vni", "100"): ["local (evpnd)"],
        ("clear", "dup-addr", "--vni", "100"): ["0 MACs released"],
    }
    cmds = {("show", "routes"): "show routes", ("show", "peers"): "show peers",
            ("show", "vni"): "show vni", ("show", "macs"): "show macs",
            ("show", "status"): "show status", ("explain",): "explain",
            ("clear", "dup-addr"): "clear dup-addr"}  # fmt: skip
    for argv, expected in checks.items():
        text = ctl(node, *argv)
        for want in expected:
            assert want in text, f"evpnctl {' '.join(argv)}: {want!r} not in\n{text}"
        data = ctl_json(node, *argv)
        cmd = cmds.get(argv[:2]) or cmds[argv[:1]]
        REPLIES[cmd].model_validate(data)
    macs = {m["mac"]: m for m in ctl_json(node, "show", "macs")["macs"]}
    assert macs[h1.mac]["type"] == "local"
    assert (macs[h2.mac]["type"], macs[h2.mac]["vtep"]) == ("remote", b.vtep)
    routes = ctl_json(node, "show", "routes", "--type", "2")["routes"]
    assert any(r["mac"] == h2.mac and r["peer"] == b.vtep and "best" in r["flags"] for r in routes)
    # The kernel converges on what the core wants: an empty diff, in both forms.
    wait_for(lambda: ctl_json(node, "show", "kernel", "--diff")["converged"], 30,
             what="kernel diff empty")  # fmt: skip
    assert ctl(node, "show", "kernel", "--diff").strip() == (
        "Kernel matches the wanted state (converged)."
    )
    # Errors: one line, non-zero.
    bad = node.ctl("show", "vni", "4242", check=False)
    assert (bad.returncode, bad.stderr) == (1, "evpnctl: unknown VNI 4242\n")


def frr_session(frr: Frr, addr: str) -> dict:
    return frr.json(f"show bgp neighbors {addr} json").get(addr, {})


def test_sighup_adds_vni_and_peer_without_flapping(ops):
    established(ops)
    node, a, b, c = ops["node"], ops["a"], ops["b"], ops["c"]
    wait_for(lambda: frr_session(b.frr, a.vtep).get("bgpState") == "Established", 30,
             what="FRR B sees A established")  # fmt: skip
    before = frr_session(b.frr, a.vtep)
    assert not a.ns.ip("link", "show", "vx200", check=False)
    node.config["l2vnis"] = [*node.config["l2vnis"], {"vni": 200, "bridge": "br200"}]
    node.config["peers"] = [*node.config["peers"],
                            {"address": c.vtep, "remote_as": c.asn, "hold_time": 9}]  # fmt: skip
    node.write_config()
    os.kill(node.proc.pid, signal.SIGHUP)
    wait_for(lambda: ctl_json(node, "show", "status")["reloads"] == 1, 30, what="reload")
    wait_for(lambda: peer_state(node, c.vtep) == "up", 60, interval=0.5, what="new peer up")
    for dev in ("vx200", "br200"):
        wait_for(lambda d=dev: a.ns.ip("link", "show", d, check=False), 20, what=f"{dev} exists")
    assert [v["vni"] for v in ctl_json(node, "show", "vni")["vnis"]] == [100, 200]
    time.sleep(1.1)  # FRR's uptime has a granularity of one second
    after = frr_session(b.frr, a.vtep)
    assert after["bgpState"] == "Established"
    assert after["connectionsEstablished"] == before["connectionsEstablished"]
    assert after["connectionsDropped"] == before["connectionsDropped"]
    # FRR derives the epoch from now - uptime at each query: equal to within rounding.
    assert abs(after["bgpTimerUpEstablishedEpoch"] - before["bgpTimerUpEstablishedEpoch"]) <= 1
    assert after["bgpTimerUpMsec"] > before["bgpTimerUpMsec"]  # the same session, older now
    assert peer_state(node, b.vtep) == "up"


def test_sighup_with_a_broken_config_changes_nothing(ops):
    node, a, b = ops["node"], ops["a"], ops["b"]
    established(ops)
    reloads = ctl_json(node, "show", "status")["reloads"]
    before = frr_session(b.frr, a.vtep)
    good = dict(node.config)
    node.config["l2vnis"] = [*node.config["l2vnis"], {"vni": 100, "bridge": "brdup"}]
    node.write_config()
    try:
        os.kill(node.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload_rejected" in node.log(), 20, what="reload rejected in the log")
        assert node.proc.poll() is None
        assert ctl_json(node, "show", "status")["reloads"] == reloads
        assert peer_state(node, b.vtep) == "up"
        after = frr_session(b.frr, a.vtep)
        assert after["connectionsEstablished"] == before["connectionsEstablished"]
    finally:
        node.config = good
        node.write_config()
