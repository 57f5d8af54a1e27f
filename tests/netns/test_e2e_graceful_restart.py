"""Graceful restart (RFC 4724) end to end: evpnd against FRR 8.4 with `bgp graceful-restart`.

1. evpnd's ExaBGP is killed with SIGKILL (no NOTIFICATION: the TCP session just ends) and the
   Speaker starts a new one, which replays evpnd's routes and then sends End-of-RIB. evpnd keeps
   FRR's paths as stale meanwhile: its kernel loses nothing and the stale flags clear at FRR's
   End-of-RIB. The same with evpnd itself killed and started again (ExaBGP dies with it).
   FRR 8.4 negotiates the capability for l2vpn/evpn but does not retain EVPN paths (its helper
   loop, FOREACH_AFI_SAFI_NSF, stops at SAFI_MPLS_VPN): it flushes evpnd's MACs and installs
   them again within a second or two. The test allows that gap, and requires no more than two
   lost pings if FRR ever keeps them.
2. FRR's bgpd is killed with SIGKILL (zebra stays: killing zebra would remove its own kernel
   entries, which is not a BGP restart) and started again. evpnd keeps FRR's paths stale with
   no kernel deletion while bgpd is down; at FRR's End-of-RIB the stale flags clear and the
   MACs of a VNI that the restarted bgpd no longer advertises (an outbound route-map) are swept
   at once.
3. bgpd is killed and stays down: the stale paths are swept when the restart time runs out.
4. What FRR's OPEN negotiated decides (RFC 4724 section 4.2): an FRR without graceful restart
   (`bgp graceful-restart-disable`) has its paths flushed as soon as its bgpd dies, though
   evpnd has graceful restart configured; an FRR whose new OPEN lacks the Forwarding State bit
   for l2vpn/evpn (no `preserve-fw-state`) has its stale paths deleted when it comes back,
   before its UPDATEs install them again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from evpnd.lab.frr import FRR_BIN, Frr, evpn_leaf_conf
from evpnd.lab.netns import Lab, wait_for
from tests.netns.fabric import Leaf, add_host, evpnd_config, host_mac, start_evpnd, two_leaves

pytestmark = [pytest.mark.netns, pytest.mark.frr]

# FRR logs each received NLRI and End-of-RIB: the order on the wire after a restart
FRR_RX_DEBUG = "debug bgp updates in\ndebug bgp neighbor-events\n"
# preserve-fw-state: FRR sets the Forwarding State bit for l2vpn/evpn in its OPEN; without it
# the bit is clear and evpnd deletes FRR's stale paths as soon as the new OPEN arrives
# (RFC 4724 section 4.2; see tests/fixtures/exabgp/frr-open-graceful-restart.txt)
GR_FRR = (
    " bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n"
    " bgp graceful-restart restart-time 30\n"
)
# FRR 8.4 matches `evpn vni` on type-2 labels only: its type-3 for VNI 200 still goes out
DENY_MACS_200 = (
    "route-map NO-MACS-200 deny 10\n match evpn vni 200\nroute-map NO-MACS-200 permit 20\n"
)


def frr_gr_leaf(
    lab: Lab, leaf: Leaf, peer: Leaf, vnis: dict[int, list[str]], debug: str = "", gr: str = GR_FRR
) -> Frr:
    """An FRR leaf with graceful restart on (`gr`), one bridge + vxlan per VNI (ports from
    `vnis`)."""
    ns = leaf.ns
    for vni, ports in vnis.items():
        ns.ip("link", "add", f"br{vni}", "type", "bridge")
        ns.ip("link", "add", f"vx{vni}", "type", "vxlan", "id", str(vni), "local", leaf.vtep,
              "dstport", "4789", "nolearning")  # fmt: skip
        ns.ip("link", "set", f"vx{vni}", "master", f"br{vni}")
        ns.run(["bridge", "link", "set", "dev", f"vx{vni}", "learning", "off"])
        for port in ports:
            ns.ip("link", "set", port, "master", f"br{vni}")
        ns.ip("link", "set", f"vx{vni}", "up")
        ns.ip("link", "set", f"br{vni}", "up")
    conf = debug + evpn_leaf_conf(leaf.asn, leaf.vtep, [(peer.vtep, peer.asn)], extra=gr)
    frr = Frr(ns, conf).start()
    lab.on_cleanup(frr.remove)
    leaf.frr = frr
    return frr


def kill_bgpd(frr: Frr) -> None:
    """SIGKILL bgpd alone (procs[1], started by Frr.start after zebra): zebra stays up."""
    bgpd = frr.procs[1]
    os.kill(bgpd.pid, signal.SIGKILL)
    bgpd.wait(5)


def start_bgpd(frr: Frr, bgpd_conf: str | None = None) -> None:
    """Start bgpd again with the same private paths as Frr.start (optionally a new config)."""
    d = frr.workdir
    if bgpd_conf is not None:
        (d / "bgpd.conf").write_text(bgpd_conf)
    (d / "bgpd.vty").unlink(missing_ok=True)  # left behind by SIGKILL
    args = [str(FRR_BIN / "bgpd"), "-f", str(d / "bgpd.conf"), "-i", str(d / "bgpd.pid")]
    args += ["-z", str(d / "zserv.api"), "--vty_socket", str(d), "-P", "0", "-u", "frr"]
    args += ["-g", "frr", "--log", f"file:{d}/bgpd.log"]
    frr.procs[1] = frr.ns.popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for(lambda: (d / "bgpd.vty").exists(), 20, what="bgpd's vty socket")


def paths_from(node, peer: str) -> list[dict]:
    """Every path learned from `peer`, as `evpnctl show routes --json` prints them."""
    reply = json.loads(node.ctl("show", "routes", "--json").stdout)
    routes = reply.get("routes", reply) if isinstance(reply, dict) else reply
    return [r for r in routes if r.get("peer") == peer]


def peer_state(node, peer: str) -> str:
    for p in node.data("show peers")["peers"]:
        if p["address"] == peer:
            return p["state"]
    return "absent"


class FdbMonitor:
    """`bridge monitor fdb` in a namespace; the lines that say an entry was deleted."""

    def __init__(self, leaf: Leaf) -> None:
        self.proc = subprocess.Popen(
            leaf.ns.cmd("bridge", "monitor", "fdb"), stdout=subprocess.PIPE, text=True
        )
        self.deleted: list[str] | None = None
        time.sleep(0.3)  # subscribed before anything happens

    def stop(self) -> list[str]:
        if self.deleted is None:
            self.proc.terminate()
            out, _ = self.proc.communicate(timeout=5)
            self.deleted = [ln for ln in out.splitlines() if ln.startswith("Deleted")]
        return self.deleted


def frr_stale_paths(frr: Frr, from_peer: str) -> list[str]:
    """Prefixes FRR holds from `from_peer` that are flagged stale."""
    out = []
    for rd_entry in frr.json("show bgp l2vpn evpn json").values():
        if not isinstance(rd_entry, dict):
            continue
        for prefix, entry in rd_entry.items():
            if not isinstance(entry, dict):
                continue
            for path in entry.get("paths", []):
                if path.get("peerId") == from_peer and path.get("stale"):
                    out.append(prefix)
    return out


@pytest.mark.parametrize("victim", ["exabgp", "evpnd"])
def test_evpnd_restart_replays_then_end_of_rib_and_keeps_frr_paths(lab, victim):
    """SIGKILL of evpnd's ExaBGP (the Speaker starts another) or of evpnd itself (started
    again; its ExaBGP dies with it): the new session carries evpnd's routes, then its EoR."""
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    frr = frr_gr_leaf(lab, frr_leaf, evpnd_leaf, {100: ["p1"]}, debug=FRR_RX_DEBUG)
    vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}]
    cfg = evpnd_config(evpnd_leaf, [frr_leaf], vnis, exabgp={"graceful_restart": 30})
    node = start_evpnd(lab, evpnd_leaf, cfg)

    wait_for(lambda: h1.ns.ping(h2.ip, timeout=0.5), 60, interval=0.2, what="ping h1 -> h2")
    wait_for(lambda: evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep, 10)
    wait_for(lambda: frr_leaf.remote_macs("vx100").get(h2.mac) == evpnd_leaf.vtep, 10)

    def neighbor() -> dict:
        return frr.json(f"show bgp neighbors {evpnd_leaf.vtep} json").get(evpnd_leaf.vtep, {})

    # Both sides offered the capability, l2vpn/evpn included with its forwarding state bit,
    # and evpnd's End-of-RIB reached FRR (ExaBGP runs with manual-eor: evpnd sends it).
    caps = neighbor()["neighborCapabilities"]
    assert caps["gracefulRestart"] == "advertisedAndReceived", caps
    assert caps["gracefulRestartRemoteTimerMsecs"] == 30_000, caps
    assert caps["addressFamiliesByPeer"]["l2VpnEvpn"]["preserved"] is True, caps
    wait_for(lambda: neighbor()["gracefulRestartInfo"]["endOfRibRecv"].get("l2VpnEvpn"), 10,
             what="FRR received evpnd's End-of-RIB")  # fmt: skip

    old_pid = node.data("show peers")["exabgp_pid"]
    assert old_pid
    log_mark = len(frr.log())
    evpnd_mon, frr_mon = FdbMonitor(evpnd_leaf), FdbMonitor(frr_leaf)
    # 0.1 s pings from the host behind FRR to the host behind evpnd, through the restart
    pinger = subprocess.Popen(
        h1.ns.cmd("ping", "-n", "-D", "-O", "-i", "0.1", "-W", "1", "-w", "12", h2.ip),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        before = {p["prefix"] + p["rd"] for p in paths_from(node, frr_leaf.vtep)}
        assert len(before) == 2  # FRR's type-2 for h1 and its type-3
        if victim == "exabgp":
            os.kill(old_pid, signal.SIGKILL)
            # evpnd keeps FRR's paths, stale, while its ExaBGP is away (RFC 4724 section 4.2)
            stale_seen = wait_for(
                lambda: [p for p in paths_from(node, frr_leaf.vtep) if "stale" in p["flags"]],
                10,
                interval=0.05,
                what="FRR's paths stale in evpnd",
            )
            assert {p["prefix"] + p["rd"] for p in stale_seen} == before
        else:
            node.kill9()
            time.sleep(0.5)
            node.start()  # adopts its kernel entries; FRR's paths come again on the session
        assert evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep
        wait_for(lambda: node.data("show peers")["exabgp_pid"] not in (None, old_pid), 15,
                 what="a new ExaBGP")  # fmt: skip
        wait_for(lambda: peer_state(node, frr_leaf.vtep) == "up", 20, what="session back")

        # FRR's End-of-RIB clears the stale flags: the same paths as before, fresh
        def fresh() -> set[str]:
            paths = paths_from(node, frr_leaf.vtep)
            stale = any("stale" in p["flags"] for p in paths)
            return set() if stale else {p["prefix"] + p["rd"] for p in paths}

        wait_for(lambda: fresh() == before, 15, interval=0.2, what="FRR's paths fresh in evpnd")
        # the new ExaBGP replayed evpnd's routes and then sent End-of-RIB: FRR holds them,
        # fresh, and installed h2's MAC again
        wait_for(lambda: frr_leaf.remote_macs("vx100").get(h2.mac) == evpnd_leaf.vtep, 15,
                 what="h2's MAC back in FRR's kernel")  # fmt: skip
        eor = f"rcvd End-of-RIB for L2VPN EVPN from {evpnd_leaf.vtep}"
        wait_for(lambda: eor in frr.log()[log_mark:], 10, what="FRR received the new EoR")
        assert frr_stale_paths(frr, evpnd_leaf.vtep) == []
        # On the wire: the new OPEN says "restarted" (RFC 4724 section 4.1, Restart State),
        # evpnd's type-2 and type-3 come before its End-of-RIB.
        lines = frr.log()[log_mark:].splitlines()
        at_eor = next(i for i, ln in enumerate(lines) if eor in ln)
        opened = [ln for ln in lines[:at_eor] if "Peer has restarted" in ln]
        assert opened and evpnd_leaf.vtep in opened[-1], lines[:at_eor]
        rx = [ln for ln in lines[:at_eor] if f"{evpnd_leaf.vtep}(" in ln and " rcvd RD " in ln]
        assert any(f"[2]:[0]:[48]:[{h2.mac}]" in ln for ln in rx), lines[:at_eor]
        assert any(f"[3]:[0]:[32]:[{evpnd_leaf.vtep}]" in ln for ln in rx), lines[:at_eor]
        out, _ = pinger.communicate(timeout=20)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
        evpnd_deleted = evpnd_mon.stop()
        frr_deleted = frr_mon.stop()

    assert evpnd_deleted == [], f"evpnd's kernel lost entries during the restart: {evpnd_deleted}"
    seqs = [int(m.group(1)) for m in re.finditer(r"icmp_seq=(\d+) ttl", out)]
    sent = int(re.search(r"(\d+) packets transmitted", out).group(1))
    lost = sent - len(set(seqs))
    assert seqs and max(seqs) >= sent - 1, f"pings had not recovered by the end\n{out}"
    frr_flushed = any(h2.mac in ln for ln in frr_deleted)
    if frr_flushed:
        # FRR 8.4 does not retain EVPN paths across a peer restart: the gap is the time from
        # the TCP reset to the new session's UPDATEs (Speaker backoff + ExaBGP start-up)
        assert lost <= 30, f"{lost} of {sent} pings lost (FRR flushed, then re-installed)\n{out}"
    else:
        assert lost <= 2, f"{lost} of {sent} pings lost though FRR kept the MAC\n{out}"
    print(f"{victim}: pings lost {lost}/{sent} at 0.1 s; FRR flushed evpnd's MACs: {frr_flushed}")


def test_frr_bgpd_restart_evpnd_keeps_stale_then_sweeps_at_end_of_rib(lab):
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    lab.link(lab.netns("h3"), "eth0", frr_leaf.ns, "p3")  # a port on VNI 200 behind FRR
    frr = frr_gr_leaf(lab, frr_leaf, evpnd_leaf, {100: ["p1"], 200: ["p3"]})
    mac3 = "02:bb:00:00:00:03"
    frr_leaf.ns.run(["bridge", "fdb", "add", mac3, "dev", "p3", "master", "static"])
    vnis = [
        {"vni": 100, "bridge": "br100", "access_ports": ["p2"]},
        {"vni": 200, "bridge": "br200"},
    ]
    cfg = evpnd_config(evpnd_leaf, [frr_leaf], vnis, exabgp={"graceful_restart": 30})
    node = start_evpnd(lab, evpnd_leaf, cfg)

    wait_for(lambda: h2.ns.ping(h1.ip, timeout=0.5), 60, interval=0.2, what="ping h2 -> h1")
    wait_for(lambda: evpnd_leaf.remote_macs("vx200").get(mac3) == frr_leaf.vtep, 15)
    assert evpnd_leaf.flood("vx200") == {frr_leaf.vtep}
    before = {p["prefix"] + p["rd"]: p for p in paths_from(node, frr_leaf.vtep)}
    # h1's and mac3's type-2 and a type-3 per VNI (and h3's own MAC, from its IPv6 chatter)
    assert any(h1.mac in k for k in before) and any(mac3 in k for k in before), before
    assert sum(k.startswith("[3]") for k in before) == 2, before

    mon = FdbMonitor(evpnd_leaf)
    try:
        kill_bgpd(frr)
        wait_for(lambda: peer_state(node, frr_leaf.vtep) != "up", 15, what="session down")
        stale = [p for p in paths_from(node, frr_leaf.vtep) if "stale" in p["flags"]]
        assert {p["prefix"] + p["rd"] for p in stale} == before.keys()
        time.sleep(2.0)  # bgpd stays down a while: nothing may be deleted meanwhile
        down_deleted = mon.stop()
        assert down_deleted == [], f"deleted while bgpd was down: {down_deleted}"
        assert evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep
        assert evpnd_leaf.remote_macs("vx200").get(mac3) == frr_leaf.vtep

        mon = FdbMonitor(evpnd_leaf)
        # the restarted bgpd no longer advertises VNI 200's MACs to evpnd
        conf = DENY_MACS_200 + evpn_leaf_conf(
            frr_leaf.asn,
            frr_leaf.vtep,
            [(evpnd_leaf.vtep, evpnd_leaf.asn)],
            extra=GR_FRR,
            extra_af=f"  neighbor {evpnd_leaf.vtep} route-map NO-MACS-200 out",
        )
        t0 = time.monotonic()
        start_bgpd(frr, conf)
        wait_for(lambda: peer_state(node, frr_leaf.vtep) == "up", 30, what="session back")
        # At FRR's End-of-RIB: what came again is fresh, what did not (VNI 200's type-2) is
        # swept, long before the 30 s restart time.
        kept = {k for k, p in before.items() if not (p["type"] == 2 and p["vni"] == 200)}

        def settled() -> bool:
            paths = paths_from(node, frr_leaf.vtep)
            fresh = not any("stale" in p["flags"] for p in paths)
            return fresh and {p["prefix"] + p["rd"] for p in paths} == kept

        wait_for(settled, 15, interval=0.2, what="stale flags cleared, VNI 200's MACs swept")
        swept_after = time.monotonic() - t0
        assert swept_after < 15
        wait_for(lambda: mac3 not in evpnd_leaf.remote_macs("vx200"), 10, what="mac3 removed")
        assert evpnd_leaf.flood("vx200") == {frr_leaf.vtep}  # its type-3 came again
        wait_for(lambda: h2.ns.ping(h1.ip, timeout=0.5), 15, interval=0.2, what="ping again")
    finally:
        up_deleted = mon.stop()
    assert evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep
    # only VNI 200's MACs went: no flood entry, nothing of VNI 100
    assert up_deleted and all("vx200" in ln and "00:00:00:00:00:00" not in ln for ln in up_deleted)
    assert any(mac3 in ln for ln in up_deleted), up_deleted
    print(f"VNI 200's MACs swept {swept_after:.1f} s after bgpd was started again")


def test_frr_bgpd_stays_down_stale_paths_swept_after_restart_time(lab):
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    frr = frr_gr_leaf(lab, frr_leaf, evpnd_leaf, {100: ["p1"]})
    vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}]
    gr = 6
    cfg = evpnd_config(evpnd_leaf, [frr_leaf], vnis, exabgp={"graceful_restart": gr})
    node = start_evpnd(lab, evpnd_leaf, cfg)
    wait_for(lambda: h2.ns.ping(h1.ip, timeout=0.5), 60, interval=0.2, what="ping h2 -> h1")

    kill_bgpd(frr)
    t0 = time.monotonic()
    wait_for(lambda: peer_state(node, frr_leaf.vtep) != "up", 15, what="session down")
    assert all("stale" in p["flags"] for p in paths_from(node, frr_leaf.vtep))
    time.sleep(gr - 2.0)
    assert evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep, "swept too early"
    wait_for(lambda: not paths_from(node, frr_leaf.vtep), gr + 5, interval=0.2, what="sweep")
    swept_after = time.monotonic() - t0
    wait_for(lambda: h1.mac not in evpnd_leaf.remote_macs("vx100"), 5, what="FDB entry gone")
    assert not evpnd_leaf.flood("vx100")
    assert gr - 1.0 <= swept_after <= gr + 5, swept_after


