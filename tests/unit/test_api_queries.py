"""Each control-API query against a real Core (tests/unit/test_api_world.py)."""

from __future__ import annotations

import json

import pytest

from evpnd.api import protocol
from evpnd.api.models import REPLIES
from evpnd.api.queries import QueryError, Raw, run_query
from evpnd.config import parse_config
from evpnd.core.events import RouteUpdate
from evpnd.routes.evpn import MacIpKey, Path
from tests.unit.test_api_world import (
    CONFIG,
    MAC_DUP,
    MAC_FOREIGN,
    MAC_LOCAL,
    MAC_MOVED,
    MAC_REMOTE,
    MAC_STALE,
    ME,
    B,
    C,
    attrs,
    make_world,
)


async def ask(world, cmd: str, **args):
    name, parsed = protocol.parse_request(json.dumps({"cmd": cmd, "args": args}).encode())
    reply = await run_query(world, name, parsed)
    if isinstance(reply, Raw):  # the fast path must produce exactly the model's JSON
        assert reply.model is REPLIES[cmd]
        model = reply.model.model_validate(reply.data)
        assert model.model_dump(mode="json") == reply.data
        reply = model
    assert isinstance(reply, REPLIES[cmd])
    return reply


async def test_show_routes_lists_every_path_with_flags():
    w = make_world()
    routes = (await ask(w, "show routes")).routes
    assert len(routes) == sum(len(t) for t in w.core.rib.adj_in.values())
    by = {(r.peer, r.mac, r.ip, r.type): r for r in routes}
    local = by[("local", MAC_MOVED, None, 2)]
    assert local.seq == 4 and set(local.flags) >= {"best", "local"} and local.rd == f"{ME}:1"
    lost = by[(B, MAC_MOVED, None, 2)]
    assert lost.seq == 3 and "local" not in lost.flags
    assert "stale" in by[(C, MAC_STALE, None, 2)].flags
    assert "frozen" in by[(B, MAC_DUP, None, 2)].flags
    remote_ip = by[(B, MAC_REMOTE, "10.1.0.21", 2)]
    assert remote_ip.prefix == f"[2]:[0]:[48]:[{MAC_REMOTE}]:[32]:[10.1.0.21]"
    assert remote_ip.as_path == [65002] and remote_ip.route_targets == ["65002:100"]


async def test_show_routes_filters():
    w = make_world()
    t3 = (await ask(w, "show routes", type=3)).routes
    assert t3 and {r.type for r in t3} == {3}
    assert {r.origin for r in t3} == {ME, B}
    t5 = (await ask(w, "show routes", type=5)).routes
    assert {r.ip for r in t5} == {"10.9.0.0/24", "10.8.0.0/24"}
    rd = (await ask(w, "show routes", rd=f"{C}:1")).routes
    assert [r.mac for r in rd] == [MAC_STALE]
    v200 = (await ask(w, "show routes", vni=200)).routes
    assert {(r.type, r.peer) for r in v200} == {(3, "local")}
    v100 = (await ask(w, "show routes", vni=100)).routes
    assert MAC_FOREIGN not in {r.mac for r in v100}
    with pytest.raises(QueryError, match="unknown VNI 7"):
        await ask(w, "show routes", vni=7)
    with pytest.raises(QueryError, match="bad RD"):
        await ask(w, "show routes", rd="nonsense")


async def test_show_peers():
    w = make_world()
    reply = await ask(w, "show peers")
    assert (reply.router_id, reply.asn, reply.exabgp_pid, reply.exabgp_restarts) == (
        ME, 65001, 4242, 1)  # fmt: skip
    assert 3700 < reply.uptime < 3800
    b, c = reply.peers
    assert (b.address, b.state, b.remote_as, b.description) == (B, "up", 65002, "leaf b")
    assert b.received == 8 and b.rejected == 1 and b.accepted == 7
    assert b.uptime is not None and 0 <= b.uptime < 60
    assert b.advertised == len(w.core.advertised())
    assert (c.state, c.uptime, c.advertised) == ("down", None, 0)


async def test_show_peers_survives_a_broken_speaker():
    w = make_world()

    def broken():
        raise RuntimeError("exabgp restarting")

    w.speaker_status = broken
    reply = await ask(w, "show peers")
    assert reply.exabgp_pid is None and len(reply.peers) == 2


