"""The core: loop rejection, peers going down, graceful restart, local routes, IRB, views."""

from __future__ import annotations

import pytest

from evpnd.config import core_settings, parse_config
from evpnd.core import Core
from evpnd.core.desired import RouteNextHop
from evpnd.core.events import (
    CommandReply,
    EndOfRib,
    LocalMac,
    Notification,
    PeerOpen,
    PeerState,
    RouteUpdate,
)
from evpnd.core.path_groups import group_paths
from evpnd.routes.evpn import ImetKey, MacIpKey, Pmsi, PrefixKey

from .core_helpers import (
    ROUTER_MAC,
    announce,
    apply_all,
    assert_consistent,
    make_cfg,
    make_core,
    rd_for,
    t2,
    t3,
    t5,
    withdraw,
)

MAC = "02:00:00:00:00:01"
RMAC2 = "02:bb:00:00:00:02"


# ----------------------------------------------------------------------------- start


def test_start_originates_type3_per_l2vni_and_type5_per_prefix():
    core = Core(core_settings(make_cfg()))
    effects = core.start(0.0)
    assert effects.withdraw == []
    by_key = {p.key: p for p in effects.announce}
    imet = by_key[ImetKey(rd_for(core, 100), 0, "192.0.2.1")]
    assert imet.attrs.pmsi == Pmsi(6, 100, "192.0.2.1")
    assert imet.attrs.route_targets == ("65001:100",) and imet.attrs.encap == 8
    assert imet.vni == 100 and imet.next_hop == "192.0.2.1" and imet.peer == "local"
    assert ImetKey(rd_for(core, 200), 0, "192.0.2.1") in by_key
    prefix = by_key[PrefixKey(rd_for(core, 5000), 0, "10.1.0.0/24")]
    assert prefix.vni == 5000 and prefix.gateway == "0.0.0.0"
    assert prefix.attrs.router_mac == ROUTER_MAC
    assert prefix.attrs.route_targets == ("65001:5000",)
    assert len(effects.announce) == 3
    assert sorted(core.advertised()) == sorted(effects.announce)
    # Own routes put nothing into the kernel's wanted state (no flood to ourselves).
    assert core.desired.counts() == dict.fromkeys(core.desired.counts(), 0)


def test_auto_rd_and_rt_follow_frr():
    core = Core(core_settings(make_cfg(asn=4200000001)))
    paths = core.start(0.0).announce
    imet = next(p for p in paths if p.vni == 100)
    assert imet.key.rd == "192.0.2.1:1"
    assert imet.attrs.route_targets == (
        core_settings(make_cfg(asn=4200000001)).l2vnis[0].export_rts[0],
    )


def test_ipv6_prefix_gateway():
    core = Core(
        core_settings(
            make_cfg(
                l3vnis=[{"vni": 5000, "table": 9, "advertise_prefixes": ["2001:db8:1::/64"]}],
            )
        )
    )
    (t5p,) = [p for p in core.start(0.0).announce if isinstance(p.key, PrefixKey)]
    assert t5p.gateway == "::" and t5p.key.prefix == "2001:db8:1::/64"


# ----------------------------------------------------------------------------- rejection

LOOPS = [
    ("rejected_own_as", dict(as_path=(65002, 65001))),
    ("rejected_own_rd", dict(rd="192.0.2.1:1")),
    ("rejected_originator", dict(originator_id="192.0.2.1")),
    ("rejected_no_vni", dict(rts=("65002:777",))),
]


@pytest.mark.parametrize("reason,kw", LOOPS, ids=[r for r, _ in LOOPS])
def test_loop_rejections_are_counted(reason, kw):
    core = make_core()
    path = t2("192.0.2.2", MAC, **kw)
    apply_all(core, announce(path))
    assert core.counters[reason] == 1
    assert core.desired.fdb[100] == {}
    stats = core.views.peers()[path.peer]
    assert stats.received == 1 and stats.rejected == 1 and stats.accepted == 0
    assert reason.removeprefix("rejected_") in str(core.views.explain(MAC)) or reason == (
        "rejected_no_vni"
    )


def test_own_vtep_next_hop_rejected():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.1", MAC, peer="10.0.0.2")))
    apply_all(core, announce(t3("192.0.2.1", peer="10.0.0.2")))
    assert core.counters["rejected_own_vtep"] == 2
    assert core.desired.fdb[100] == {} and core.desired.flood[100] == set()


def test_malformed_next_hop_rejected():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC)._replace(next_hop="not-an-ip")))
    assert core.counters["rejected_malformed"] == 1
    assert core.desired.fdb[100] == {}


def test_rejected_replacement_withdraws_the_earlier_path():
    # RFC 7606 treat-as-withdraw: a peer's new, looped path for a key removes its old one.
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC)))
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    apply_all(core, announce(t2("192.0.2.2", MAC, as_path=(65002, 65001))))
    assert core.desired.fdb[100] == {}
    assert_consistent(core)


