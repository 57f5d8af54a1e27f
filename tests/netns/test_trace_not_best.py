"""`evpnctl trace`'s "route imported but not best (why)", produced on a real fabric.

Two evpnd leaves (A, B) and a third BGP speaker, GoBGP (G), peered with both. G holds a stale
MAC/IP route for h7 (as a leaf or controller that never withdrew it after the host moved):
seq 0, its MAC Mobility sequence (the gobgp CLI sends none, which RFC 7432 section 7.7 reads
as 0). G only announces: its import policy rejects what the leaves send, because GoBGP, like
any RFC 7432 speaker, withdraws its own route for a MAC when it hears a higher sequence for it
(the reason a plain MAC move between two leaves never leaves a losing path behind). Then h7
speaks on A: A learns its MAC on a local port, sees G's remote path and advertises the MAC
with sequence 1 (section 15.1). G keeps its route. So:

- on A, G's route is received and imported into VNI 100 but not best: the local path wins by
  the higher sequence. `trace` names that, for the MAC and for the IP (whose only MAC/IP path is
  G's, but whose MAC is local);
- on B, G's route loses to A's by the same rule: B's trace follows A's path and ends in ok,
  for the IP too (its only MAC/IP path is G's, but frames follow the MAC's best path);
- once G withdraws the stale route, A's trace says the MAC is a local host on this leaf.

Nothing is injected into evpnd: every path comes over a BGP session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evpnd.lab.gobgp import GoBgp, GoBgpNeighbor, gobgp_conf
from evpnd.lab.netns import wait_for
from tests.netns.fabric import Leaf, add_host, evpnd_config, start_evpnd, two_leaves

pytestmark = pytest.mark.netns
EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))

H7_MAC, H7_IP = "02:aa:00:00:01:07", "10.100.0.7"
G_ASN, G_RT, G_RD = 65003, "65003:100", "10.0.9.9:100"


def trace(leaf: Leaf, *args: str) -> subprocess.CompletedProcess:
    assert leaf.node is not None
    cmd = leaf.ns.cmd(EVPNCTL, "-s", str(leaf.node.socket), "trace", *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def last_line(res: subprocess.CompletedProcess) -> str:
    assert res.stdout, res.stderr
    return res.stdout.splitlines()[-1]


def paths_of(leaf: Leaf, mac: str) -> list[dict]:
    assert leaf.node is not None
    found = leaf.node.data("explain", target=mac)["vnis"]
    return found[0]["candidates"] if found else []


def test_stale_route_from_a_third_speaker_is_imported_but_not_best(lab):
    a, b = two_leaves(lab)  # A 10.0.0.1 AS 65001, B 10.0.0.2 AS 65002, one link
    g_ns = lab.netns("gb")
    lab.link(a.ns, "to_g", g_ns, "to_a", "10.0.1.1/30", "10.0.1.2/30")
    lab.link(b.ns, "to_g", g_ns, "to_b", "10.0.2.1/30", "10.0.2.2/30")
    g_for_a, g_for_b = Leaf(g_ns, "10.0.1.2", G_ASN), Leaf(g_ns, "10.0.2.2", G_ASN)
    # GoBGP's peers are the leaves' addresses on its own links
    neighbors = [GoBgpNeighbor("10.0.1.1", a.asn), GoBgpNeighbor("10.0.2.1", b.asn)]
    gobgp = GoBgp(g_ns, gobgp_conf(G_ASN, "10.0.9.9", neighbors, accept_routes=False)).start()
    lab.on_cleanup(gobgp.remove)

    h7 = add_host(lab, a, "h7", "p7", H7_IP, H7_MAC, ipv6=False)
    vni = {"vni": 100, "bridge": "br100"}
    # each leaf peers with G from its address on G's link (update_source is the VTEP otherwise)
    start_evpnd(lab, a, evpnd_config(a, [b, g_for_a], [{**vni, "access_ports": ["p7"]}]))
    start_evpnd(lab, b, evpnd_config(b, [a, g_for_b], [vni]))
    for addr in ("10.0.1.1", "10.0.2.1"):
        wait_for(lambda addr=addr: gobgp.established(addr), 30, interval=0.2,
                 what=f"GoBGP <-> evpnd at {addr}")  # fmt: skip

    # G's stale MAC/IP route for h7 (seq 0): both leaves install it towards G
    gobgp.add_evpn("macadv", H7_MAC, H7_IP, "etag", "0", "label", "100", "rd", G_RD,
                   "rt", G_RT, "encap", "vxlan", "nexthop", "10.0.9.9")  # fmt: skip
    wait_for(lambda: any(p["peer"] == "10.0.1.2" for p in paths_of(a, H7_MAC)), 20,
             what="G's route on A")  # fmt: skip
    wait_for(lambda: any(p["peer"] == "10.0.2.2" for p in paths_of(b, H7_MAC)), 20,
             what="G's route on B")  # fmt: skip
    (g_path,) = [p for p in paths_of(a, H7_MAC) if p["peer"] == "10.0.1.2"]
    g_vtep = g_path["next_hop"]
    assert g_path["seq"] == 0 and G_RT in g_path["route_targets"], g_path
    wait_for(lambda: a.remote_macs("vx100").get(H7_MAC) == g_vtep, 10,
             what="A's FDB entry for h7 towards G's VTEP")  # fmt: skip

    # h7 speaks on A: A learns it locally and advertises it with sequence 1
    h7.ns.ping("10.100.0.99", timeout=0.3)

    def a_local_wins() -> bool:
        cands = paths_of(a, H7_MAC)
        return bool(cands) and cands[0]["peer"] == "local" and cands[0]["seq"] == 1

    wait_for(a_local_wins, 20, what="A's local path for h7 at seq 1")
    wait_for(lambda: any(p["peer"] == a.vtep and p["seq"] == 1 for p in paths_of(b, H7_MAC)),
             20, what="A's seq-1 route on B")  # fmt: skip
    # G heard nothing (its import policy), so it did not withdraw on A's higher sequence
    assert any(p["peer"] == "10.0.1.2" for p in paths_of(a, H7_MAC)), gobgp.evpn_rib()

    # --- A: the MAC. G's route imported into VNI 100, the local path wins by sequence
    res = trace(a, H7_MAC)
    assert res.returncode == 1, res.stdout + res.stderr
    want = (f"failed at best: route from 10.0.1.2 (VTEP {g_vtep}, seq 0) imported into VNI 100 "
            "but not best: the local path wins (local: higher sequence (1 > 0)); the MAC is "
            "learned on a local port of this leaf")  # fmt: skip
    assert last_line(res) == want, res.stdout
    rep = json.loads(trace(a, H7_MAC, "--json").stdout)
    assert not rep["ok"] and rep["failed_step"] == "best", rep
    assert rep["cause"] == want.removeprefix("failed at best: "), rep

    # --- A: the IP. Its only MAC/IP path is G's (A has no SVI, so it advertises h7's MAC
    # alone), but the MAC it resolves to is local: the same cause, named for MAC and IP
    res = trace(a, H7_IP)
    assert res.returncode == 1, res.stdout + res.stderr
    assert last_line(res) == (f"failed at best: {H7_MAC} ({H7_IP}): "
                              + want.removeprefix("failed at best: ")), res.stdout  # fmt: skip

    # --- B: G's seq-0 path loses to A's seq-1 path; B's trace follows A's and reaches h7
    explain_b = b.node.data("explain", target=H7_MAC)["vnis"][0]
    g_vtep_b = next(p["next_hop"] for p in explain_b["candidates"] if p["peer"] == "10.0.2.2")
    assert explain_b["winner"]["next_hop"] == a.vtep, explain_b
    assert explain_b["reason"] == "higher sequence (1 > 0)", explain_b
    wait_for(lambda: b.remote_macs("vx100").get(H7_MAC) == a.vtep, 10,
             what="B's FDB entry for h7 towards A")  # fmt: skip
    for target in (H7_MAC, H7_IP):
        last: dict = {}

        def healthy(target=target, last=last) -> bool:
            last["res"] = trace(b, target)
            return last["res"].returncode == 0

        try:
            wait_for(healthy, 30, 1, what=f"B's trace of {target} ok")
        except TimeoutError:
            pytest.fail(f"trace {target} on B:\n" + last["res"].stdout + last["res"].stderr)
        out = last["res"].stdout
        assert f"probe left uplink encapsulated for {a.vtep} in VNI 100" in out, out
        if target == H7_IP:
            # the IP's only MAC/IP path is G's stale one; frames follow the MAC's best path
            assert (f"ok   best    best path, next hop {g_vtep_b}: only path; its MAC {H7_MAC} "
                    f"is reached at VTEP {a.vtep} (higher sequence (1 > 0)), where frames "
                    "go") in out, out  # fmt: skip
        assert last_line(last["res"]).startswith(f"ok: {target} reached, rtt "), out

    # --- G withdraws the stale route: on A nothing competes with the local path any more
    gobgp.del_evpn("macadv", H7_MAC, H7_IP, "etag", "0", "label", "100", "rd", G_RD)
    wait_for(lambda: all(p["peer"] == "local" for p in paths_of(a, H7_MAC)), 20,
             what="G's route gone from A")  # fmt: skip
    res = trace(a, H7_MAC)
    assert res.returncode == 1, res.stdout + res.stderr
    assert last_line(res) == f"failed at route: {H7_MAC} is a local host on this leaf (VNI 100)"
