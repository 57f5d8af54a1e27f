"""One manager per kind of kernel object evpnd owns. Pure: no I/O, no pyroute2, no asyncio.

    fdb.py    (vni, MAC)   remote MAC: vxlan + bridge entry, extern_learn
    flood.py  (vni, VTEP)  all-zero head-end replication entry
    neigh.py  (vni, IP)    ARP/ND suppression neighbour on the L2VNI's bridge
    route.py  (l3vni, pfx) type-5 route in the L3VNI's table
    rmac.py   (l3vni, VTEP) router MAC: FDB entry + VTEP neighbour on the L3VNI's devices
    (devices: evpnd/dataplane/devices.py, behind the backend; their map is model.DeviceMap)

Each manager owns, for its kind: the lookup (`keys`: every item desired state or mirror knows,
for a full pass), the comparison (`findings`: desired vs mirror for one key, as verdicts), the
plan (`plan`: findings -> netlink ops; the generic loop in base.py, or a tight loop around the
same comparison for bulk kinds), the outcome (`apply_result(s)`: a finished op into the mirror)
and the diff (`diff`: the same findings as `show kernel --diff` entries). `plan` and `diff`
share the comparison, so what is written and what the diff shows cannot disagree (the unit test
test_dataplane_managers.py checks it on random states).

A new kind (say static tunnels' FDB entries, issue 9) plugs in like this, without touching
the scheduler or the planner's dispatch:

    class TunnelFdbManager(KindManager):
        kind = "tunnel_fdb"                       # the kind in the core's dirty keys
        actions = {"tfdb-": 1, "tfdb+": 2}        # op tags it produces, with their phase
        def applies(self, dev): ...               # which VNIs' devices hold it
        def keys(self, vni, dev, desired, mirror): ...
        def findings(self, vni, item, dev, desired, mirror): ...   # judge(want, have, foreign)
        def op(self, finding, dev, mirror): ...   # -> netlink.Op tagged (action, vni, key, value)
        def apply_result(self, mirror, op): ...

and is added to `default_managers()`; the mirror gets a table for it and the backend's dump and
event parsing fill that table (Mirror.on_* methods).
"""

from __future__ import annotations

from evpnd.dataplane.managers.base import (
    BUCKET,
    CONFLICT,
    DIFFERENT,
    EXTRA,
    MISSING,
    OK,
    Finding,
    KindManager,
    PlanStats,
    judge,
)
from evpnd.dataplane.managers.fdb import FdbManager
from evpnd.dataplane.managers.flood import FloodManager
from evpnd.dataplane.managers.neigh import NeighManager
from evpnd.dataplane.managers.rmac import RmacManager
from evpnd.dataplane.managers.route import RouteManager


def default_managers() -> list[KindManager]:
    """The kinds evpnd manages, in diff order."""
    fdb = FdbManager()
    return [fdb, FloodManager(), NeighManager(), RouteManager(), RmacManager(fdb)]


__all__ = [
    "BUCKET",
    "CONFLICT",
    "DIFFERENT",
    "EXTRA",
    "MISSING",
    "OK",
    "FdbManager",
    "Finding",
    "FloodManager",
    "KindManager",
    "NeighManager",
    "PlanStats",
    "RmacManager",
    "RouteManager",
    "default_managers",
    "judge",
]