def test_no_vni_path_is_kept_and_imported_after_reconfigure():
    core = make_core()
    path = t2("192.0.2.2", MAC, rts=("65002:300",), vni=300)
    apply_all(core, announce(path))
    assert core.counters["rejected_no_vni"] == 1
    why = core.views.explain(MAC)
    assert "no VNI imports it" in why.why_not
    cfg = make_cfg(
        l2vnis=[
            {"vni": 100, "bridge": "br100"},
            {"vni": 200, "bridge": "br200"},
            {"vni": 300, "bridge": "br300"},
        ]
    )
    desired = core.desired
    effects = core.reconfigure(core_settings(cfg), 1.0)
    assert core.desired is desired  # the dataplane keeps a reference to it
    assert core.desired.fdb[300] == {MAC: "192.0.2.2"}
    assert ("fdb", 300, MAC) in core.desired.drain()
    # The new VNI gets its own type-3.
    assert [p.vni for p in effects.announce if isinstance(p.key, ImetKey)] == [300]
    assert_consistent(core)


# ----------------------------------------------------------------------------- peers


def test_peer_down_flushes_its_paths():
    core = make_core()
    a, b = t2("192.0.2.2", MAC), t2("192.0.2.3", "02:00:00:00:00:02")
    apply_all(core, announce(a, b, t3("192.0.2.2")))
    core.apply(PeerState(a.peer, "up"), 1.0)
    assert core.views.peers()[a.peer].since == 1.0
    core.desired.drain()
    core.apply(PeerState(a.peer, "down", reason="hold timer"), 2.0)
    assert core.desired.fdb[100] == {"02:00:00:00:00:02": "192.0.2.3"}
    assert core.desired.flood[100] == set()
    assert core.desired.drain() == {("fdb", 100, MAC), ("flood", 100, "192.0.2.2")}
    stats = core.views.peers()[a.peer]
    assert stats.state == "down" and stats.paths == 0 and stats.since is None
    assert_consistent(core)


def test_graceful_restart_keeps_stale_paths_until_timeout():
    core = make_core(exabgp={"graceful_restart": 120})
    a, b = t2("192.0.2.2", MAC), t2("192.0.2.2", "02:00:00:00:00:02")
    apply_all(core, announce(a, b))
    core.apply(PeerOpen(a.peer, 120, {"l2vpn evpn": True}), 0.0)  # negotiated graceful restart
    core.apply(PeerState(a.peer, "down"), 10.0)
    assert core.desired.fdb[100] == {MAC: "192.0.2.2", "02:00:00:00:00:02": "192.0.2.2"}
    flags = {
        item.path.key: item.flags.stale for item in core.views.routes() if not item.flags.local
    }
    assert flags == {a.key: True, b.key: True}
    core.apply(PeerState(a.peer, "up"), 20.0)
    apply_all(core, announce(a), now=21.0)  # re-announced: fresh again
    assert not core.tick(129.0)
    assert len(core.desired.fdb[100]) == 2
    core.tick(130.0)  # restart time over: the still-stale path goes
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    assert core.counters["stale_swept"] == 1
    assert_consistent(core)


def test_end_of_rib_sweeps_stale_paths_at_once():
    core = make_core(exabgp={"graceful_restart": 120})
    a, b = t2("192.0.2.2", MAC), t2("192.0.2.2", "02:00:00:00:00:02")
    apply_all(core, announce(a, b))
    core.apply(PeerOpen(a.peer, 120, {"l2vpn evpn": True}), 0.0)  # negotiated graceful restart
    core.apply(PeerState(a.peer, "down"), 10.0)
    core.apply(PeerState(a.peer, "up"), 11.0)
    apply_all(core, announce(b), now=12.0)
    core.apply(EndOfRib(a.peer), 13.0)
    assert core.desired.fdb[100] == {"02:00:00:00:00:02": "192.0.2.2"}
    assert core.rib.stale == {} and core.rib.stale_deadline == {}
    assert_consistent(core)


def test_stale_path_loses_to_a_fresh_one_from_another_peer():
    core = make_core(exabgp={"graceful_restart": 60})
    via1 = t2("192.0.2.2", MAC, peer="10.0.0.101", seq=1)
    via2 = t2("192.0.2.2", MAC, peer="10.0.0.102", seq=1)
    apply_all(core, announce(via1, via2))
    assert core.rib.best[via1.key].peer == "10.0.0.101"
    core.apply(PeerOpen("10.0.0.101", 120, {"l2vpn evpn": True}), 0.0)  # negotiated GR
    core.apply(PeerState("10.0.0.101", "down"), 1.0)
    assert core.rib.best[via1.key].peer == "10.0.0.102"
    assert_consistent(core)


