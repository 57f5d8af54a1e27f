"""The RIB: Adj-RIB-In replace/withdraw by key, best path across peers, RT import."""

from __future__ import annotations

import pytest

from evpnd.core.rib import Rib, path_targets, select_best
from evpnd.routes.evpn import Attributes

from .core_helpers import import_map, make_cfg, t2, t3, t5

MAC = "02:00:00:00:00:01"


@pytest.mark.parametrize(
    "rts,l2,l3",
    [
        (("65002:100",), (100,), ()),  # auto: the number part is the VNI, any ASN
        (("65001:100",), (100,), ()),
        (("4200000000:100",), (100,), ()),
        (("192.0.2.9:200",), (200,), ()),  # IPv4-administrator RT, number 200
        (("65002:5000",), (), (5000,)),
        (("65002:100", "65002:5000"), (100,), (5000,)),
        (("65002:300",), (), ()),  # no such VNI
        (("65002:100", "65002:200"), (100, 200), ()),
        ((), (), ()),
    ],
)
def test_auto_import(rts, l2, l3):
    imports = import_map(make_cfg())
    assert imports.targets(rts) == (l2, l3)


def test_explicit_import_rts_match_exactly_and_disable_auto():
    cfg = make_cfg(
        l2vnis=[
            {"vni": 100, "bridge": "br100", "import_rts": ["65000:1", "192.0.2.1:7"]},
            {"vni": 200, "bridge": "br200"},
        ],
        l3vnis=[{"vni": 5000, "table": 10, "import_rts": ["65000:9"]}],
    )
    imports = import_map(cfg)
    assert imports.targets(("65000:1",)) == ((100,), ())
    assert imports.targets(("192.0.2.1:7",)) == ((100,), ())
    assert imports.targets(("65002:100",)) == ((), ())  # explicit list: auto is off for 100
    assert imports.targets(("65000:200",)) == ((200,), ())  # 200 is still auto
    assert imports.targets(("65000:9",)) == ((), (5000,))
    assert imports.targets(("65000:5000",)) == ((), ())
    assert imports.targets(("65000:1", "65000:9")) == ((100,), (5000,))


def test_path_targets_by_route_type():
    imports = import_map(make_cfg())
    both = ("65002:100", "65002:5000")
    # Type 2 with IP and label 2: L2VNI plus a host route in the L3VNI (RFC 9135).
    assert path_targets(t2("192.0.2.2", MAC, "10.1.0.1", rts=both, l3vni=5000), imports) == (
        (100,),
        (5000,),
    )
    # No label 2, or no IP: not a symmetric-IRB host route.
    assert path_targets(t2("192.0.2.2", MAC, "10.1.0.1", rts=both), imports) == ((100,), ())
    assert path_targets(t2("192.0.2.2", MAC, rts=both, l3vni=5000), imports) == ((100,), ())
    # Type 3 only into L2VNIs, type 5 only into L3VNIs.
    assert path_targets(t3("192.0.2.2", rts=both), imports) == ((100,), ())
    assert path_targets(t5("192.0.2.2", "10.9.0.0/24", rts=both), imports) == ((), (5000,))


def test_new_path_from_same_peer_replaces_old():
    rib = Rib()
    a = t2("192.0.2.2", MAC, seq=1)
    b = t2("192.0.2.2", MAC, seq=2)
    assert rib.put(a) == (None, a)
    assert rib.put(b) == (a, b)
    assert rib.adj_in[a.peer] == {a.key: b}
    assert rib.remove(a.peer, a.key) == (b, None)
    assert rib.best == {} and rib.adj_in[a.peer] == {}
    assert rib.remove(a.peer, a.key) == (None, None)  # unknown: nothing happens


def test_best_across_peers_and_withdraw_of_best():
    rib = Rib()
    via_rr1 = t2("192.0.2.2", MAC, peer="10.0.0.101", as_path=(65100, 65002))
    via_rr2 = t2("192.0.2.2", MAC, peer="10.0.0.102", as_path=(65002,))
    rib.put(via_rr1)
    assert rib.put(via_rr2) == (via_rr1, via_rr2)  # shorter AS path
    assert rib.candidates(via_rr1.key) == {"10.0.0.101": via_rr1, "10.0.0.102": via_rr2}
    assert rib.remove("10.0.0.102", via_rr2.key) == (via_rr2, via_rr1)
    assert rib.multi == {}
    assert rib.candidates(via_rr1.key) == {"10.0.0.101": via_rr1}


def test_select_best_order():
    base = t2("192.0.2.2", MAC)
    lp = base._replace(peer="10.0.0.9", attrs=Attributes(local_pref=200, as_path=(1, 2, 3)))
    low_peer = base._replace(peer="10.0.0.1")
    assert select_best({p.peer: p for p in (base, lp, low_peer)}, {}) is lp
    assert select_best({p.peer: p for p in (base, low_peer)}, {}) is low_peer
    # A stale path (graceful restart) loses to any fresh one.
    assert select_best({p.peer: p for p in (base, lp)}, {lp.peer: {lp.key}}) is base


def test_stale_marking_and_reannounce():
    rib = Rib()
    a = t2("192.0.2.2", MAC)
    rib.put(a)
    assert rib.mark_stale(a.peer, 120.0) == [a.key]
    assert rib.is_stale(a)
    rib.put(a)  # re-announced after the restart: fresh again
    assert not rib.is_stale(a)
    assert rib.stale_keys(a.peer) == []
    rib.end_stale(a.peer)
    assert a.peer not in rib.stale_deadline


def test_prefer_agrees_with_the_decision_process():
    """prefer() (a second route reflector's path against the first, issue 14) decides as
    bgp_order does, for every combination of what EVPN peers differ in, local paths included."""
    import itertools

    from evpnd.core.rib import bgp_order, prefer
    from evpnd.routes.evpn import LOCAL_PEER

    variants = []
    for peer, lp, as_len, origin, med in itertools.product(
        ("10.0.0.101", "10.0.0.102", LOCAL_PEER), (None, 100, 200), (1, 2), ("igp", "incomplete"),
        (None, 0, 5),
    ):  # fmt: skip
        p = t2("192.0.2.2", MAC, peer=peer)
        attrs = p.attrs._replace(local_pref=lp, as_path=(65002,) * as_len, origin=origin, med=med)
        variants.append(p._replace(attrs=attrs))
    shared = variants[0]._replace(peer="10.0.0.103")  # the very same attributes object
    variants.append(shared)
    checked = 0
    for a in variants:
        for b in variants:
            if a.peer == b.peer:
                continue
            assert prefer(a, b) == (bgp_order(a, False) < bgp_order(b, False)), (a, b)
            checked += 1
    assert checked > 5_000
    assert prefer(variants[0], shared) == (variants[0].peer < shared.peer)


def test_a_second_path_against_a_stale_first_goes_the_whole_decision():
    """Rib.put ranks a second peer's path against the first with prefer() only when the first
    is fresh: a stale first path (graceful restart) loses to the fresh one even where prefer()
    would keep it (the lower peer address)."""
    rib = Rib()
    stale = t2("192.0.2.2", MAC, peer="10.0.0.101")
    fresh = t2("192.0.2.2", MAC, peer="10.0.0.102")
    rib.put(stale)
    assert rib.mark_stale(stale.peer, 120.0) == [stale.key]
    assert rib.put(fresh) == (stale, fresh)
    rib2 = Rib()
    rib2.put(stale)
    assert rib2.put(fresh) == (stale, stale)  # both fresh: the lower peer address
