"""The dataplane's pure parts: planning (diff -> netlink ops), ownership, mirror updates."""

from __future__ import annotations

import pytest

from evpnd.core.desired import FDB, FLOOD, NEIGH, RMAC, ROUTE, DesiredState, RouteNextHop
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.devices import DeviceMap, VniDevices
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.plan import Planner, all_keys, apply_result, diff

BR, VX, BR3, VX3 = 10, 11, 20, 21
M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
RM1, RM2 = "02:ee:00:00:00:01", "02:ee:00:00:00:02"


@pytest.fixture
def dm() -> DeviceMap:
    dm = DeviceMap()
    dm.add(VniDevices(100, False, BR, VX, "br100", "vx100"))
    dm.add(VniDevices(200, True, BR3, VX3, "br200", "vx200", table=200))
    return dm


def decode(op: nl.Op) -> nl.Neigh:
    return nl.parse_neigh(op.mtype, op.body, 0, len(op.body))


def plan(desired, mirror, dm, keys, allow_delete=True):
    return Planner().plan(keys, desired, mirror, dm, allow_delete)


def test_missing_fdb_entry_is_one_message_for_vxlan_and_bridge(dm):
    d = DesiredState(fdb={100: {M1: "10.0.0.2"}})
    ops, stats = plan(d, Mirror(), dm, [(FDB, 100, M1)])
    assert len(ops) == 1 and not stats.conflicts
    n = decode(ops[0])
    assert ops[0].mtype == nl.RTM_NEWNEIGH
    assert ops[0].flags & nl.NLM_F_REPLACE and ops[0].flags & nl.NLM_F_CREATE
    assert (n.family, n.ifindex, n.mac, n.dst) == (nl.AF_BRIDGE, VX, M1, "10.0.0.2")
    assert n.flags == nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED
    assert n.state == nl.NUD_REACHABLE  # vxlan rejects NOARP; extern_learn never ages


def test_entry_already_right_causes_no_operation(dm):
    d = DesiredState(fdb={100: {M1: "10.0.0.2"}})
    m = Mirror()
    m.set_fdb(100, M1, "10.0.0.2")
    assert plan(d, m, dm, [(FDB, 100, M1)])[0] == []


def test_moved_mac_is_replaced_and_missing_bridge_half_is_readded(dm):
    d = DesiredState(fdb={100: {M1: "10.0.0.3", M2: "10.0.0.2"}})
    m = Mirror()
    m.set_fdb(100, M1, "10.0.0.2")
    m.fdb[100][M2] = "10.0.0.2"  # bridge entry deleted by hand
    ops, _ = plan(d, m, dm, [(FDB, 100, M1), (FDB, 100, M2)])
    assert sorted(decode(o).dst for o in ops) == ["10.0.0.2", "10.0.0.3"]


def test_unwanted_owned_entry_is_deleted_only_when_allowed(dm):
    m = Mirror()
    m.set_fdb(100, M1, "10.0.0.2")
    ops, stats = plan(DesiredState(), m, dm, [(FDB, 100, M1)], allow_delete=False)
    assert ops == [] and stats.held == 1
    ops, _ = plan(DesiredState(), m, dm, [(FDB, 100, M1)])
    assert len(ops) == 1 and ops[0].mtype == nl.RTM_DELNEIGH
    assert decode(ops[0]).flags == nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED


def test_delete_names_only_the_parts_that_exist(dm):
    m = Mirror()
    m.brfdb[100] = {M1}  # only the bridge half is left
    ops, _ = plan(DesiredState(), m, dm, [(FDB, 100, M1)])
    assert decode(ops[0]).flags == nl.NTF_MASTER | nl.NTF_EXT_LEARNED