def test_withdraw_from_one_of_two_reflectors_keeps_the_route():
    core = make_core()
    via1 = t2("192.0.2.2", MAC, peer="10.0.0.101")
    via2 = t2("192.0.2.2", MAC, peer="10.0.0.102")
    apply_all(core, announce(via1, via2))
    apply_all(core, withdraw(via1))
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    apply_all(core, withdraw(via2))
    assert core.desired.fdb[100] == {}


def test_losing_one_of_two_reflectors_moves_the_path_without_rewriting_entries():
    """The second reflector's copy of each route (other peer, CLUSTER_LIST, ORIGINATOR_ID)
    takes over in the indexes; the FDB, neighbour and host-route values stay, nothing is
    dirty. A copy that differs in what the rules read (here the sequence) is re-derived."""
    core = make_core()
    ip = "10.1.0.9"
    kw = {"l3vni": 5000, "rmac": RMAC2, "rts": ("65002:100", "65002:5000")}
    via1 = t2("192.0.2.2", MAC, ip, peer="10.0.0.101", originator_id="192.0.2.2", **kw)
    via2 = t2("192.0.2.2", MAC, ip, peer="10.0.0.102", originator_id="192.0.2.2", **kw)
    via2 = via2._replace(attrs=via2.attrs._replace(cluster_list=("10.0.0.102",)))
    other = t2("192.0.2.3", "02:00:00:00:00:02", peer="10.0.0.101")
    apply_all(core, announce(via1, via2, other))
    assert core.rib.best[via1.key].peer == "10.0.0.101"
    wanted = core.desired.snapshot()
    core.desired.drain()
    core.apply(PeerState("10.0.0.101", "down"), 1.0)
    assert core.rib.best[via1.key] is via2
    assert core.indexes.macs[(100, MAC)] is via2
    assert core.indexes.ips[(100, ip)] is via2
    assert core.indexes.prefixes[(5000, "10.1.0.9/32")] is via2
    assert core.desired.drain() == {("fdb", 100, "02:00:00:00:00:02")}
    del wanted["fdb"][100]["02:00:00:00:00:02"]
    assert core.desired.snapshot() == wanted
    assert_consistent(core)
    # A higher sequence from the remaining reflector is not equivalent: the rules decide.
    moved = t2("192.0.2.4", MAC, ip, peer="10.0.0.101", seq=3, originator_id="192.0.2.4", **kw)
    apply_all(core, announce(moved))
    assert core.desired.fdb[100][MAC] == "192.0.2.4"
    apply_all(core, withdraw(moved))
    assert core.desired.fdb[100][MAC] == "192.0.2.2"
    assert_consistent(core)


def test_other_events_are_ignored():
    core = make_core()
    assert not core.apply(Notification("10.0.0.2", 6, 2, "admin down"), 1.0)
    assert not core.apply(CommandReply(True), 1.0)
    assert not core.apply(EndOfRib("10.0.0.9"), 1.0)


# ----------------------------------------------------------------------------- desired


def test_flood_list_from_type3_pmsi_endpoint():
    core = make_core()
    apply_all(core, announce(t3("192.0.2.2"), t3("192.0.2.3", pmsi_endpoint="198.51.100.3")))
    assert core.desired.flood[100] == {"192.0.2.2", "198.51.100.3"}
    apply_all(core, withdraw(t3("192.0.2.2")))
    assert core.desired.flood[100] == {"198.51.100.3"}
    assert_consistent(core)


def test_symmetric_irb_host_route_and_rmac():
    core = make_core()
    rts = ("65002:100", "65002:5000")
    path = t2("192.0.2.2", MAC, "10.1.0.5", rts=rts, l3vni=5000, rmac=RMAC2)
    apply_all(core, announce(path))
    assert core.desired.fdb[100] == {MAC: "192.0.2.2"}
    assert core.desired.neigh[100] == {"10.1.0.5": MAC}
    assert core.desired.routes[5000] == {"10.1.0.5/32": RouteNextHop("192.0.2.2", RMAC2)}
    assert core.desired.rmacs[5000] == {"192.0.2.2": RMAC2}
    assert core.desired.drain() == {
        ("fdb", 100, MAC),
        ("neigh", 100, "10.1.0.5"),
        ("route", 5000, "10.1.0.5/32"),
        ("rmac", 5000, "192.0.2.2"),
    }
    assert_consistent(core)
    apply_all(core, withdraw(path))
    assert core.desired.routes[5000] == {} and core.desired.rmacs[5000] == {}
    assert core.desired.drain() == {
        ("fdb", 100, MAC),
        ("neigh", 100, "10.1.0.5"),
        ("route", 5000, "10.1.0.5/32"),
        ("rmac", 5000, "192.0.2.2"),
    }


def test_host_route_v6_and_only_l3_rt():
    # A host in a VNI we do not have, but in our tenant: only the /128 host route.
    core = make_core()
    path = t2("192.0.2.2", MAC, "2001:db8::5", vni=900, rts=("65002:5000",), l3vni=5000)
    apply_all(core, announce(path))
    assert core.desired.routes[5000] == {"2001:db8::5/128": RouteNextHop("192.0.2.2", None)}
    assert core.desired.fdb[100] == {}
    assert core.counters["rejected_no_vni"] == 0