async def test_show_vni():
    w = make_world()
    vnis = {v.vni: v for v in (await ask(w, "show vni")).vnis}
    assert set(vnis) == {100, 200, 5000}
    v100 = vnis[100]
    assert (v100.kind, v100.bridge, v100.vxlan_device, v100.rd) == ("l2", "br100", "vx100",
                                                                     f"{ME}:1")  # fmt: skip
    assert v100.export_rts == ["65001:100"] and v100.import_rts == ["auto (*:VNI)"]
    assert v100.local_macs == 3  # LOCAL, MOVED, DUP (still present locally)
    # one VNI is counted by its own scan, every VNI by one pass over the local MACs: the same
    assert (await ask(w, "show vni", vni=100)).vnis[0].local_macs == 3
    assert w.core.views.local_mac_counts().get(200, 0) == vnis[200].local_macs
    assert v100.remote_macs == len(w.core.desired.fdb[100])
    assert v100.remote_vteps == [B] and v100.l3vni == 5000
    v5000 = vnis[5000]
    assert (v5000.kind, v5000.table, v5000.l2vnis, v5000.prefixes) == ("l3", 5000, [100], 1)
    assert v5000.remote_vteps == [B]
    one = (await ask(w, "show vni", vni=200)).vnis
    assert [v.vni for v in one] == [200] and one[0].remote_vteps == []
    with pytest.raises(QueryError, match="unknown VNI 300"):
        await ask(w, "show vni", vni=300)


async def test_show_vni_lists_static_tunnels_with_the_dataplanes_status():
    """An L2 tunnel under the L2VNI whose bridge it joins, a GRE one under the L3VNI of its
    table; the status is the dataplane's (`show mtu` rows), "not set up (yet)" before it has
    one. The dataplane is not asked at all without tunnels (test_show_vni)."""
    w = make_world()
    w.cfg = parse_config({**CONFIG, "static_tunnels": [
        {"name": "site-far", "type": "vxlan", "remote": "192.0.2.99", "vni": 7001,
         "bridge": "br100"},
        {"name": "site-g", "type": "gre", "remote": "192.0.2.9", "prefixes": ["10.7.0.0/16"],
         "table": 5000},
    ]})  # fmt: skip
    w.stats = {"mtu": {"devices": [
        {"device": "site-far", "type": "vxlan", "status": "remote unreachable (no route)"},
    ]}}  # fmt: skip
    vnis = {v.vni: v for v in (await ask(w, "show vni")).vnis}
    assert [t.model_dump() for t in vnis[100].tunnels] == [
        {"name": "site-far", "type": "vxlan", "remote": "192.0.2.99",
         "status": "remote unreachable (no route)"},
    ]  # fmt: skip
    assert [(t.name, t.status) for t in vnis[5000].tunnels] == [("site-g", "not set up (yet)")]
    assert vnis[200].tunnels == []
    one = (await ask(w, "show vni", vni=5000)).vnis[0]
    assert [t.name for t in one.tunnels] == ["site-g"]


async def test_show_macs_like_frr():
    w = make_world()
    macs = {m.mac: m for m in (await ask(w, "show macs")).macs}
    assert macs[MAC_LOCAL].type == "local" and macs[MAC_LOCAL].ips == ["10.1.0.11"]
    assert macs[MAC_REMOTE].type == "remote" and macs[MAC_REMOTE].vtep == B
    assert macs[MAC_REMOTE].ips == ["10.1.0.21"]
    moved = macs[MAC_MOVED]
    assert (moved.type, moved.local_seq, moved.remote_seq) == ("local", 4, 3)
    dup = macs[MAC_DUP]
    assert dup.duplicate and dup.frozen and dup.remote_seq == 5
    assert MAC_FOREIGN not in macs
    only_dup = (await ask(w, "show macs", duplicate=True)).macs
    assert [m.mac for m in only_dup] == [MAC_DUP]
    assert (await ask(w, "show macs", vni=200)).macs == []


async def test_clear_dup_addr_goes_through_the_context():
    w = make_world()
    reply = await ask(w, "clear dup-addr", vni=100, mac=MAC_DUP.upper())
    assert w.cleared == [(100, MAC_DUP)]
    assert (reply.cleared, reply.mac) == (1, MAC_DUP)
    assert w.core.mobility.duplicates() == []
    again = await ask(w, "clear dup-addr")
    assert again.cleared == 0
    with pytest.raises(protocol.ProtocolError, match="not a MAC"):
        await ask(w, "clear dup-addr", mac="zz")