def test_hand_made_entry_is_never_touched(dm):
    d = DesiredState(fdb={100: {M1: "10.0.0.2"}}, neigh={100: {"10.1.0.5": M1}})
    m = Mirror(foreign_macs={100: {M1}}, foreign_ips={100: {"10.1.0.5"}})
    ops, stats = plan(d, m, dm, [(FDB, 100, M1), (NEIGH, 100, "10.1.0.5")])
    assert ops == [] and len(stats.conflicts) == 2
    # ...and not deleted either: the mirror does not own it
    ops, _ = plan(DesiredState(), m, dm, [(FDB, 100, M1), (NEIGH, 100, "10.1.0.5")])
    assert ops == []


def test_flood_entries_append_and_delete(dm):
    d = DesiredState(flood={100: {"10.0.0.2"}})
    m = Mirror(flood={100: {"10.0.0.9"}})
    ops, _ = plan(d, m, dm, [(FLOOD, 100, "10.0.0.2"), (FLOOD, 100, "10.0.0.9")])
    by_type = {o.mtype: (o, decode(o)) for o in ops}
    add, n = by_type[nl.RTM_NEWNEIGH]
    assert add.flags & nl.NLM_F_APPEND and not add.flags & nl.NLM_F_REPLACE
    assert (n.mac, n.dst, n.state, n.flags) == (nl.ZERO_MAC, "10.0.0.2", nl.NUD_PERMANENT, 2)
    assert by_type[nl.RTM_DELNEIGH][1].dst == "10.0.0.9"
    assert ops[0].mtype == nl.RTM_DELNEIGH  # deletions go first


def test_suppression_neighbour_is_noarp_extern_learn_with_protocol(dm):
    d = DesiredState(neigh={100: {"10.1.0.5": M1, "fd00::5": M2}})
    ops, _ = plan(d, Mirror(), dm, [(NEIGH, 100, "10.1.0.5"), (NEIGH, 100, "fd00::5")])
    for op in ops:
        n = decode(op)
        assert n.ifindex == BR and n.state == nl.NUD_NOARP
        assert n.flags == nl.NTF_EXT_LEARNED and n.protocol == nl.RTPROT_EVPND
    assert {decode(o).dst: decode(o).mac for o in ops} == {"10.1.0.5": M1, "fd00::5": M2}


def test_type5_route_and_router_mac_objects(dm):
    d = DesiredState(
        routes={200: {"192.168.5.0/24": RouteNextHop("10.0.0.2", RM2)}},
        rmacs={200: {"10.0.0.2": RM2}},
    )
    ops, _ = plan(d, Mirror(), dm, [(ROUTE, 200, "192.168.5.0/24"), (RMAC, 200, "10.0.0.2")])
    kinds = [o.tag[0] for o in ops]
    assert kinds[-1] == "route+"  # the route after its neighbour and FDB entry
    route = nl.parse_route(ops[-1].mtype, ops[-1].body, 0, len(ops[-1].body))
    assert (route.table, route.prefix, route.gateway, route.oif) == (
        200, "192.168.5.0/24", "10.0.0.2", BR3,
    )  # fmt: skip
    assert route.protocol == nl.RTPROT_EVPND
    neigh = decode(next(o for o in ops if o.tag[0] == "neigh+"))
    assert (neigh.ifindex, neigh.dst, neigh.mac) == (BR3, "10.0.0.2", RM2)
    fdb = decode(next(o for o in ops if o.tag[0] == "fdb+"))
    assert (fdb.ifindex, fdb.mac, fdb.dst) == (VX3, RM2, "10.0.0.2")


def test_router_mac_change_removes_the_old_mac(dm):
    d = DesiredState(rmacs={200: {"10.0.0.2": RM2}})
    m = Mirror(neigh={200: {"10.0.0.2": RM1}})
    m.set_fdb(200, RM1, "10.0.0.2")
    ops, _ = plan(d, m, dm, [(RMAC, 200, "10.0.0.2")])
    assert {(o.tag[0], o.tag[2]) for o in ops} == {
        ("fdb-", RM1), ("fdb+", RM2), ("neigh+", "10.0.0.2"), ("neigh+", "::ffff:10.0.0.2"),
    }  # fmt: skip