def test_type5_routes_and_rmacs():
    core = make_core()
    a = t5("192.0.2.2", "10.9.0.0/24", rmac=RMAC2)
    b = t5("192.0.2.3", "10.9.0.0/24", rmac="02:cc:00:00:00:03")
    apply_all(core, announce(b, a))
    # Same prefix from two VTEPs: deterministic, the lowest VTEP.
    assert core.desired.routes[5000] == {"10.9.0.0/24": RouteNextHop("192.0.2.2", RMAC2)}
    assert core.desired.rmacs[5000] == {"192.0.2.2": RMAC2}
    apply_all(core, withdraw(a))
    assert core.desired.routes[5000] == {
        "10.9.0.0/24": RouteNextHop("192.0.2.3", "02:cc:00:00:00:03")
    }
    assert core.desired.rmacs[5000] == {"192.0.2.3": "02:cc:00:00:00:03"}
    # Our own prefix is local: a remote copy installs nothing.
    apply_all(core, announce(t5("192.0.2.4", "10.1.0.0/24")))
    assert "10.1.0.0/24" not in core.desired.routes[5000]
    assert_consistent(core)


def test_explicit_import_rts():
    core = make_core(
        l2vnis=[{"vni": 100, "bridge": "br100", "import_rts": ["65000:1"]}],
        l3vnis=[],
    )
    apply_all(core, announce(t2("192.0.2.2", MAC, rts=("65002:100",))))
    assert core.desired.fdb[100] == {}
    assert core.counters["rejected_no_vni"] == 1
    apply_all(core, announce(t2("192.0.2.3", MAC, rts=("65000:1",))))
    assert core.desired.fdb[100] == {MAC: "192.0.2.3"}


# ----------------------------------------------------------------------------- local


def test_local_mac_in_unknown_vni_is_counted():
    core = make_core()
    assert not core.apply(LocalMac(999, MAC), 1.0)
    assert core.counters["local_unknown_vni"] == 1


def test_local_mac_ip_in_l2vni_without_l3vni():
    core = make_core()
    (path,) = core.apply(LocalMac(200, MAC, ip="10.2.0.1"), 1.0).announce
    assert path.l3vni == 0 and path.attrs.route_targets == ("65001:200",)
    assert path.attrs.router_mac is None and path.key.rd == rd_for(core, 200)


def test_local_host_route_beats_remote_one():
    core = make_core()
    core.apply(LocalMac(100, MAC, ip="10.1.0.5"), 1.0)
    rts = ("65002:100", "65002:5000")
    other = t2("192.0.2.2", "02:00:00:00:00:09", "10.1.0.5", rts=rts, l3vni=5000, rmac=RMAC2)
    apply_all(core, announce(other))
    assert "10.1.0.5/32" not in core.desired.routes[5000]
    assert_consistent(core)


def test_reconfigure_withdraws_removed_and_changed():
    core = Core(core_settings(make_cfg()))
    first = {p.key: p for p in core.start(0.0).announce}
    core.apply(LocalMac(200, MAC), 1.0)
    cfg = make_cfg(
        l2vnis=[{"vni": 100, "bridge": "br100", "export_rts": ["65001:1100"]}],
        l3vnis=[],
    )
    effects = core.reconfigure(core_settings(cfg), 2.0)
    withdrawn = {p.key for p in effects.withdraw}
    # VNI 200 (its type-3 and the local MAC) and the type-5 are gone.
    assert ImetKey(first_rd(first, 200), 0, "192.0.2.1") in withdrawn
    assert any(isinstance(k, PrefixKey) for k in withdrawn)
    assert any(isinstance(k, MacIpKey) for k in withdrawn)
    (imet,) = effects.announce
    assert imet.attrs.route_targets == ("65001:1100",)
    assert core.advertised() == [imet]
    assert_consistent(core)


def first_rd(paths: dict, vni: int) -> str:
    return next(p.key.rd for p in paths.values() if p.vni == vni and isinstance(p.key, ImetKey))


def test_reconfigure_to_own_rd_drops_looping_paths():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC, rd="192.0.2.2:100")))
    cfg = make_cfg(l2vnis=[{"vni": 100, "bridge": "br100", "rd": "192.0.2.2:100"}], l3vnis=[])
    core.reconfigure(core_settings(cfg), 1.0)
    assert core.desired.fdb[100] == {}
    assert core.counters["rejected_own_rd"] == 1


# ----------------------------------------------------------------------------- views


