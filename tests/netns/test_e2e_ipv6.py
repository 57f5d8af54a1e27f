"""End to end over an IPv6-only underlay (issue 16): two evpnd leaves, VTEPs and the eBGP
session on 2001:db8:77::1 and ::2 (no IPv4 address on the link), VNIs 100 and 200.

Hosts: h1 (A, VNI 100), h4 (A, VNI 200), h2 (B, VNI 100), h3 (B, VNI 200), all in one IPv4
subnet so a leak between VNIs would show as a working ping. The MAC move and type-5 over IPv6
run in test_e2e_mobility.py and test_e2e_type5.py (parametrised by underlay family).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from evpnd.lab.frr import Frr, evpn_leaf_conf
from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import (
    evpnd_config,
    four_hosts,
    start_evpnd,
    two_leaves,
    two_vnis,
    wait_ping,
)

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def fabric():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="e6")
    try:
        a, b = two_leaves(lab, family=6)
        hosts = four_hosts(lab, a, b)
        vnis_a, vnis_b = two_vnis("a"), two_vnis("b")
        start_evpnd(lab, a, evpnd_config(a, [b], vnis_a, metrics={"enabled": True}))
        start_evpnd(lab, b, evpnd_config(b, [a], vnis_b))
        yield {"lab": lab, "a": a, "b": b, **hosts}
    finally:
        lab.cleanup()


def converged(fabric) -> None:
    wait_ping(fabric["h1"], fabric["h2"], timeout=45)
    wait_ping(fabric["h4"], fabric["h3"], timeout=30)


def test_underlay_is_ipv6_only(fabric):
    a = fabric["a"]
    assert a.ns.ip("-4", "addr", "show", "dev", "uplink").count("inet ") == 0
    details = a.ns.ip("-d", "link", "show", "vx100")
    assert "local 2001:db8:77::1" in details, details
    # 1500 - 70: outer IPv6 (40) + UDP (8) + VXLAN (8) + inner Ethernet (14)
    assert " mtu 1430 " in details, details


def test_same_vni_hosts_ping_and_vnis_stay_apart(fabric):
    converged(fabric)
    assert not fabric["h1"].ns.ping(fabric["h3"].ip, count=2, timeout=0.5)
    assert not fabric["h4"].ns.ping(fabric["h2"].ip, count=2, timeout=0.5)


def test_fdb_and_flood_entries_carry_the_ipv6_vteps(fabric):
    a, b = fabric["a"], fabric["b"]
    converged(fabric)
    # a ping may get through by flooding before the type-2 route arrives: wait for each
    for leaf, dev, host, vtep in (
        (a, "vx100", "h2", b.vtep),
        (a, "vx200", "h3", b.vtep),
        (b, "vx100", "h1", a.vtep),
        (b, "vx200", "h4", a.vtep),
    ):
        wait_for(lambda lf=leaf, d=dev, h=host, v=vtep: lf.remote_macs(d) == {fabric[h].mac: v},
                 10, what=f"{dev} of {leaf.ns.name}")  # fmt: skip
    assert a.flood("vx100") == {b.vtep} and a.flood("vx200") == {b.vtep}
    assert b.flood("vx100") == {a.vtep} and b.flood("vx200") == {a.vtep}
    for line in a.fdb("vx100"):
        if " dst " in line and not line.startswith("00:00:00:00:00:00"):
            assert "extern_learn" in line, line
    wait_for(lambda: a.node.data("show kernel diff")["converged"], 10, what="A converged")


def test_routes_carry_ipv6_next_hops_and_pmsi(fabric):
    a, b = fabric["a"], fabric["b"]
    converged(fabric)
    routes = a.node.data("show routes", vni=100)["routes"]
    remote = [r for r in routes if r["peer"] == b.vtep]
    assert {r["type"] for r in remote} >= {2, 3}, routes
    assert all(r["next_hop"] == b.vtep for r in remote), remote
    imet = next(r for r in remote if r["type"] == 3)
    assert b.vtep in str(imet), imet  # originator and PMSI endpoint: B's IPv6 VTEP


def columns_line_up(text: str, header: str, value: str) -> None:
    """The column headed `header` starts where `value` starts in some row."""
    lines = text.splitlines()
    head = next(ln for ln in lines if header in ln)
    row = next(ln for ln in lines if value in ln and ln is not head)
    assert head.index(header) == row.index(value), text


def test_evpnctl_shows_ipv6_vteps_in_aligned_columns(fabric):
    a, b = fabric["a"], fabric["b"]
    converged(fabric)
    macs = a.node.ctl("show", "macs", "--vni", "100").stdout
    columns_line_up(macs, "Remote VTEP", b.vtep)
    routes = a.node.ctl("show", "routes", "--vni", "100").stdout
    columns_line_up(routes, "Next hop", b.vtep)
    vni = a.node.ctl("show", "vni", "100").stdout
    assert b.vtep in vni, vni
    why = a.node.ctl("explain", fabric["h2"].mac).stdout
    assert f"kernel:  fdb {fabric['h2'].mac} -> {b.vtep}" in why, why
    assert f"originator VTEP {b.vtep}" in why, why


def kernel_operations(leaf) -> float:
    """evpnd_kernel_operations_total from the leaf's metrics (127.0.0.1 in its namespace):
    every netlink write of an FDB entry, neighbour or route, also one that changes nothing
    (the kernel does not notify those, so a monitor alone would miss a rewrite)."""
    # the project's own Python, not curl: a fresh Debian has no curl and evpnd does not need it
    fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9617/metrics').read().decode())"
    text = leaf.ns.run([sys.executable, "-c", fetch])
    for line in text.splitlines():
        if line.startswith("evpnd_kernel_operations_total "):
            return float(line.split()[1])
    raise AssertionError(f"no evpnd_kernel_operations_total in:\n{text[:2000]}")


def test_restart_is_churn_free(fabric):
    """SIGTERM and start again: zero kernel writes (the daemon's own count) and no change
    the kernel reports on evpnd's devices."""
    a = fabric["a"]
    converged(fabric)
    wait_for(lambda: a.node.data("show kernel diff")["converged"], 10, what="A converged")
    before = {dev: a.fdb(dev) for dev in ("vx100", "vx200")}
    a.node.stop()
    watch = [
        subprocess.Popen(a.ns.cmd(*cmd), stdout=subprocess.PIPE, text=True)
        for cmd in (("bridge", "monitor", "fdb"), ("ip", "monitor", "neigh", "route", "link"))
    ]
    try:
        time.sleep(0.3)
        a.node.start()
        wait_for(
            lambda: any(p["state"] == "up" for p in a.node.data("show peers")["peers"]),
            30, what="session back",
        )  # fmt: skip
        wait_ping(fabric["h1"], fabric["h2"], timeout=20)
        time.sleep(6.0)  # past the sweep hold time (5 s): nothing owned may be swept either
        assert kernel_operations(a) == 0
    finally:
        outs = []
        for proc in watch:
            proc.terminate()
            outs.append(proc.communicate(timeout=5)[0])
    events = [
        ln for out in outs for ln in out.splitlines()
        if any(dev in ln for dev in ("vx100", "vx200", "br100", "br200"))
    ]  # fmt: skip
    # a host's own MAC refresh on its access port is the bridge's doing, not evpnd's
    events = [ln for ln in events if "extern_learn" in ln or " dst " in ln or "link" in ln]
    assert events == [], events
    assert {dev: a.fdb(dev) for dev in ("vx100", "vx200")} == before


@pytest.mark.frr
def test_frr_84_drops_the_session_on_an_ipv6_vteps_type3(lab):
    """Why no FRR in the IPv6 interop (README, "IPv6 underlay"): FRR 8.4's bgpd accepts an
    ingress-replication PMSI tunnel attribute only 9 bytes long (IPv4 endpoint). evpnd's type 3
    from an IPv6 VTEP carries 21: bgpd logs it and resets the session (NOTIFICATION 3/1), even
    as a pure transit peer without VNIs. Should a later FRR accept it, this test fails and the
    README's note (and the IPv6 lab's spine) can change."""
    a, b = two_leaves(lab, family=6)
    conf = evpn_leaf_conf(b.asn, b.router_id, [(a.vtep, a.asn)], advertise_all_vni=False)
    frr = Frr(b.ns, conf).start()
    lab.on_cleanup(frr.remove)
    start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100"}]))
    wait_for(lambda: "Bad PMSI tunnel attribute length 21 for IR" in frr.log(), 30,
             what="bgpd refusing the IPv6 PMSI endpoint")  # fmt: skip
    wait_for(lambda: "notification received (3,1)" in a.node.log(), 15,
             what="evpnd told of the reset (UPDATE error, malformed attribute list)")  # fmt: skip
    assert a.node.data("show peers")["peers"][0]["received"] == 0
