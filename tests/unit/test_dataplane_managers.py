"""The kind managers: `plan` (what is written) and `diff` (what `show kernel --diff` shows) come
from one comparison, so they cannot disagree. Checked on random desired/mirror pairs, including
hand-made entries that block keys, half-installed remote MACs and L3VNI router MACs."""

from __future__ import annotations

import errno

from hypothesis import given, settings
from hypothesis import strategies as st

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers import default_managers
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DesiredState, DeviceMap, RouteNextHop, VniDevices
from evpnd.dataplane.plan import Planner

BR, VX, BR3, VX3 = 10, 11, 20, 21
MACS = [f"02:00:00:00:00:0{i}" for i in range(6)]
RMACS = [f"02:ee:00:00:00:0{i}" for i in range(4)]
VTEPS = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
IPS = ["10.1.0.1", "10.1.0.2", "fd00::1", "fd00::2"]
PREFIXES = ["192.168.1.0/24", "192.168.2.0/24", "2001:db8::/64", "0.0.0.0/0"]


def device_map() -> DeviceMap:
    dm = DeviceMap()
    dm.add(VniDevices(100, False, BR, VX, "br100", "vx100"))
    dm.add(VniDevices(200, True, BR3, VX3, "br200", "vx200", table=200))
    return dm


def subset(pool):
    return st.sets(st.sampled_from(pool))


def mapping(keys, values):
    return st.dictionaries(st.sampled_from(keys), st.sampled_from(values))


@st.composite
def states(draw, unique_rmacs: bool = False):
    rmacs = draw(mapping(VTEPS, RMACS))
    if unique_rmacs:  # one router MAC per VTEP (two VTEPs sharing one cannot both be had)
        rmacs = {v: m for v, m in rmacs.items() if list(rmacs.values()).count(m) == 1}
    desired = DesiredState(
        fdb={100: draw(mapping(MACS, VTEPS))},
        flood={100: draw(subset(VTEPS))},
        neigh={100: draw(mapping(IPS, MACS))},
        routes={200: {p: RouteNextHop(v, None) for p, v in draw(mapping(PREFIXES, VTEPS)).items()}},
        rmacs={200: rmacs},
    )
    l3_neigh_keys = VTEPS + [f"::ffff:{v}" for v in VTEPS]
    mirror = Mirror(
        fdb={100: draw(mapping(MACS, VTEPS)), 200: draw(mapping(RMACS, VTEPS))},
        brfdb={100: draw(subset(MACS)), 200: draw(subset(RMACS))},
        flood={100: draw(subset(VTEPS))},
        neigh={100: draw(mapping(IPS, MACS)), 200: draw(mapping(l3_neigh_keys, RMACS))},
        routes={
            200: {
                p: (v, draw(st.sampled_from([BR3, 99])))
                for p, v in draw(mapping(PREFIXES, VTEPS)).items()
            }
        },  # fmt: skip
        foreign_macs={100: draw(subset(MACS))},
        foreign_ips={100: draw(subset(IPS)), 200: draw(subset(VTEPS))},
        foreign_routes={200: draw(subset(PREFIXES))},
    )
    return desired, mirror


def obj(kind: str, vni: int, key: str) -> tuple[str, int, str]:
    """The kernel object a diff entry or an op is about (an FDB op covers both halves)."""
    family = {"bridge_fdb": "fdb", "rmac_fdb": "fdb", "rmac": "neigh"}.get(kind, kind)
    return family, vni, key


def planned_and_reported(desired, mirror, dm):
    planner = Planner()
    keys = planner.all_keys(desired, mirror, dm)
    ops, stats = planner.plan(keys, desired, mirror, dm, allow_delete=True)
    written = {obj(op.tag[0][:-1], op.tag[1], op.tag[2]) for op in ops}
    blocked = {obj(*c) for c in stats.conflicts}
    out = planner.diff(desired, mirror, dm)
    shown = {obj(e["kind"], e["vni"], e["key"]) for b in ("missing", "extra", "different")
             for e in out[b]}  # fmt: skip
    conflicts = {obj(e["kind"], e["vni"], e["key"]) for e in out["conflicts"]}
    return planner, ops, (written, blocked), (shown, conflicts)