def test_views():
    core = make_core()
    rts = ("65002:100", "65002:5000")
    apply_all(
        core,
        announce(
            t2("192.0.2.2", MAC, "10.1.0.5", rts=rts, l3vni=5000, rmac=RMAC2, seq=2),
            t2("192.0.2.3", MAC, seq=1),
        ),
    )
    core.apply(LocalMac(100, "02:00:00:00:00:0a", sticky=True), 1.0)
    rows = {(r.vni, r.mac): r for r in core.views.mac_table()}
    remote = rows[(100, MAC)]
    assert remote.type == "remote" and remote.vtep == "192.0.2.2"
    assert remote.remote_seq == 2 and remote.ips == ("10.1.0.5",) and remote.paths == 2
    local = rows[(100, "02:00:00:00:00:0a")]
    assert local.type == "local" and local.sticky and local.vtep is None
    why = core.views.explain(MAC)
    (item,) = why.vnis
    assert item.winner.path.next_hop == "192.0.2.2"
    assert item.reason == "higher sequence (2 > 1)"
    assert item.kernel == "192.0.2.2"
    assert len(item.candidates) == 2
    by_ip = core.views.explain("10.1.0.5")
    assert by_ip.kind == "ip" and by_ip.vnis[0].kernel == MAC
    assert by_ip.routes[0].kernel == RouteNextHop("192.0.2.2", RMAC2)
    local_why = core.views.explain("02:00:00:00:00:0a").vnis[0]
    assert "local" in local_why.why_not and local_why.local.sticky
    assert core.views.explain("02:00:00:00:00:ff", vni=100).vnis[0].why_not == "no route for it"
    flags = [i for i in core.views.routes() if i.flags.best and not i.flags.local]
    assert {f.path.next_hop for f in flags} == {"192.0.2.2", "192.0.2.3"}
    assert all(f.l2vnis == (100,) for f in flags)


def test_route_update_for_local_peer_name_is_refused():
    core = make_core()
    core.apply(RouteUpdate("local", announced=[t2("192.0.2.2", MAC)]), 1.0)
    assert core.desired.fdb[100] == {}


def test_reconfigure_without_changes_is_quiet():
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC), t3("192.0.2.2")))
    core.apply(LocalMac(100, "02:00:00:00:00:0a"), 1.0)
    core.desired.drain()
    cfg = parse_config(make_cfg().model_dump(mode="json"))
    assert not core.reconfigure(core_settings(cfg), 2.0)
    assert core.desired.drain() == set()


def test_reconfigure_changes_local_mac_routes():
    core = make_core()
    (before,) = core.apply(LocalMac(100, MAC, ip="10.1.0.5"), 1.0).announce
    assert set(before.attrs.route_targets) == {"65001:100", "65001:5000"}
    cfg = make_cfg(
        l2vnis=[
            {"vni": 100, "bridge": "br100", "export_rts": ["65001:7"], "sticky_macs": [MAC]},
            {"vni": 200, "bridge": "br200"},
        ],
        l3vnis=[{"vni": 5000, "table": 5000, "l2vnis": [100], "router_mac": "02:00:00:00:99:99"}],
    )
    effects = core.reconfigure(core_settings(cfg), 2.0)
    (after,) = [p for p in effects.announce if isinstance(p.key, MacIpKey)]
    assert set(after.attrs.route_targets) == {"65001:7", "65001:5000"}
    assert after.attrs.router_mac == "02:00:00:00:99:99" and after.attrs.sticky
    assert after.key == before.key
    assert before not in effects.withdraw  # same NLRI: a new announce replaces it
    assert_consistent(core)


def test_notices_for_the_daemon_to_log():
    core = make_core(exabgp={"graceful_restart": 5})
    apply_all(
        core, announce(t2("192.0.2.2", MAC, as_path=(65001,)), t2("192.0.2.2", "02:00:00:00:00:07"))
    )
    core.apply(LocalMac(100, "02:00:00:00:00:08"), 1.0)
    apply_all(core, announce(t2("192.0.2.3", "02:00:00:00:00:08", seq=4)), now=2.0)
    core.apply(LocalMac(999, MAC), 3.0)
    core.apply(LocalMac(100, "nonsense"), 3.0)
    core.apply(PeerOpen("10.0.0.2", 120, {"l2vpn evpn": True}), 4.0)  # negotiated GR
    core.apply(PeerState("10.0.0.2", "down"), 4.0)
    core.tick(10.0)
    events = [n["event"] for n in core.drain_notices()]
    assert events == [
        "paths_rejected",
        "mac_moved_away",
        "local_mac_refused",
        "local_mac_refused",
        "stale_swept",
    ]
    assert core.drain_notices() == []


# ----------------------------------------------------------------------------- real captures

FIXTURES = __import__("pathlib").Path(__file__).parent.parent / "fixtures" / "exabgp"


def _feed(core: Core, name: str, now: float = 1.0):
    from evpnd.core import Effects
    from tests.unit.rx_fixtures import Receiver

    receiver = Receiver()  # UPDATEs raw, as evpnd's extension hands them over; the rest JSON
    effects = Effects()
    for line in (FIXTURES / name).read_text().splitlines():
        for event in receiver.decode(line):
            effects.extend(core.apply(event, now))
    return effects