def test_ipv6_prefix_via_ipv4_vtep_uses_the_mapped_address(dm):
    d = DesiredState(routes={200: {"2001:db8::/64": RouteNextHop("10.0.0.2", None)}})
    ops, _ = plan(d, Mirror(), dm, [(ROUTE, 200, "2001:db8::/64")])
    r = nl.parse_route(ops[0].mtype, ops[0].body, 0, len(ops[0].body))
    assert (r.prefix, r.gateway) == ("2001:db8::/64", "10.0.0.2")  # mirror compares as IPv4
    assert b"\xff\xff\x0a\x00\x00\x02" in ops[0].body  # ::ffff:10.0.0.2 on the wire
    d.rmacs[200] = {"10.0.0.2": RM2}
    ops, _ = plan(d, Mirror(), dm, [(RMAC, 200, "10.0.0.2")])
    assert {o.tag[2] for o in ops if o.tag[0] == "neigh+"} == {"10.0.0.2", "::ffff:10.0.0.2"}


def test_bad_values_are_counted_not_raised(dm):
    d = DesiredState(fdb={100: {"zz:00:00:00:00:01": "10.0.0.2", M1: "not-an-ip"}})
    ops, stats = plan(d, Mirror(), dm, [(FDB, 100, "zz:00:00:00:00:01"), (FDB, 100, M1)])
    assert ops == [] and len(stats.invalid) == 2
    ops, stats = plan(d, Mirror(), dm, [(FDB, 999, M1)])
    assert ops == [] and stats.unknown_vni == 1


def test_apply_result_updates_the_mirror_only_on_success(dm):
    d = DesiredState(fdb={100: {M1: "10.0.0.2", M2: "10.0.0.3"}})
    m = Mirror()
    ops, _ = plan(d, m, dm, [(FDB, 100, M1), (FDB, 100, M2)])
    ops[0].error, ops[1].error = 0, -22
    assert apply_result(m, ops[0]) and not apply_result(m, ops[1])
    assert m.fdb[100] == {ops[0].tag[2]: ops[0].tag[3]}
    delete, _ = plan(DesiredState(), m, dm, [(FDB, 100, ops[0].tag[2])])
    delete[0].error = -2  # ENOENT: gone already, which is what was wanted
    assert apply_result(m, delete[0]) and m.fdb[100] == {}


def test_all_keys_and_diff_report_missing_extra_different(dm):
    d = DesiredState(fdb={100: {M1: "10.0.0.2", M2: "10.0.0.3"}}, flood={100: {"10.0.0.2"}})
    m = Mirror(flood={100: {"10.0.0.7"}})
    m.set_fdb(100, M2, "10.0.0.9")
    m.set_fdb(100, "02:00:00:00:00:99", "10.0.0.2")
    keys = set(all_keys(d, m, dm))
    assert {(FDB, 100, M1), (FDB, 100, M2), (FDB, 100, "02:00:00:00:00:99")} <= keys
    assert {(FLOOD, 100, "10.0.0.2"), (FLOOD, 100, "10.0.0.7")} <= keys
    out = diff(d, m, dm)
    assert [(x["kind"], x["key"]) for x in out["missing"]] == [(FDB, M1), (FLOOD, "10.0.0.2")]
    assert {(x["kind"], x["key"]) for x in out["extra"]} == {
        (FDB, "02:00:00:00:00:99"), ("bridge_fdb", "02:00:00:00:00:99"), (FLOOD, "10.0.0.7"),
    }  # fmt: skip
    assert out["different"] == [
        {"kind": FDB, "vni": 100, "key": M2, "want": "10.0.0.3", "have": "10.0.0.9"}
    ]


def test_partial_dump_replaces_only_its_vnis():
    m = Mirror(flood={100: {"10.0.0.2"}, 300: {"10.0.0.9"}})
    m.set_fdb(100, M1, "10.0.0.2")
    fresh = Mirror(flood={300: {"10.0.0.3"}})
    m.replace_vnis(fresh, [300])
    assert m.flood == {100: {"10.0.0.2"}, 300: {"10.0.0.3"}} and m.fdb == {100: {M1: "10.0.0.2"}}