@settings(max_examples=400, deadline=None)
@given(states())
def test_plan_writes_exactly_what_diff_reports(state):
    desired, mirror = state
    _, _, (written, blocked), (shown, conflicts) = planned_and_reported(
        desired, mirror, device_map()
    )
    assert written == shown
    assert blocked == conflicts


@settings(max_examples=200, deadline=None)
@given(states(unique_rmacs=True))
def test_after_the_plan_is_applied_diff_shows_only_conflicts(state):
    desired, mirror = state
    dm = device_map()
    planner, ops, _, (_, conflicts) = planned_and_reported(desired, mirror, dm)
    for op in ops:
        op.error = 0
    assert planner.apply_results(mirror, ops) == []
    out = planner.diff(desired, mirror, dm)
    assert (out["missing"], out["extra"], out["different"]) == ([], [], [])
    assert {obj(e["kind"], e["vni"], e["key"]) for e in out["conflicts"]} == conflicts
    ops, _ = planner.plan(planner.all_keys(desired, mirror, dm), desired, mirror, dm)
    assert ops == []


def test_a_dirty_key_is_planned_like_the_same_key_in_a_full_pass():
    d = DesiredState(fdb={100: {MACS[0]: VTEPS[0]}}, neigh={100: {IPS[0]: MACS[0]}})
    m = Mirror(fdb={100: {MACS[1]: VTEPS[1]}}, brfdb={100: {MACS[1]}})
    planner = Planner()
    dirty = [("fdb", 100, MACS[0]), ("fdb", 100, MACS[1]), ("neigh", 100, IPS[0])]
    ops, _ = planner.plan(dirty, d, m, device_map())
    full, _ = planner.plan(planner.all_keys(d, m, device_map()), d, m, device_map())
    assert sorted(op.tag for op in ops) == sorted(op.tag for op in full)


def test_every_op_tag_has_one_manager_and_a_phase():
    managers = default_managers()
    actions = [a for m in managers for a in m.actions]
    assert len(actions) == len(set(actions))
    assert {"fdb+", "fdb-", "flood+", "flood-", "neigh+", "neigh-", "route+", "route-"} == set(
        actions
    )
    assert len({m.kind for m in managers}) == len(managers)


def test_unknown_kind_and_unknown_vni_are_counted():
    ops, stats = Planner().plan(
        [("tunnel", 100, "x"), ("fdb", 999, MACS[0]), ("route", 100, PREFIXES[0])],
        DesiredState(),
        Mirror(),
        device_map(),
    )
    assert ops == [] and len(stats.invalid) == 1 and stats.unknown_vni == 2


def test_rmac_fdb_entry_found_from_two_keys_is_reported_once():
    m = Mirror()
    m.set_fdb(200, RMACS[0], VTEPS[0])
    out = Planner().diff(DesiredState(), m, device_map())
    assert [(e["kind"], e["key"]) for e in out["extra"]] == [("rmac_fdb", RMACS[0])]
    assert nl.ZERO_MAC not in str(out)


def test_a_neighbour_key_believed_free_is_written_exclusively():
    """A person's neighbour made after the plan was drawn must make evpnd's write fail (EEXIST),
    not be overwritten: only evpnd's own entry or the kernel's dynamic one is replaced."""
    from evpnd.dataplane.managers.base import MISSING, Finding
    from evpnd.dataplane.managers.neigh import NeighManager
    from evpnd.dataplane.model import NEIGH

    dev = VniDevices(
        vni=100, l3=False, bridge=10, vxlan=11, bridge_name="br100", vxlan_name="vx100"
    )
    mgr, m = NeighManager(), Mirror()
    free = Finding(MISSING, NEIGH, 100, "10.1.0.9", "02:00:00:00:00:09", None)
    op = mgr.op(free, dev, m)
    assert op.flags & nl.NLM_F_EXCL and not op.flags & nl.NLM_F_REPLACE
    m.dynamic_ips[100] = {"10.1.0.9"}  # an ARP entry the kernel made through an SVI
    assert mgr.op(free, dev, m).flags & nl.NLM_F_REPLACE
    op.error = -errno.EEXIST  # the person's entry won: nothing recorded as evpnd's, no error
    assert mgr.apply_result(m, op) and "10.1.0.9" not in m.neigh.get(100, {})