def _capture_cfg(**overrides):
    data = {
        "l2vnis": [{"vni": 100, "bridge": "br100"}],
        "l3vnis": [{"vni": 5000, "table": 5000, "l2vnis": [100]}],
    }
    data.update(overrides)
    return make_cfg(**data)


def test_captured_exabgp_lines_from_frr_and_gobgp():
    """The ExaBGP JSON of real FRR (10.0.1.2) and GoBGP (10.0.2.2) peers, decoded by the
    speaker's decoders, through the core: announces, withdraws, type-5 with a router MAC, IPv6."""
    core = Core(core_settings(_capture_cfg()))
    core.start(0.0)
    _feed(core, "received-json-samples.jsonl")
    d = core.desired
    assert d.fdb[100] == {"3a:2c:a6:f7:ca:d5": "192.0.2.2", "02:00:00:00:00:03": "192.0.2.3"}
    assert d.flood[100] == {"192.0.2.2"}
    assert d.neigh[100] == {"2001:db8:100::33": "02:00:00:00:00:03"}
    assert d.routes[5000] == {
        "2001:db8:200::/64": RouteNextHop("192.0.2.3", "02:00:00:00:ee:03"),
    }
    assert d.rmacs[5000] == {"192.0.2.3": "02:00:00:00:ee:03"}
    stats = core.views.peers()
    assert stats["10.0.1.2"].state == "up" and stats["10.0.1.2"].accepted == 2
    assert stats["10.0.2.2"].withdrawn == 3
    assert_consistent(core)


def test_captured_frr_reflection_of_our_routes_is_rejected():
    # FRR reflected the routes ExaBGP announced for us (AS 65001, RD 192.0.2.1:100).
    core = Core(
        core_settings(_capture_cfg(l2vnis=[{"vni": 100, "bridge": "br100", "rd": "192.0.2.1:100"}]))
    )
    core.start(0.0)
    _feed(core, "frr-reflects-exabgp-announces.jsonl")
    assert core.counters["rejected_own_as"] == 6  # 3 type-2, 1 type-3, 2 type-5
    assert core.desired.counts() == dict.fromkeys(core.desired.counts(), 0)
    assert core.rib.adj_in.get("10.0.1.2", {}) == {}
    _feed(core, "frr-withdraw-after-exabgp-withdraw.jsonl")  # withdraws of unknown keys
    assert core.desired.counts() == dict.fromkeys(core.desired.counts(), 0)


def test_captured_frr_mac_move_beats_our_local_mac():
    # FRR learned 02:00:00:00:aa:01 after us and advertised it with sequence 1.
    core = Core(core_settings(_capture_cfg()))
    core.start(0.0)
    (ours,) = core.apply(LocalMac(100, "02:00:00:00:AA:01"), 0.5).announce
    assert ours.attrs.mobility_seq == 0
    effects = _feed(core, "frr-type2-mac-mobility-move.jsonl")
    assert effects.withdraw == [ours]
    assert core.desired.fdb[100] == {"02:00:00:00:aa:01": "192.0.2.2"}
    (row,) = core.views.mac_table(100)
    assert row.type == "remote" and row.remote_seq == 1 and row.local_seq == 0


def test_captured_gobgp_flaps_flush_nothing_twice():
    core = Core(core_settings(_capture_cfg()))
    core.start(0.0)
    _feed(core, "received-json-samples.jsonl")
    _feed(core, "gobgp-peer-disable-enable.jsonl", now=2.0)
    assert core.views.peers()["10.0.2.2"].state == "down"
    assert core.desired.fdb[100] == {"3a:2c:a6:f7:ca:d5": "192.0.2.2"}
    assert core.desired.routes[5000] == {}
    assert_consistent(core)


def test_link_local_ipv6_host_gets_no_l3_attributes():
    core = make_core()
    effects = core.apply(LocalMac(100, MAC, ip="fe80::1"), 1.0)
    effects.extend(core.apply(LocalMac(100, MAC, ip="2001:db8::1"), 1.0))
    by_ip = {p.key.ip: p for p in effects.announce}
    assert by_ip["fe80::1"].l3vni == 0 and by_ip["fe80::1"].attrs.router_mac is None
    assert by_ip["fe80::1"].attrs.route_targets == ("65001:100",)
    assert by_ip["2001:db8::1"].l3vni == 5000
    assert "fe80::1/128" not in core.desired.routes[5000]
    assert_consistent(core)


