"""The desired kernel state: what the kernel should hold, computed from the RIB and the config.

Pure. The core keeps one DesiredState current as best paths change and records which objects
changed in `dirty`; the dataplane's reconciler diffs those against the kernel (and everything,
periodically), so no hot path scans all routes. `compute_desired()` builds the same state from
scratch; tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from evpnd.core.mobility import order, rank
from evpnd.core.path_groups import Group, group_put
from evpnd.core.rib import ImportMap, Rib, path_targets, select_best
from evpnd.core.settings import CoreSettings
from evpnd.routes.evpn import LOCAL_PEER, ImetKey, MacIpKey, Path, PrefixKey, RouteKey

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
        table: Mapping[str, object] | None
        if kind == FDB:
            table = self.fdb.get(vni)
        elif kind == NEIGH:
            table = self.neigh.get(vni)
        elif kind == FLOOD:
            return True if key in self.flood.get(vni, ()) else None
        elif kind == ROUTE:
            table = self.routes.get(vni)
        elif kind == RMAC:
            table = self.rmacs.get(vni)
        else:
            raise KeyError(kind)
        return None if table is None else table.get(key)

    def snapshot(self) -> dict[str, dict[int, dict[str, object]]]:
        """Every wanted object as plain, comparable data (empty per-VNI tables left out)."""
        return {
            FDB: _plain(self.fdb),
            FLOOD: {vni: dict.fromkeys(v, True) for vni, v in self.flood.items() if v},
            NEIGH: _plain(self.neigh),
            ROUTE: _plain(self.routes),
            RMAC: _plain(self.rmacs),
        }

    def counts(self) -> dict[str, int]:
        return {
            FDB: sum(map(len, self.fdb.values())),
            FLOOD: sum(map(len, self.flood.values())),
            NEIGH: sum(map(len, self.neigh.values())),
            ROUTE: sum(map(len, self.routes.values())),
            RMAC: sum(map(len, self.rmacs.values())),
        }


def _plain(tables: Mapping[int, Mapping[str, object]]) -> dict[int, dict[str, object]]:
    return {vni: dict(table) for vni, table in tables.items() if table}


# The decisions, shared by the incremental upkeep (evpnd.core.indexes) and compute_desired().

MacId = tuple[int, str]  # (L2VNI, MAC) or (L2VNI, IP)


def host_prefix(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def flood_vtep(path: Path) -> str:
    """Where BUM traffic goes for a type-3 route: the PMSI tunnel endpoint, else the next hop."""
    pmsi = path.attrs.pmsi
    return pmsi.endpoint if pmsi is not None and pmsi.endpoint else path.next_hop


def fdb_value(group: Group | None) -> str | None:
    """The VTEP for a MAC, from the best paths of all type-2 keys carrying it in one L2VNI.

    The MAC mobility winner decides (RFC 7432 section 15); a local winner needs no FDB entry.
    """
    if group is None:
        return None
    winner = max(group.values(), key=rank) if isinstance(group, dict) else group
    return None if winner.peer == LOCAL_PEER else winner.next_hop


def neigh_value(group: Group | None) -> str | None:
    """The MAC for an IP (ARP/ND suppression), from the MAC+IP paths carrying that IP.

    Same order as for MACs; equal paths from one VTEP with different MACs: the lowest MAC.
    """
    if group is None:
        return None
    winner = min(group.values(), key=_neigh_order) if isinstance(group, dict) else group
    if winner.peer == LOCAL_PEER:
        return None
    return cast(MacIpKey, winner.key).mac  # only type-2 MAC+IP paths carry an IP


def _neigh_order(path: Path) -> tuple[tuple[bool, bool, int, int], str]:
    return order(path), cast(MacIpKey, path.key).mac


def fdb_entry(
    macs: Mapping[MacId, Group], frozen: Mapping[MacId, str | None], vni: int, mac: str
) -> str | None:
    """THE rule for the FDB entry of (L2VNI, MAC): the value a duplicate MAC was frozen at,
    else the VTEP of the MAC mobility winner among its best paths (none if local wins).

    Every path that sets an FDB entry calls this (the batch loops in evpnd.core.bgp_input set
    the value directly only where it is provably what this returns; see their comments)."""
    if frozen and (vni, mac) in frozen:
        return frozen[(vni, mac)]
    return fdb_value(macs.get((vni, mac)))


def neigh_entry(
    ips: Mapping[MacId, Group], frozen: Mapping[MacId, str | None], vni: int, ip: str
) -> str | None:
    """THE rule for the neighbour entry of (L2VNI, IP): frozen value, else neigh_value."""
    if frozen and (vni, ip) in frozen:
        return frozen[(vni, ip)]
    return neigh_value(ips.get((vni, ip)))


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


@dataclass(frozen=True, slots=True)
class Frozen:
    """The kernel values duplicate (frozen) MACs keep: Mobility.frozen()."""

    fdb: Mapping[MacId, str | None] = field(default_factory=dict)
    neigh: Mapping[MacId, str | None] = field(default_factory=dict)


def compute_desired(rib: Rib, settings: CoreSettings, frozen: Frozen | None = None) -> DesiredState:
    """The desired kernel state computed from scratch: from every path in the Adj-RIBs-In.

    Best paths are selected again and imported again, and every value is decided by the same
    rules as the incremental upkeep (fdb_entry, neigh_entry, route_value, rmac_value), so
    comparing both checks the incremental bookkeeping.
    """
    frozen = frozen or Frozen()
    imports = ImportMap(settings.l2vnis, settings.l3vnis)
    candidates: dict[RouteKey, dict[str, Path]] = {}
    for peer, table in rib.adj_in.items():
        for key, path in table.items():
            candidates.setdefault(key, {})[peer] = path
    macs: dict[MacId, Group] = {}
    ips: dict[MacId, Group] = {}
    prefixes: dict[tuple[int, str], list[Path]] = {}
    state = DesiredState()
    for l2 in settings.l2vnis:
        state.fdb[l2.vni], state.flood[l2.vni], state.neigh[l2.vni] = {}, set(), {}
    for l3 in settings.l3vnis:
        state.routes[l3.vni], state.rmacs[l3.vni] = {}, {}
    for key, cands in candidates.items():
        best = select_best(cands, rib.stale)
        l2s, l3s = path_targets(best, imports)
        if type(key) is MacIpKey:
            for vni in l2s:
                group_put(macs, (vni, key.mac), key, best)
                if key.ip is not None:
                    group_put(ips, (vni, key.ip), key, best)
            if key.ip is not None:
                for vni in l3s:
                    prefixes.setdefault((vni, host_prefix(key.ip)), []).append(best)
        elif type(key) is ImetKey:
            if best.peer != LOCAL_PEER:
                for vni in l2s:
                    state.flood.setdefault(vni, set()).add(flood_vtep(best))
        else:
            for vni in l3s:
                prefixes.setdefault((vni, cast(PrefixKey, key).prefix), []).append(best)
    for vni, mac in {*macs, *frozen.fdb}:
        value = fdb_entry(macs, frozen.fdb, vni, mac)
        if value is not None:
            state.fdb.setdefault(vni, {})[mac] = value
    for vni, ip in {*ips, *frozen.neigh}:
        mac_value = neigh_entry(ips, frozen.neigh, vni, ip)
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
        rmac = rmac_value(counts)
        if rmac is not None:
            state.rmacs.setdefault(vni, {})[vtep] = rmac
    return state
