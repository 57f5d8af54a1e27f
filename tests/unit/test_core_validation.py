"""Import validation of received routes (issue 10 item 1): one case per reason, through the
core's BGP input (the path production uses after compact.UpdateDecoder), with the per-peer
counters, the one notice per UPDATE, and the rejected paths kept out of the desired state."""

from __future__ import annotations

import pytest

from evpnd.core.desired import FDB
from evpnd.core.validation import AddressCheck, mac_ok
from evpnd.routes.evpn import Pmsi
from tests.unit.core_helpers import assert_consistent, make_core, t2, t3, t5

GOOD = "192.0.2.2"
MAC = "02:00:00:00:00:01"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("192.0.2.2", None),
        ("0.0.0.0", "martian"),
        ("0.1.2.3", "martian"),
        ("127.0.0.1", "martian"),
        ("127.255.0.9", "martian"),
        ("224.0.0.5", "martian"),
        ("239.1.1.1", "martian"),
        ("240.0.0.1", "martian"),
        ("255.255.255.255", "martian"),
        ("192.0.2.1", "own_vtep"),
        ("::ffff:192.0.2.1", "own_vtep"),  # IPv4-mapped spelling of our VTEP
        ("0:0:0:0:0:ffff:c000:201", "own_vtep"),  # the same, non-canonical hex
        ("::ffff:192.0.2.2", "family"),  # IPv4-mapped: not reachable from a VXLAN device
        ("::ffff:127.0.0.1", "martian"),
        ("2001:db8::2", "family"),
        ("::", "martian"),
        ("::1", "martian"),
        ("ff02::1", "martian"),
        ("fe80::1", "martian"),
        ("not-an-ip", "malformed"),
        ("", "malformed"),
    ],
)
def test_address_verdicts_against_an_ipv4_vtep(text, verdict):
    assert AddressCheck("192.0.2.1").reason(text) == verdict


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("2001:db8::2", None),
        ("2001:db8::1", "own_vtep"),
        ("2001:DB8:0:0:0:0:0:1", "own_vtep"),  # non-canonical text of our VTEP
        ("2001:0db8::0001", "own_vtep"),
        ("192.0.2.2", "family"),
        ("::ffff:192.0.2.2", "family"),
        ("fe80::2", "martian"),
        ("ff05::2", "martian"),
        ("::", "martian"),
    ],
)
def test_address_verdicts_against_an_ipv6_vtep(text, verdict):
    assert AddressCheck("2001:db8::1").reason(text) == verdict


def test_mac_ok():
    assert mac_ok("02:00:00:00:00:01") and mac_ok("00:11:22:33:44:55")
    assert not mac_ok("00:00:00:00:00:00")
    assert not mac_ok("01:00:5e:00:00:01")  # IPv4 multicast
    assert not mac_ok("33:33:00:00:00:01")  # IPv6 multicast
    assert not mac_ok("ff:ff:ff:ff:ff:ff")


def _rejected(core, peer: str) -> dict[str, int]:
    return dict(core.views.peers()[peer].rejects)


@pytest.mark.parametrize(
    ("nh", "reason"),
    [
        ("0.0.0.0", "nexthop_martian"),
        ("127.0.0.1", "nexthop_martian"),
        ("224.0.0.5", "nexthop_martian"),
        ("240.0.0.1", "nexthop_martian"),
        ("255.255.255.255", "nexthop_martian"),
        ("192.0.2.1", "own_vtep"),
        ("::ffff:192.0.2.1", "own_vtep"),
        ("::ffff:192.0.2.9", "nexthop_family"),
        ("2001:db8::9", "nexthop_family"),
        ("fe80::9", "nexthop_martian"),
    ],
)
def test_type2_next_hop_reasons(nh, reason):
    core = make_core()
    bad = t2(nh, "02:00:00:00:00:09", peer="10.0.0.2")
    good = t2(GOOD, MAC, peer="10.0.0.2")
    core.apply(_update("10.0.0.2", bad, good), 1.0)
    assert core.desired.fdb[100] == {MAC: GOOD}  # the valid route of the same UPDATE is in
    assert _rejected(core, "10.0.0.2") == {reason: 1}
    assert core.journal.counters["rejected_" + reason] == 1
    assert bad.key not in core.rib.best
    assert_consistent(core)


def _update(peer, *paths):
    from evpnd.core.events import RouteUpdate

    return RouteUpdate(peer, announced=list(paths))


