"""The desired kernel state: what the kernel should hold, computed from the RIB and the config.

Pure. The core keeps one DesiredState current as best paths change and records which objects
changed in `dirty`; the dataplane's reconciler diffs those against the kernel (and everything,
periodically), so no hot path scans all routes. `compute_desired()` builds the same state from
scratch; tests check that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# Object kinds, as they appear in dirty keys: (kind, vni, key)
FDB = "fdb"  # key: MAC          -> remote VTEP
FLOOD = "flood"  # key: VTEP     -> present (all-zero MAC head-end replication entry)
NEIGH = "neigh"  # key: IP       -> MAC (ARP/ND suppression, on the L2VNI's bridge)
ROUTE = "route"  # key: prefix   -> RouteTarget(vtep, router MAC) in the L3VNI's table
RMAC = "rmac"  # key: VTEP       -> router MAC (FDB + neighbour on the L3VNI devices)


class RouteNextHop(NamedTuple):
    vtep: str
    router_mac: str | None


DirtyKey = tuple[str, int, str]


@dataclass
class DesiredState:
    fdb: dict[int, dict[str, str]] = field(default_factory=dict)
    flood: dict[int, set[str]] = field(default_factory=dict)
    neigh: dict[int, dict[str, str]] = field(default_factory=dict)
    routes: dict[int, dict[str, RouteNextHop]] = field(default_factory=dict)
    rmacs: dict[int, dict[str, str]] = field(default_factory=dict)
    dirty: set[DirtyKey] = field(default_factory=set)

    def drain(self) -> set[DirtyKey]:
        """The keys changed since the last drain; the reconciler looks only at those."""
        out, self.dirty = self.dirty, set()
        return out

    def lookup(self, kind: str, vni: int, key: str) -> object | None:
        """The wanted value of one object, or None when it should not exist."""
        if kind == FLOOD:
            return True if key in self.flood.get(vni, ()) else None
        table = {FDB: self.fdb, NEIGH: self.neigh, ROUTE: self.routes, RMAC: self.rmacs}[kind]
        return table.get(vni, {}).get(key)

    def counts(self) -> dict[str, int]:
        return {
            FDB: sum(map(len, self.fdb.values())),
            FLOOD: sum(map(len, self.flood.values())),
            NEIGH: sum(map(len, self.neigh.values())),
            ROUTE: sum(map(len, self.routes.values())),
            RMAC: sum(map(len, self.rmacs.values())),
        }