def test_frr_without_graceful_restart_is_flushed_at_once(lab):
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    frr = frr_gr_leaf(
        lab, frr_leaf, evpnd_leaf, {100: ["p1"]}, gr=" bgp graceful-restart-disable\n"
    )
    vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}]
    cfg = evpnd_config(evpnd_leaf, [frr_leaf], vnis, exabgp={"graceful_restart": 30})
    node = start_evpnd(lab, evpnd_leaf, cfg)
    wait_for(lambda: h2.ns.ping(h1.ip, timeout=0.5), 60, interval=0.2, what="ping h2 -> h1")
    caps = frr.json(f"show bgp neighbors {evpnd_leaf.vtep} json")[evpnd_leaf.vtep]
    # evpnd offered the capability, FRR did not: not negotiated
    assert caps["neighborCapabilities"].get("gracefulRestart") != "advertisedAndReceived", caps
    assert len(paths_from(node, frr_leaf.vtep)) == 2

    kill_bgpd(frr)
    t0 = time.monotonic()
    # no stale phase: the paths go with the session (RFC 4724 section 4.2 does not apply)
    wait_for(lambda: not paths_from(node, frr_leaf.vtep), 10, interval=0.05, what="flush")
    flushed_after = time.monotonic() - t0
    assert peer_state(node, frr_leaf.vtep) != "up"
    wait_for(lambda: h1.mac not in evpnd_leaf.remote_macs("vx100"), 5, what="FDB entry gone")
    assert not evpnd_leaf.flood("vx100")
    assert flushed_after < 5, flushed_after
    print(f"FRR without graceful restart: paths flushed {flushed_after:.2f} s after bgpd died")