async def test_kernel_diff_from_the_dataplane_format():
    w = make_world()
    w.diff = {"missing": [], "extra": [], "different": [], "conflicts": [], "counts": {}}
    assert (await ask(w, "show kernel diff")).converged
    # Dataplane.kernel_diff() entries (evpnd/dataplane/plan.py: diff), values as it gives them
    w.diff = {
        "missing": [{"kind": "fdb", "vni": 100, "key": MAC_REMOTE, "want": B}],
        "extra": [{"kind": "neigh", "vni": 100, "key": "10.1.0.99", "have": "02:00:00:00:00:99"}],
        "different": [{"kind": "route", "vni": 5000, "key": "10.8.0.0/24",
                       "want": [B, "br5000"], "have": [C, "br5000"]}],
        "conflicts": [{"kind": "fdb", "vni": 100, "key": MAC_STALE, "want": C}],
        "counts": {"missing": 1, "extra": 1, "different": 1, "conflicts": 1},
    }  # fmt: skip
    reply = await ask(w, "show kernel diff")
    assert not reply.converged
    assert [(e.problem, e.kind, e.key, e.wanted, e.kernel) for e in reply.entries] == [
        ("missing", "fdb", MAC_REMOTE, B, None),
        ("conflict", "fdb", MAC_STALE, C, None),
        ("extra", "neigh", "10.1.0.99", None, "02:00:00:00:00:99"),
        ("different", "route", "10.8.0.0/24", f"{B} br5000", f"{C} br5000"),
    ]


async def test_explain_remote_mac_local_winner_and_unknown():
    w = make_world()
    remote = await ask(w, "explain", target=MAC_REMOTE)
    (v,) = remote.vnis
    assert v.vni == 100 and v.kernel == B and v.winner.peer == B and v.reason
    moved = (await ask(w, "explain", target=MAC_MOVED.replace(":", "-"))).vnis[0]
    assert moved.winner.peer == "local" and moved.kernel is None
    assert "higher sequence (4 > 3)" in moved.reason and moved.why_not
    assert [c.peer for c in moved.candidates] == ["local", B]
    dup = (await ask(w, "explain", target=MAC_DUP)).vnis[0]
    assert dup.duplicate
    ip = await ask(w, "explain", target="10.1.0.21", vni=100)
    assert ip.kind == "ip" and ip.vnis[0].kernel == MAC_REMOTE
    routed = await ask(w, "explain", target="10.8.0.77")  # inside B's type-5 10.8.0.0/24
    assert routed.vnis == []
    assert [(r.vni, r.prefix) for r in routed.routes] == [(5000, "10.8.0.0/24")]
    assert routed.routes[0].kernel.startswith(f"via {B}")
    foreign = await ask(w, "explain", target=MAC_FOREIGN)
    assert foreign.vnis == [] and B in foreign.why_not  # received from B, not imported
    with pytest.raises(QueryError, match="not a MAC or IP"):
        await ask(w, "explain", target="hello")


async def test_show_status():
    w = make_world()
    s = await ask(w, "show status")
    assert (s.vnis, s.peers, s.peers_up) == (3, 2, 1)
    assert s.routes == sum(len(t) for t in w.core.rib.adj_in.values())


async def test_frozen_flag_is_the_same_rule_in_show_routes_and_explain():
    """A path labelled VNI 200 whose route target imports it into VNI 100, where its MAC is
    frozen: `show routes` and `explain` both call it frozen (they used to disagree: one
    looked at the VNIs the path is imported into, the other at its label)."""
    w = make_world()
    relabelled = Path(
        MacIpKey(f"{B}:7", 0, MAC_DUP, None), B, B, vni=200, attrs=attrs(65002, 100, seq=5)
    )
    w.apply(RouteUpdate(B, [relabelled]))
    in_routes = [
        r.flags
        for r in (await ask(w, "show routes")).routes
        if r.rd == f"{B}:7" and r.mac == MAC_DUP
    ]
    candidates = (await ask(w, "explain", target=MAC_DUP, vni=100)).vnis[0].candidates
    in_explain = [c.flags for c in candidates if c.rd == f"{B}:7"]
    assert in_routes == in_explain
    assert len(in_routes) == 1 and "frozen" in in_routes[0]
    # a path of a MAC frozen nowhere is not frozen in either
    plain = [r.flags for r in (await ask(w, "show routes")).routes if r.mac == MAC_REMOTE]
    assert plain and all("frozen" not in f for f in plain)