def test_reconfigure_that_changes_the_nlri_withdraws_then_announces():
    core = make_core()
    (before,) = core.apply(LocalMac(100, MAC, ip="10.1.0.5"), 1.0).announce
    assert before.l3vni == 5000
    cfg = make_cfg(l3vnis=[{"vni": 5000, "table": 5000, "l2vnis": []}])  # 100 leaves the tenant
    effects = core.reconfigure(core_settings(cfg), 2.0)
    assert before in effects.withdraw  # ExaBGP keys on the labels: the old NLRI must go
    (after,) = [p for p in effects.announce if isinstance(p.key, MacIpKey)]
    assert after.key == before.key and after.l3vni == 0
    assert_consistent(core)


def test_core_settings_are_plain_values_built_from_the_config():
    """The daemon hands the core CoreSettings (evpnd.config.core_settings); a test or another
    program can write them by hand: the core needs no pydantic Config."""
    from evpnd.core import CoreSettings, DadSettings, L2VniSettings, L3VniSettings

    by_hand = CoreSettings(
        router_id="192.0.2.1",
        asn=65001,
        vtep="192.0.2.1",
        l2vnis=(
            L2VniSettings(100, "192.0.2.1:1", ("65001:100",), l3vni=5000),
            L2VniSettings(200, "192.0.2.1:2", ("65001:200",)),
        ),
        l3vnis=(
            L3VniSettings(
                5000,
                "192.0.2.1:3",
                ("65001:5000",),
                router_mac=ROUTER_MAC,
                advertise_prefixes=("10.1.0.0/24",),
            ),
        ),
        duplicate_detection=DadSettings(True, 5, 180.0),
        graceful_restart=0,
    )
    assert core_settings(make_cfg()) == by_hand
    cfg = make_cfg(
        l2vnis=[{"vni": 100, "bridge": "br100", "import_rts": ["65002:7"], "sticky_macs": [MAC]}],
        l3vnis=[],
        duplicate_detection={"enabled": False, "max_moves": 3, "time": 30},
        exabgp={"graceful_restart": 90},
    )
    settings = core_settings(cfg)
    (l2,) = settings.l2vnis
    assert (l2.import_rts, l2.sticky_macs, l2.l3vni) == (("65002:7",), frozenset({MAC}), None)
    assert settings.duplicate_detection == DadSettings(False, 3, 30.0)
    assert settings.graceful_restart == 90
    core = Core(by_hand)
    announced = {p.key for p in core.start(0.0).announce}
    assert announced == {p.key for p in Core(core_settings(make_cfg())).start(0.0).announce}


def test_explain_a_mac_lists_each_route_once_and_compares_vteps():
    """A remote VTEP advertising a MAC alone and with its IP gives two routes for the MAC:
    explain lists each once (MAC-only first), and `why` is not "same VTEP" (the MAC/IP route
    compared with the MAC-only one of the same VTEP) but the rule against another VTEP, or
    only VTEP when there is none. The same for a local MAC advertised with its IP."""
    core = make_core()
    apply_all(core, announce(t2("192.0.2.2", MAC, "10.1.0.5", seq=2), t2("192.0.2.2", MAC, seq=2)))
    (item,) = core.views.explain(MAC).vnis
    assert [c.path.key.ip for c in item.candidates] == [None, "10.1.0.5"]
    assert item.winner.path.key.ip is None
    assert item.reason == "only VTEP (2 routes from 192.0.2.2)"
    apply_all(core, announce(t2("192.0.2.3", MAC, seq=1)))
    (item,) = core.views.explain(MAC).vnis
    assert [(c.path.next_hop, c.path.key.ip) for c in item.candidates] == [
        ("192.0.2.2", None),
        ("192.0.2.2", "10.1.0.5"),
        ("192.0.2.3", None),
    ]
    assert item.reason == "higher sequence (2 > 1)"

    local_mac = "02:00:00:00:00:0a"
    core.apply(LocalMac(100, local_mac), 1.0)
    core.apply(LocalMac(100, local_mac, ip="10.1.0.10"), 1.0)
    (item,) = core.views.explain(local_mac).vnis
    assert [c.path.key.ip for c in item.candidates] == [None, "10.1.0.10"]
    assert all(c.path.peer == "local" for c in item.candidates)
    assert item.reason == "local: only VTEP (2 routes from 192.0.2.1)"


