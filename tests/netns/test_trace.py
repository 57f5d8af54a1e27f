"""`evpnctl trace` on a real fabric: two evpnd leaves.

VNI 100: h1 (A) and h2 (B); B has an SVI so it learns h2's IP and advertises its MAC/IP route.
VNI 300: h5 behind B, but B exports VNI 300 with RT 65002:999, which A imports into no VNI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import add_host, evpnd_config, host_mac, start_evpnd, two_leaves, wait_ping

pytestmark = pytest.mark.netns
EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))


@pytest.fixture(scope="module")
def fabric():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="trc")
    try:
        a, b = two_leaves(lab)
        h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        h5 = add_host(lab, b, "h5", "p5", "10.100.0.5", host_mac(2, 5))
        start_evpnd(lab, a, evpnd_config(a, [b], [
            {"vni": 100, "bridge": "br100", "access_ports": ["p1"]},
            {"vni": 300, "bridge": "br300"},
        ]))  # fmt: skip
        start_evpnd(lab, b, evpnd_config(b, [a], [
            {"vni": 100, "bridge": "br100", "access_ports": ["p2"],
             "svi_address": "10.100.0.254/24"},
            {"vni": 300, "bridge": "br300", "access_ports": ["p5"],
             "export_rts": ["65002:999"]},
        ]))  # fmt: skip
        wait_ping(h1, h2, timeout=45)
        # B resolves h2 on its SVI: evpnd advertises h2's MAC/IP, A learns h2's IP
        wait_for(lambda: b.ns.ping(h2.ip, timeout=0.5) and a.node.data(
            "explain", target=h2.ip)["vnis"], 20, what="h2's IP known on A")  # fmt: skip
        h5.ns.ping("10.100.0.99", timeout=0.3)  # h5 speaks: B learns its MAC
        wait_for(lambda: "received from" in (a.node.data("explain", target=h5.mac).get(
            "why_not") or ""), 20, what="h5's route received on A")  # fmt: skip
        yield {"lab": lab, "a": a, "b": b, "h1": h1, "h2": h2, "h5": h5}
    finally:
        lab.cleanup()


@pytest.fixture(autouse=True)
def h2_ip_known(fabric):
    """Each test starts with h2's IP known on A: B learns it from its SVI's neighbour entry,
    which ages out when nothing talks to h2 (a slow, loaded run), and then B withdraws it."""
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    wait_for(lambda: b.ns.ping(h2.ip, timeout=0.5) and a.node.data(
        "explain", target=h2.ip)["vnis"], 30, what="h2's IP known on A")  # fmt: skip


def trace(leaf, *args: str) -> subprocess.CompletedProcess:
    cmd = leaf.ns.cmd(EVPNCTL, "-s", str(leaf.node.socket), "trace", *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_healthy_path_ends_in_ok_with_rtt(fabric):
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    res = trace(a, h2.ip)
    assert res.returncode == 0, res.stdout + res.stderr
    last = res.stdout.splitlines()[-1]
    assert last.startswith(f"ok: {h2.ip} reached, rtt ") and last.endswith(" ms"), res.stdout
    assert f"probe left uplink encapsulated for {b.vtep} in VNI 100" in res.stdout
    rep = json.loads(trace(a, h2.ip, "--json").stdout)
    assert rep["ok"], rep
    assert rep["ok"] and rep["rtt_ms"] > 0 and rep["failed_step"] is None
    # the probe port and namespace are gone
    assert "evtr" not in a.ns.run(["ip", "-o", "link"])
    assert "evtrace-" not in subprocess.run(["ip", "netns"], capture_output=True,
                                            text=True).stdout  # fmt: skip


def test_wrong_rt_names_the_rt_and_the_vnis(fabric):
    a, b, h5 = fabric["a"], fabric["b"], fabric["h5"]
    res = trace(a, h5.mac)
    assert res.returncode == 1, res.stdout + res.stderr
    last = res.stdout.splitlines()[-1]
    want = f"failed at import: route received from {b.vtep} but its RT 65002:999 imports into "
    assert last.startswith(want + "no VNI (VNIs here import: 100: "), last
    assert "300: " in last


def test_remote_flood_entry_deleted_gives_no_reply(fabric):
    """B's flood entry towards A deleted while B's evpnd is frozen (so it cannot put it back):
    h2's ARP for the probe address never reaches A, so the probe left correctly but gets no
    reply, and trace says where to look."""
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    assert b.node.proc is not None
    os.kill(b.node.proc.pid, signal.SIGSTOP)
    try:
        b.ns.run(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx100", "dst", a.vtep])
        h2.ns.run(["ip", "neigh", "flush", "dev", "eth0"], check=False)
        res = trace(a, h2.ip)
    finally:
        os.kill(b.node.proc.pid, signal.SIGCONT)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"probe left uplink encapsulated for {b.vtep} in VNI 100" in res.stdout
    assert res.stdout.splitlines()[-1].startswith(f"failed at reply: no reply from {h2.ip}")
    wait_for(lambda: a.vtep in b.flood("vx100"), 10, what="B repairs its flood entry")
    last = {}

    def healthy() -> bool:
        last["res"] = trace(a, h2.ip)
        return last["res"].returncode == 0

    try:
        wait_for(healthy, 30, 1, what="trace ok again")
    except TimeoutError:
        pytest.fail("trace not ok after the repair:\n" + last["res"].stdout)


def test_unknown_target(fabric):
    res = trace(fabric["a"], "02:bb:00:00:00:01")
    assert res.returncode == 1
    assert res.stdout == "failed at route: no route received for 02:bb:00:00:00:01\n"
    res = trace(fabric["a"], "10.100.0.99")
    assert res.returncode == 1
    assert res.stdout == "failed at route: no route received for 10.100.0.99\n"


def test_full_size_probe_dropped_names_the_mtu(fabric):
    """The underlay link's far end at MTU 1400: small probes pass, a 1450-byte DF probe (what
    the 1450-byte VXLAN device admits) needs 1500-byte underlay packets and is dropped."""
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    b.ns.ip("link", "set", "uplink", "mtu", "1400")
    try:
        res = trace(a, h2.ip, "--size", "1450")
    finally:
        b.ns.ip("link", "set", "uplink", "mtu", "1500")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "ok   reply" in res.stdout, res.stdout
    last = res.stdout.splitlines()[-1]
    assert last.startswith("failed at size: full-size probe dropped (MTU): 1450-byte packets "
                           "with DF; vx100 MTU 1450, a 1464-byte frame needs 1500-byte "
                           "underlay packets"), last  # fmt: skip
    assert trace(a, h2.ip, "--size", "1450").returncode == 0


def test_local_flood_entry_missing_is_named(fabric):
    """evpnd puts a deleted flood entry back at once, so the kernel step is checked with A's
    evpnd frozen: the same function trace runs, in A's namespace, against A's kernel."""
    a, b = fabric["a"], fabric["b"]
    assert a.node.proc is not None
    os.kill(a.node.proc.pid, signal.SIGSTOP)
    try:
        a.ns.run(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx100", "dst", b.vtep])
        code = ("from evpnd.capture.trace import Report, kernel_check, _Stop\n"
                "r = Report('x')\n"
                "try:\n"
                f"    kernel_check(r, 'vx100', None, '{b.vtep}')\n"
                "except _Stop:\n"
                "    print(r.failed_step, r.cause)\n")  # fmt: skip
        out = a.ns.run([sys.executable, "-c", code])
    finally:
        os.kill(a.node.proc.pid, signal.SIGCONT)
    assert out.startswith(f"flood flood entry 00:00:00:00:00:00 dst {b.vtep} missing on vx100"), out
    wait_for(lambda: b.vtep in a.flood("vx100"), 10, what="A repairs its flood entry")


def last_line(res: subprocess.CompletedProcess) -> str:
    assert res.stdout, res.stderr
    return res.stdout.splitlines()[-1]


def test_remote_host_down_gives_no_reply(fabric):
    """h2 hangs (its link stays up, so B keeps its MAC and route; it answers nothing: an input
    policy of drop in its namespace). The probe leaves for B correctly (A's ARP suppression
    still knows h2), nothing answers. (With h2's link down B withdraws the route at once and
    trace says "no route received", which test_unknown_target covers.)"""
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    h2.ns.run(["nft", "add", "table", "inet", "hung"])
    try:
        h2.ns.run(["nft", "add", "chain", "inet", "hung", "in",
                   "{ type filter hook input priority 0 ; policy drop ; }"])  # fmt: skip
        res = trace(a, h2.ip)
    finally:
        h2.ns.run(["nft", "delete", "table", "inet", "hung"])
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"probe left uplink encapsulated for {b.vtep} in VNI 100" in res.stdout
    assert last_line(res).startswith(f"failed at reply: no reply from {h2.ip} (the remote side")
    wait_for(lambda: trace(a, h2.ip).returncode == 0, 30, 1, what="trace ok again")


def test_bridge_firewall_probe_not_seen_on_the_wire(fabric):
    """A bridge-family nftables rule on A drops frames towards vx100: the path and the kernel
    entries are right, but nothing leaves on the underlay, and trace says what may drop it."""
    a, h2 = fabric["a"], fabric["h2"]
    table = "trace_test_drop"
    a.ns.run(["nft", "add", "table", "bridge", table])
    try:
        a.ns.run(["nft", "add", "chain", "bridge", table, "forward_drop",
                  "{ type filter hook forward priority 0 ; }"])  # fmt: skip
        a.ns.run(["nft", "add", "rule", "bridge", table, "forward_drop", "oifname", "vx100",
                  "drop"])  # fmt: skip
        res = trace(a, h2.ip)
    finally:
        a.ns.run(["nft", "delete", "table", "bridge", table])
    assert res.returncode == 1, res.stdout + res.stderr
    assert "ok   kernel" in res.stdout and "ok   flood" in res.stdout, res.stdout
    assert last_line(res) == (f"failed at wire: probe not seen on the wire: nothing left uplink "
                              f"in VNI 100 for {h2.ip} (nftables bridge tables {table} may "
                              "drop it)")  # fmt: skip


def test_foreign_fdb_entry_no_kernel_entry_with_diff(fabric):
    """A person replaces evpnd's FDB entry for h2's MAC (static, towards another VTEP): evpnd
    leaves it alone, trace names the missing entry and the diff calls it a conflict."""
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    a.ns.run(["bridge", "fdb", "replace", h2.mac, "dev", "vx100", "self", "dst", "10.0.0.99",
              "static"])  # fmt: skip
    try:
        # evpnd has seen it (its mirror is updated from netlink events)
        wait_for(lambda: any(e["key"] == h2.mac and e["problem"] == "conflict" for e in
                             a.node.data("show kernel diff")["entries"]), 10,
                 what="the conflict in show kernel --diff")  # fmt: skip
        res = trace(a, h2.ip)
    finally:
        a.ns.run(["bridge", "fdb", "del", h2.mac, "dev", "vx100", "self"], check=False)
        wait_for(lambda: a.remote_macs("vx100").get(h2.mac) == b.vtep, 15,
                 what="entry repaired")  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    last = last_line(res)
    assert last.startswith(f"failed at kernel: no kernel entry: {h2.mac} dst {b.vtep} missing "
                           "on vx100 (has 10.0.0.99); show kernel --diff: "), last  # fmt: skip
    assert f" conflict, wanted {b.vtep}, kernel - (an entry evpnd did not make" in last


def test_stale_arp_answer_probe_leaves_towards_another_vtep(fabric):
    """ARP suppression answering for a moved IP: a stale, hand-made neighbour entry on A's
    bridge says h2's IP is at an old MAC, which the FDB sends to another VTEP (10.0.0.99). The
    probe is encapsulated for that VTEP; trace names it and the neighbour entry behind it.

    Known to fail about one run in three: evpnd sometimes overwrites the hand-made neighbour
    while the probe port joins the bridge (the failure message shows the entry before and after
    the trace: proto static, then evpnd's extern_learn proto 235), which breaks DESIGN's rule
    that evpnd never touches what a person put there. A daemon bug, not the test's."""
    a, b, h2 = fabric["a"], fabric["b"], fabric["h2"]
    old = "02:aa:00:00:09:99"
    steps = [
        ["bridge", "fdb", "add", old, "dev", "vx100", "master", "static"],
        ["bridge", "fdb", "add", old, "dev", "vx100", "self", "dst", "10.0.0.99", "static"],
        ["ip", "route", "add", "10.0.0.99/32", "via", b.vtep],
        # a neighbour entry made by hand (protocol static: an entry evpnd made and a person
        # only edited keeps evpnd's protocol 235, and evpnd would put its own value back)
        [
            "ip",
            "neigh",
            "replace",
            h2.ip,
            "lladdr",
            old,
            "dev",
            "br100",
            "nud",
            "permanent",
            "protocol",
            "static",
        ],  # fmt: skip
    ]
    try:
        for cmd in steps:
            a.ns.run(cmd)
        # evpnd has seen the hand-made entry and leaves it alone (the diff calls it a conflict)
        wait_for(lambda: any(e["key"] == h2.ip and e["problem"] == "conflict" for e in
                             a.node.data("show kernel diff")["entries"]), 10,
                 what="the neighbour conflict")  # fmt: skip
        before = a.ns.run(["ip", "-d", "neigh", "show", "dev", "br100"])
        res = trace(a, h2.ip)
        after = a.ns.run(["ip", "-d", "neigh", "show", "dev", "br100"])
    finally:
        a.ns.run(["ip", "neigh", "del", h2.ip, "dev", "br100"], check=False)
        a.ns.run(["ip", "route", "del", "10.0.0.99/32"], check=False)
        a.ns.run(["bridge", "fdb", "del", old, "dev", "vx100", "self"], check=False)
        a.ns.run(["bridge", "fdb", "del", old, "dev", "vx100", "master"], check=False)
    assert res.returncode == 1, res.stdout + res.stderr + before + after
    assert last_line(res) == (
        f"failed at wire: probe left towards 10.0.0.99, expected VTEP {b.vtep}: ARP "
        f"suppression on br100 answers {h2.ip} is-at {old} (a neighbour entry not evpnd's: a "
        f"person or another program put it there, state PERMANENT), but evpnd has {h2.ip} at "
        f"{h2.mac}"
    ), res.stdout
    wait_for(lambda: trace(a, h2.ip).returncode == 0, 30, 1, what="trace ok again")


def test_bridge_entry_on_a_local_port_probe_not_seen_on_the_wire(fabric):
    """The bridge's entry for h2's MAC moved to A's access port p1 (`bridge fdb replace`, as a
    misbehaving tool would): the route and the VXLAN entry are right, but the bridge sends the
    probe to p1, so nothing leaves on the underlay; trace names the port."""
    a, h2 = fabric["a"], fabric["h2"]
    a.ns.run(["bridge", "fdb", "replace", h2.mac, "dev", "p1", "master", "static"])
    try:
        res = trace(a, h2.ip)
    finally:
        a.ns.run(["bridge", "fdb", "del", h2.mac, "dev", "p1", "master"], check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "ok   kernel" in res.stdout, res.stdout
    assert last_line(res).startswith(
        f"failed at wire: probe not seen on the wire: nothing left uplink in VNI 100 for "
        f"{h2.ip} (br100 forwards {h2.mac} to its port p1"
    ), res.stdout
    wait_for(lambda: trace(a, h2.ip).returncode == 0, 30, 1, what="trace ok again")


def test_bad_input_one_line_nonzero(fabric):
    a = fabric["a"]
    res = trace(a, "10.100.0.2", "--vni", "999")
    assert res.returncode == 1 and res.stdout == "", res
    assert res.stderr.count("\n") == 1 and "unknown VNI 999" in res.stderr, res.stderr
    res = trace(a, "not-an-address")
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr == "evpnctl: trace: not a MAC or IP address: 'not-an-address'\n"


def test_without_cap_net_raw_says_which_privilege(fabric):
    a = fabric["a"]
    cmd = a.ns.cmd("capsh", "--drop=cap_net_raw", "--", "-c",
                   f"exec {EVPNCTL} -s {a.node.socket} trace {fabric['h2'].ip}")  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 3, res
    assert res.stderr == ("evpnctl: trace: needs CAP_NET_RAW (capture) and CAP_NET_ADMIN (probe "
                          "port)\n"), res.stderr  # fmt: skip
