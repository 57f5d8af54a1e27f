"""The desired kernel state: what the kernel should hold, computed from the RIB and the config.

Pure. The core keeps one DesiredState current as best paths change and records which objects
changed in `dirty`; the dataplane's reconciler diffs those against the kernel (and everything,
periodically), so no hot path scans all routes. `compute_desired()` builds the same state from
scratch; tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from evpnd.core.mobility import order, rank
from evpnd.routes.evpn import LOCAL_PEER, ImetKey, MacIpKey, Path

if TYPE_CHECKING:
    from evpnd.config import Config

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
        if kind == FDB:
            table = self.fdb.get(vni)
        elif kind == NEIGH:
            table = self.neigh.get(vni)
        elif kind == FLOOD:
            return True if key in self.flood.get(vni, ()) else None
        elif kind == ROUTE:
            table = self.routes.get(vni)  # type: ignore[assignment]
        elif kind == RMAC:
            table = self.rmacs.get(vni)
        else:
            raise KeyError(kind)
        return None if table is None else table.get(key)

    def snapshot(self) -> dict[str, dict]:
        """Every wanted object as plain, comparable data (empty per-VNI tables left out)."""
        out: dict[str, dict] = {}
        for kind, table in (
            (FDB, self.fdb),
            (FLOOD, self.flood),
            (NEIGH, self.neigh),
            (ROUTE, self.routes),
            (RMAC, self.rmacs),
        ):
            out[kind] = {
                vni: dict.fromkeys(v, True) if kind == FLOOD else dict(v)
                for vni, v in table.items()
                if v
            }
        return out

    def counts(self) -> dict[str, int]:
        return {
            FDB: sum(map(len, self.fdb.values())),
            FLOOD: sum(map(len, self.flood.values())),
            NEIGH: sum(map(len, self.neigh.values())),
            ROUTE: sum(map(len, self.routes.values())),
            RMAC: sum(map(len, self.rmacs.values())),
        }


# The decisions, shared by the incremental updates in evpnd.core and by compute_desired().


def host_prefix(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def flood_vtep(path: Path) -> str:
    """Where BUM traffic goes for a type-3 route: the PMSI tunnel endpoint, else the next hop."""
    pmsi = path.attrs.pmsi
    return pmsi.endpoint if pmsi is not None and pmsi.endpoint else path.next_hop


def fdb_value(group: Iterable[Path] | None) -> str | None:
    """The VTEP for a MAC, from the best paths of all type-2 keys carrying it in one L2VNI.

    The MAC mobility winner decides (RFC 7432 section 15); a local winner needs no FDB entry.
    """
    if not group:
        return None
    winner = max(group, key=rank)
    return None if winner.peer == LOCAL_PEER else winner.next_hop


def neigh_value(group: Iterable[Path] | None) -> str | None:
    """The MAC for an IP (ARP/ND suppression), from the MAC+IP paths carrying that IP.

    Same order as for MACs; equal paths from one VTEP with different MACs: the lowest MAC.
    """
    if not group:
        return None
    winner = min(group, key=lambda p: (order(p), p.key.mac))  # type: ignore[union-attr]
    return None if winner.peer == LOCAL_PEER else winner.key.mac  # type: ignore[union-attr]


def route_value(group: Iterable[Path] | None) -> RouteNextHop | None:
    """The next hop for a prefix in an L3VNI: type-5 routes and symmetric-IRB host routes.

    Anything local wins (the prefix is ours); among remote ones the same order as MACs, then
    the lowest router MAC, so that the result never depends on arrival order.
    """
    if not group:
        return None
    winner = None
    best = None
    for path in group:
        if path.peer == LOCAL_PEER:
            return None
        here = (order(path), path.attrs.router_mac or "")
        if best is None or here < best:
            winner, best = path, here
    assert winner is not None
    return RouteNextHop(winner.next_hop, winner.attrs.router_mac)


def rmac_value(counts: dict[str, int] | None) -> str | None:
    """Several routes via one VTEP should agree on its router MAC; if not, the lowest wins."""
    if not counts:
        return None
    return min(counts)


def compute_desired(source: object, cfg: Config) -> DesiredState:
    """The desired kernel state computed from scratch: from every path in the Adj-RIBs-In.

    `source` is a Core (its RIB and the frozen duplicate MACs are used) or a bare Rib. Best
    paths are selected again and imported again, so this checks the incremental bookkeeping.
    """
    from evpnd.core.rib import ImportMap, path_targets, select_best

    rib = getattr(source, "rib", source)
    mobility = getattr(source, "mobility", None)
    frozen_fdb = mobility.frozen_fdb if mobility is not None else {}
    frozen_neigh = mobility.frozen_neigh if mobility is not None else {}
    imports = ImportMap(cfg)
    candidates: dict = {}
    for peer, table in rib.adj_in.items():
        for key, path in table.items():
            candidates.setdefault(key, {})[peer] = path
    macs: dict[tuple[int, str], list[Path]] = {}
    ips: dict[tuple[int, str], list[Path]] = {}
    prefixes: dict[tuple[int, str], list[Path]] = {}
    state = DesiredState()
    for item in cfg.l2vnis:
        state.fdb[item.vni], state.flood[item.vni], state.neigh[item.vni] = {}, set(), {}
    for item in cfg.l3vnis:
        state.routes[item.vni], state.rmacs[item.vni] = {}, {}
    for key, cands in candidates.items():
        best = select_best(cands, rib.stale)
        l2, l3 = path_targets(best, imports)
        if type(key) is MacIpKey:
            for vni in l2:
                macs.setdefault((vni, key.mac), []).append(best)
                if key.ip is not None:
                    ips.setdefault((vni, key.ip), []).append(best)
            if key.ip is not None:
                for vni in l3:
                    prefixes.setdefault((vni, host_prefix(key.ip)), []).append(best)
        elif type(key) is ImetKey:
            if best.peer != LOCAL_PEER:
                for vni in l2:
                    state.flood.setdefault(vni, set()).add(flood_vtep(best))
        else:
            for vni in l3:
                prefixes.setdefault((vni, key.prefix), []).append(best)
    for (vni, mac), group in macs.items():
        if (vni, mac) not in frozen_fdb:
            value = fdb_value(group)
            if value is not None:
                state.fdb.setdefault(vni, {})[mac] = value
    for (vni, mac), value in frozen_fdb.items():
        if value is not None:
            state.fdb.setdefault(vni, {})[mac] = value
    for (vni, ip), group in ips.items():
        if (vni, ip) not in frozen_neigh:
            mac_value = neigh_value(group)
            if mac_value is not None:
                state.neigh.setdefault(vni, {})[ip] = mac_value
    for (vni, ip), mac_value in frozen_neigh.items():
        if mac_value is not None:
            state.neigh.setdefault(vni, {})[ip] = mac_value
    rmac_counts: dict[tuple[int, str], dict[str, int]] = {}
    for (vni, prefix), group in prefixes.items():
        nh = route_value(group)
        if nh is not None:
            state.routes.setdefault(vni, {})[prefix] = nh
            if nh.router_mac is not None:
                counts = rmac_counts.setdefault((vni, nh.vtep), {})
                counts[nh.router_mac] = counts.get(nh.router_mac, 0) + 1
    for (vni, vtep), counts in rmac_counts.items():
        value = rmac_value(counts)
        if value is not None:
            state.rmacs.setdefault(vni, {})[vtep] = value
    return state