@pytest.mark.parametrize("order", ["first-wins", "second-wins"])
@pytest.mark.parametrize("kind", ["copy", "other-vtep", "higher-local-pref"])
def test_a_second_reflector_table_matches_the_decision_process(order, kind):
    """The second peer's path of a key goes a fast way (BgpInput.route_update, issue 14): the
    RIB, the indexes and the desired state must end as the general way (Rib.put, select_best,
    best_changed) leaves them, whichever reflector's table arrives first and whichever path
    wins: a copy of the route (same VTEP), a path to another VTEP, a better LOCAL_PREF."""
    from evpnd.core.rib import select_best

    macs = [f"02:00:00:00:01:{i:02x}" for i in range(40)]
    peers = ["10.0.0.101", "10.0.0.102"] if order == "first-wins" else ["10.0.0.102", "10.0.0.101"]
    tables = []
    for n, peer in enumerate(peers):
        vtep = "192.0.2.3" if kind == "other-vtep" and n == 1 else "192.0.2.2"
        # one RD: the same route (a reflector that rewrote the next hop, for other-vtep)
        paths = [
            t2(vtep, m, "10.1.0.9" if i % 4 == 0 else None, peer=peer, rd="192.0.2.2:100")
            for i, m in enumerate(macs)
        ]
        attrs = paths[0].attrs._replace(cluster_list=(peer,))
        if kind == "higher-local-pref" and n == 1:
            attrs = attrs._replace(local_pref=200)
        tables.append([p._replace(attrs=attrs) for p in paths])
    core = make_core()
    apply_all(core, announce(*tables[0]))
    apply_all(core, announce(*tables[1]))
    second_wins = order == "second-wins" or kind == "higher-local-pref"
    for first, second in zip(*tables, strict=True):
        key = first.key
        assert core.rib.adj_in[first.peer][key] is first
        assert core.rib.adj_in[second.peer][key] is second
        assert core.rib.multi[key] == {first.peer: first, second.peer: second}
        assert core.rib.best[key] is select_best(core.rib.multi[key], {})
        assert core.rib.best[key] is (second if second_wins else first)
        assert core.indexes.macs[(100, key.mac)] is core.rib.best[key]
    vtep = "192.0.2.3" if kind == "other-vtep" and second_wins else "192.0.2.2"
    assert core.desired.fdb[100] == {m: vtep for m in macs}
    assert_consistent(core)
    # and the loss of either reflector leaves the other's paths, as before
    core.apply(PeerState(peers[0], "down"), 1.0)
    assert all(core.rib.best[p.key] is p for p in tables[1])
    assert_consistent(core)


@pytest.mark.parametrize("gone", ["winner", "loser"])
@pytest.mark.parametrize("kind", ["copy", "other-vtep", "higher-local-pref", "irb", "local-mac"])
def test_one_of_two_reflectors_withdrawing_matches_the_decision_process(gone, kind):
    """A key one of two reflectors withdraws goes a fast way (BgpInput._withdraw_keys, issue
    14): the RIB, the indexes and the desired state must end as in a core that only ever had
    the other reflector's paths, whether the withdrawn path was the best or not, a copy of
    the other (same VTEP), a path to another VTEP, a better LOCAL_PREF, a symmetric-IRB host
    route, or a path for a MAC this VTEP also has locally."""
    macs = [f"02:00:00:00:01:{i:02x}" for i in range(40)]
    peers = ["10.0.0.101", "10.0.0.102"]
    kw: dict = {}
    if kind == "irb":
        kw = {"l3vni": 5000, "rmac": RMAC2, "rts": ("65002:100", "65002:5000")}
    tables = []
    for n, peer in enumerate(peers):
        vtep = "192.0.2.3" if kind == "other-vtep" and n == 1 else "192.0.2.2"
        paths = [
            t2(vtep, m, "10.1.0.9" if i % 4 == 0 else None, peer=peer, rd="192.0.2.2:100", **kw)
            for i, m in enumerate(macs)
        ]
        attrs = paths[0].attrs._replace(cluster_list=(peer,))
        if kind == "higher-local-pref" and n == 1:
            attrs = attrs._replace(local_pref=200)
        tables.append([p._replace(attrs=attrs) for p in paths])
    winner = 1 if kind == "higher-local-pref" else 0
    going = winner if gone == "winner" else 1 - winner
    staying = tables[1 - going]

    def loaded(*which: list) -> Core:
        core = make_core()
        if kind == "local-mac":
            core.apply(LocalMac(100, macs[3]), 0.0)
        for table in which:
            apply_all(core, announce(*table))
        return core

    core = loaded(*tables)
    assert all(core.rib.best[p.key] is p for p in tables[winner][1:])
    core.apply(RouteUpdate(peers[going], withdrawn=[p.key for p in tables[going]]), 1.0)
    reference = loaded(staying)
    assert core.desired.snapshot() == reference.desired.snapshot()
    assert_consistent(core)
    for path in staying:
        key = path.key
        assert key not in core.rib.multi and key not in core.rib.adj_in[peers[going]]
        assert core.rib.best[key] is path
        if key.mac != macs[3] or kind != "local-mac":
            assert core.indexes.macs[(100, key.mac)] is path
        if key.ip is not None:
            assert path in group_paths(core.indexes.ips[(100, key.ip)])
    if kind == "irb":
        prefix_paths = group_paths(core.indexes.prefixes[(5000, "10.1.0.9/32")])
        assert prefix_paths and all(p in staying for p in prefix_paths)
    # and the other reflector's withdraw leaves nothing of them
    core.apply(RouteUpdate(peers[1 - going], withdrawn=[p.key for p in staying]), 2.0)
    assert core.desired.snapshot() == loaded().desired.snapshot()
    assert_consistent(core)