def test_frr_back_without_forwarding_state_its_stale_paths_go_at_the_open(lab):
    frr_leaf, evpnd_leaf = two_leaves(lab)
    h1 = add_host(lab, frr_leaf, "h1", "p1", "10.100.0.1", host_mac(1, 1))
    h2 = add_host(lab, evpnd_leaf, "h2", "p2", "10.100.0.2", host_mac(2, 2))
    no_fw = " bgp graceful-restart\n bgp graceful-restart restart-time 30\n"
    frr = frr_gr_leaf(lab, frr_leaf, evpnd_leaf, {100: ["p1"]}, gr=no_fw)
    vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}]
    cfg = evpnd_config(evpnd_leaf, [frr_leaf], vnis, exabgp={"graceful_restart": 30})
    node = start_evpnd(lab, evpnd_leaf, cfg)
    wait_for(lambda: h2.ns.ping(h1.ip, timeout=0.5), 60, interval=0.2, what="ping h2 -> h1")
    before = {p["prefix"] + p["rd"] for p in paths_from(node, frr_leaf.vtep)}
    assert len(before) == 2

    mon = FdbMonitor(evpnd_leaf)
    try:
        kill_bgpd(frr)
        wait_for(lambda: peer_state(node, frr_leaf.vtep) != "up", 15, what="session down")
        # FRR advertised the capability with l2vpn/evpn: its paths are kept, stale
        stale = [p for p in paths_from(node, frr_leaf.vtep) if "stale" in p["flags"]]
        assert {p["prefix"] + p["rd"] for p in stale} == before
        time.sleep(1.0)
        assert evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep
        start_bgpd(frr)
        wait_for(lambda: peer_state(node, frr_leaf.vtep) == "up", 30, what="session back")

        def fresh() -> set[str]:
            paths = paths_from(node, frr_leaf.vtep)
            return (
                set()
                if any("stale" in p["flags"] for p in paths)
                else {p["prefix"] + p["rd"] for p in paths}
            )

        wait_for(lambda: fresh() == before, 15, interval=0.2, what="FRR's paths again, fresh")
        wait_for(lambda: evpnd_leaf.remote_macs("vx100").get(h1.mac) == frr_leaf.vtep, 10,
                 what="h1's MAC installed again")  # fmt: skip
    finally:
        deleted = mon.stop()
    # the new OPEN had no Forwarding State bit: h1's MAC and the flood entry were deleted,
    # then installed again from FRR's UPDATEs (with preserve-fw-state nothing is deleted: above)
    assert any(h1.mac in ln and "vx100" in ln for ln in deleted), deleted
    assert any("00:00:00:00:00:00" in ln and "vx100" in ln for ln in deleted), deleted
    wait_for(lambda: h2.ns.ping(h1.ip, timeout=0.5), 15, interval=0.2, what="ping again")