@pytest.mark.parametrize("mac", ["00:00:00:00:00:00", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff"])
def test_type2_mac_must_be_unicast_and_non_zero(mac):
    core = make_core()
    core.apply(_update("10.0.0.2", t2(GOOD, mac, peer="10.0.0.2")), 1.0)
    assert core.desired.fdb.get(100, {}) == {}
    assert _rejected(core, "10.0.0.2") == {"mac": 1}


@pytest.mark.parametrize(
    ("pmsi", "reason"),
    [
        (Pmsi(6, 100, "127.0.0.1"), "pmsi_martian"),
        (Pmsi(6, 100, "0.0.0.0"), "pmsi_martian"),
        (Pmsi(6, 100, "239.0.0.1"), "pmsi_martian"),
        (Pmsi(6, 100, "192.0.2.1"), "own_vtep"),
        (Pmsi(6, 100, "::ffff:192.0.2.1"), "own_vtep"),
        (Pmsi(6, 100, "2001:db8::2"), "pmsi_family"),
        (Pmsi(6, 100, ""), "pmsi_martian"),  # ingress replication without an endpoint
        (Pmsi(3, 100, "192.0.2.2"), "pmsi_type"),  # PIM-SSM tree: no flood entry
        (Pmsi(9, 100, "192.0.2.2"), "pmsi_type"),  # a type RFC 6514 does not name
    ],
)
def test_type3_pmsi_reasons(pmsi, reason):
    core = make_core()
    bad = t3("192.0.2.3", peer="10.0.0.3")
    bad = bad._replace(attrs=bad.attrs._replace(pmsi=pmsi))
    good = t3(GOOD, peer="10.0.0.2")
    core.apply(_update("10.0.0.3", bad), 1.0)
    core.apply(_update("10.0.0.2", good), 1.0)
    assert core.desired.flood[100] == {GOOD}
    assert _rejected(core, "10.0.0.3") == {reason: 1}
    assert_consistent(core)


def test_type3_without_pmsi_floods_to_its_next_hop():
    core = make_core()
    path = t3(GOOD, peer="10.0.0.2")
    core.apply(_update("10.0.0.2", path._replace(attrs=path.attrs._replace(pmsi=None))), 1.0)
    assert core.desired.flood[100] == {GOOD}


@pytest.mark.parametrize("encap", [0, 1, 2, 7, 9, 10, 11, 12, 13])  # l2tp..mpls..geneve, nvgre
def test_encapsulation_other_than_vxlan_is_not_installed(encap):
    core = make_core()
    m = t2(GOOD, MAC, peer="10.0.0.2")
    f = t3(GOOD, peer="10.0.0.2")
    p = t5(GOOD, "10.9.0.0/24", peer="10.0.0.2")
    paths = [x._replace(attrs=x.attrs._replace(encap=encap)) for x in (m, f, p)]
    core.apply(_update("10.0.0.2", *paths), 1.0)
    assert core.desired.fdb.get(100, {}) == {} and core.desired.flood.get(100, set()) == set()
    assert not core.desired.routes.get(5000)
    assert _rejected(core, "10.0.0.2") == {"encap": 3}


def test_no_encapsulation_community_is_taken_as_vxlan():
    core = make_core()
    m = t2(GOOD, MAC, peer="10.0.0.2")
    core.apply(_update("10.0.0.2", m._replace(attrs=m.attrs._replace(encap=None))), 1.0)
    assert core.desired.fdb[100] == {MAC: GOOD}


def test_a_rejected_path_withdraws_the_peers_earlier_path_and_stays_out():
    """Treat-as-withdraw: the peer's earlier valid path for the key goes; the rejected one is
    never in the RIB, so no full pass (compute_desired) brings it back."""
    core = make_core()
    core.apply(_update("10.0.0.2", t2(GOOD, MAC, peer="10.0.0.2")), 1.0)
    assert core.desired.fdb[100] == {MAC: GOOD}
    core.desired.drain()
    hostile = t2("127.0.0.1", MAC, peer="10.0.0.2", rd=f"{GOOD}:100")  # the same key
    core.apply(_update("10.0.0.2", hostile), 2.0)
    assert core.desired.fdb[100] == {}
    assert (FDB, 100, MAC) in core.desired.dirty
    full = core.compute_desired()
    assert full.fdb.get(100, {}) == {}  # the full pass agrees: nothing to retry
    assert_consistent(core)


def test_one_notice_per_update_with_counts_per_reason():
    core = make_core()
    paths = [t2("127.0.0.1", f"02:00:00:00:01:{i:02x}", peer="10.0.0.2") for i in range(50)]
    paths.append(t2("224.0.0.5", "02:00:00:00:02:01", peer="10.0.0.2"))
    paths.append(t2("::ffff:192.0.2.1", "02:00:00:00:02:02", peer="10.0.0.2"))
    core.drain_notices()
    core.apply(_update("10.0.0.2", *paths), 1.0)
    notices = [n for n in core.drain_notices() if n["event"] == "paths_rejected"]
    assert len(notices) == 1
    assert notices[0]["reasons"] == {"nexthop_martian": 51, "own_vtep": 1}
    assert _rejected(core, "10.0.0.2") == {"nexthop_martian": 51, "own_vtep": 1}
    assert core.views.peers()["10.0.0.2"].rejected == 52


def test_reconfigured_vtep_rejects_held_paths_now_own():
    core = make_core()
    core.apply(_update("10.0.0.2", t2(GOOD, MAC, peer="10.0.0.2")), 1.0)
    from evpnd.config import core_settings
    from tests.unit.core_helpers import make_cfg

    core.reconfigure(core_settings(make_cfg(vtep=GOOD)), 2.0)
    assert core.desired.fdb.get(100, {}) == {}
    assert core.journal.counters["rejected_own_vtep"] == 1
