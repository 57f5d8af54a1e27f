"""Indexes of best paths by kernel object, and the incremental upkeep of the desired state.

Kept from best paths as they change (nothing scans all routes on an update):
  _macs[(l2vni, mac)]      best type-2 paths carrying the MAC (any RD, any IP, local too)
  _ips[(l2vni, ip)]        best type-2 MAC+IP paths carrying the IP
  _prefixes[(l3vni, pfx)]  best type-5 paths and symmetric-IRB host routes
  (each a Group: one Path, or {key: Path} when there are several)
  _flood[(l2vni, vtep)]    keys of imported remote type-3 routes towards that VTEP
  _rmac_refs[(l3vni, vtep)]  {router MAC: routes via that VTEP carrying it}
From them the desired FDB, neighbour, flood, route and router-MAC entries are refreshed one
object at a time, each change recorded in `desired.dirty`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evpnd.core.desired import (
    FDB,
    FLOOD,
    NEIGH,
    RMAC,
    ROUTE,
    DesiredState,
    compute_desired,
    fdb_value,
    flood_vtep,
    host_prefix,
    neigh_value,
    rmac_value,
    route_value,
)
from evpnd.core.path_groups import ABSENT, Group, group_del, group_paths, group_put
from evpnd.core.rib import Rib, path_targets
from evpnd.routes.evpn import LOCAL_PEER, ImetKey, MacIpKey, Path, RouteKey

if TYPE_CHECKING:
    from evpnd.config import Config
    from evpnd.core.config_view import ConfigView
    from evpnd.core.mobility import Mobility

Targets = tuple[tuple[int, ...], tuple[int, ...]]  # (L2VNIs, L3VNIs) a path is imported into


class Indexes:
    """Mixin of Core: the index and desired-state upkeep. A MAC whose paths changed is
    settled by Core._settle_mac (local or remote wins: local_macs.py), which refreshes its FDB
    entry here."""

    # Core's state this part reads and writes (set in Core.__init__).
    cfg: Config
    desired: DesiredState
    rib: Rib
    mobility: Mobility
    _view: ConfigView
    _macs: dict[tuple[int, str], Group]
    _ips: dict[tuple[int, str], Group]
    _prefixes: dict[tuple[int, str], Group]
    _flood: dict[tuple[int, str], set[RouteKey]]
    _rmac_refs: dict[tuple[int, str], dict[str, int]]

    def _best_changed(self, key: RouteKey, old: Path | None, new: Path | None) -> None:
        """A key's best path changed: move it in the indexes, refresh the objects it feeds."""
        imports = self._view.imports
        old_t = None if old is None else path_targets(old, imports)
        new_t = None if new is None else path_targets(new, imports)
        kind = type(key)
        if kind is MacIpKey:
            self._type2_changed(key, old, new, old_t, new_t)  # type: ignore[arg-type]
        elif kind is ImetKey:
            self._type3_changed(key, old, new, old_t, new_t)  # type: ignore[arg-type]
        else:
            prefix = key.prefix  # type: ignore[union-attr]
            vnis = set()
            if old_t:
                for vni in old_t[1]:
                    group_del(self._prefixes, (vni, prefix), key)
                    vnis.add(vni)
            if new_t:
                for vni in new_t[1]:
                    group_put(self._prefixes, (vni, prefix), key, new)  # type: ignore
                    vnis.add(vni)
            for vni in vnis:
                self._refresh_route(vni, prefix)

    def _type2_changed(
        self,
        key: MacIpKey,
        old: Path | None,
        new: Path | None,
        old_t: Targets | None,
        new_t: Targets | None,
    ) -> None:
        mac, ip = key.mac, key.ip
        macs, ips, prefixes = self._macs, self._ips, self._prefixes
        if old_t is not None:
            for vni in old_t[0]:
                group_del(macs, (vni, mac), key)
                if ip is not None:
                    group_del(ips, (vni, ip), key)
            if old_t[1]:
                pfx = host_prefix(ip)  # type: ignore[arg-type]
                for vni in old_t[1]:
                    group_del(prefixes, (vni, pfx), key)
        if new_t is not None:
            for vni in new_t[0]:
                group_put(macs, (vni, mac), key, new)  # type: ignore[arg-type]
                if ip is not None:
                    group_put(ips, (vni, ip), key, new)  # type: ignore[arg-type]
            if new_t[1]:
                pfx = host_prefix(ip)  # type: ignore[arg-type]
                for vni in new_t[1]:
                    group_put(prefixes, (vni, pfx), key, new)  # type: ignore[arg-type]
        l2 = new_t[0] if old_t is None else (old_t[0] if new_t is None else {*old_t[0], *new_t[0]})
        for vni in l2:
            self._settle_mac(vni, mac)
            if ip is not None:
                self._refresh_neigh(vni, ip)
        l3 = () if old_t is None else old_t[1]
        if new_t is not None:
            l3 = new_t[1] if not l3 else {*l3, *new_t[1]}
        if l3:
            pfx = host_prefix(ip)  # type: ignore[arg-type]
            for vni in l3:
                self._refresh_route(vni, pfx)

    def _type3_changed(
        self,
        key: ImetKey,
        old: Path | None,
        new: Path | None,
        old_t: Targets | None,
        new_t: Targets | None,
    ) -> None:
        touched = []
        if old is not None and old_t is not None and old.peer != LOCAL_PEER:
            vtep = flood_vtep(old)
            for vni in old_t[0]:
                refs = self._flood.get((vni, vtep))
                if refs is not None:
                    refs.discard(key)
                    if not refs:
                        del self._flood[(vni, vtep)]
                touched.append((vni, vtep))
        if new is not None and new_t is not None and new.peer != LOCAL_PEER:
            vtep = flood_vtep(new)
            for vni in new_t[0]:
                self._flood.setdefault((vni, vtep), set()).add(key)
                touched.append((vni, vtep))
        desired = self.desired
        for vni, vtep in touched:
            wanted = (vni, vtep) in self._flood
            table = desired.flood.get(vni)
            if table is None:
                table = desired.flood[vni] = set()
            if wanted != (vtep in table):
                if wanted:
                    table.add(vtep)
                else:
                    table.discard(vtep)
                desired.dirty.add((FLOOD, vni, vtep))

    def _type2_added(
        self, key: MacIpKey, path: Path, l2: tuple[int, ...], l3: tuple[int, ...]
    ) -> None:
        """A remote type-2 key that had no path before: _type2_changed(old=None), made short.

        The FDB entry is set directly when the MAC has no local state, is not frozen and
        either has no other path or already points at this path's VTEP (adding a path from
        the VTEP that already wins cannot change the winner's VTEP).
        """
        mac, ip, nh = key.mac, key.ip, path.next_hop
        macs, ips = self._macs, self._ips
        local = self.mobility.local
        frozen_fdb = self.mobility.frozen_fdb
        frozen_neigh = self.mobility.frozen_neigh
        desired = self.desired
        dirty = desired.dirty
        for vni in l2:
            gk = (vni, mac)
            fresh = gk not in macs
            group_put(macs, gk, key, path)
            table = desired.fdb.get(vni)
            if table is None:
                table = desired.fdb[vni] = {}
            if gk in local or gk in frozen_fdb or (not fresh and table.get(mac) != nh):
                self._settle_mac(vni, mac)
            elif fresh and table.get(mac) != nh:
                table[mac] = nh
                dirty.add((FDB, vni, mac))
            if ip is not None:
                gk = (vni, ip)
                fresh = gk not in ips
                group_put(ips, gk, key, path)
                if fresh and gk not in frozen_neigh:
                    table = desired.neigh.get(vni)
                    if table is None:
                        table = desired.neigh[vni] = {}
                    if table.get(ip) != mac:
                        table[ip] = mac
                        dirty.add((NEIGH, vni, ip))
                else:
                    self._refresh_neigh(vni, ip)
        if l3:
            prefix = host_prefix(ip)  # type: ignore[arg-type]
            for vni in l3:
                group_put(self._prefixes, (vni, prefix), key, path)
                self._refresh_route(vni, prefix)

    def _type2_removed(self, key: MacIpKey, old: Path) -> None:
        """A remote type-2 key lost its last path: _type2_changed(new=None), made short.

        The FDB entry is dropped directly when the MAC has no other path, no local state and
        is not frozen; it is left alone when the removed path was not from the winning VTEP.
        """
        if old.peer == LOCAL_PEER:
            self._best_changed(key, old, None)
            return
        l2, l3 = path_targets(old, self._view.imports)
        mac, ip, nh = key.mac, key.ip, old.next_hop
        macs, ips = self._macs, self._ips
        local = self.mobility.local
        frozen_fdb = self.mobility.frozen_fdb
        desired = self.desired
        dirty = desired.dirty
        for vni in l2:
            gk = (vni, mac)
            left = group_del(macs, gk, key)
            if left is not ABSENT:
                table = desired.fdb.get(vni)
                if gk in local or gk in frozen_fdb or table is None:
                    self._settle_mac(vni, mac)
                elif left is None:
                    if mac in table:
                        del table[mac]
                        dirty.add((FDB, vni, mac))
                elif table.get(mac) == nh:
                    self._refresh_fdb(vni, mac)
            if ip is not None:
                gk = (vni, ip)
                left = group_del(ips, gk, key)
                if left is not ABSENT:
                    self._refresh_neigh(vni, ip)
        if l3:
            prefix = host_prefix(ip)  # type: ignore[arg-type]
            for vni in l3:
                group_del(self._prefixes, (vni, prefix), key)
                self._refresh_route(vni, prefix)

    # ------------------------------------------------ desired kernel objects from the indexes

    def _refresh_fdb(self, vni: int, mac: str) -> None:
        frozen = self.mobility.frozen_fdb
        if frozen and (vni, mac) in frozen:
            value = frozen[(vni, mac)]
        else:
            group = self._macs.get((vni, mac))
            if group is None:
                value = None
            elif type(group) is not dict:
                value = None if group.peer == LOCAL_PEER else group.next_hop
            else:
                value = fdb_value(group.values())
        desired = self.desired
        table = desired.fdb.get(vni)
        if table is None:
            table = desired.fdb[vni] = {}
        if table.get(mac) != value:
            if value is None:
                del table[mac]
            else:
                table[mac] = value
            desired.dirty.add((FDB, vni, mac))

    def _refresh_neigh(self, vni: int, ip: str) -> None:
        frozen = self.mobility.frozen_neigh
        if frozen and (vni, ip) in frozen:
            value = frozen[(vni, ip)]
        else:
            group = self._ips.get((vni, ip))
            if group is None:
                value = None
            elif type(group) is not dict:
                value = None if group.peer == LOCAL_PEER else group.key.mac  # type: ignore
            else:
                value = neigh_value(group.values())
        desired = self.desired
        table = desired.neigh.get(vni)
        if table is None:
            table = desired.neigh[vni] = {}
        if table.get(ip) != value:
            if value is None:
                del table[ip]
            else:
                table[ip] = value
            desired.dirty.add((NEIGH, vni, ip))

    def _refresh_route(self, vni: int, prefix: str) -> None:
        value = route_value(group_paths(self._prefixes.get((vni, prefix))))
        desired = self.desired
        table = desired.routes.get(vni)
        if table is None:
            table = desired.routes[vni] = {}
        old = table.get(prefix)
        if old == value:
            return
        if value is None:
            del table[prefix]
        else:
            table[prefix] = value
        desired.dirty.add((ROUTE, vni, prefix))
        if old is not None and old.router_mac is not None:
            self._rmac_ref(vni, old.vtep, old.router_mac, -1)
        if value is not None and value.router_mac is not None:
            self._rmac_ref(vni, value.vtep, value.router_mac, +1)

    def _rmac_ref(self, vni: int, vtep: str, rmac: str, delta: int) -> None:
        counts = self._rmac_refs.setdefault((vni, vtep), {})
        counts[rmac] = counts.get(rmac, 0) + delta
        if counts[rmac] <= 0:
            del counts[rmac]
        if not counts:
            del self._rmac_refs[(vni, vtep)]
        value = rmac_value(counts)
        table = self.desired.rmacs.setdefault(vni, {})
        if table.get(vtep) != value:
            if value is None:
                del table[vtep]
            else:
                table[vtep] = value
            self.desired.dirty.add((RMAC, vni, vtep))

    def _make_tables(self) -> None:
        desired = self.desired
        for vni in self._view.l2:
            desired.fdb.setdefault(vni, {})
            desired.flood.setdefault(vni, set())
            desired.neigh.setdefault(vni, {})
        for vni in self._view.l3:
            desired.routes.setdefault(vni, {})
            desired.rmacs.setdefault(vni, {})

    def _rebuild_indexes(self) -> None:
        """After a configuration change: re-select, re-import everything, diff desired state."""
        self._macs, self._ips, self._prefixes, self._flood = {}, {}, {}, {}
        self._rmac_refs = {}
        rib, imports = self.rib, self._view.imports
        for key in list(rib.multi):
            rib.reselect(key)
        for key, best in rib.best.items():
            l2, l3 = path_targets(best, imports)
            if type(key) is MacIpKey:
                for vni in l2:
                    group_put(self._macs, (vni, key.mac), key, best)
                    if key.ip is not None:
                        group_put(self._ips, (vni, key.ip), key, best)
                if key.ip is not None:
                    for vni in l3:
                        group_put(self._prefixes, (vni, host_prefix(key.ip)), key, best)
            elif type(key) is ImetKey:
                if best.peer != LOCAL_PEER:
                    for vni in l2:
                        self._flood.setdefault((vni, flood_vtep(best)), set()).add(key)
            else:
                for vni in l3:
                    group_put(self._prefixes, (vni, key.prefix), key, best)
        new = compute_desired(self, self.cfg)
        for vni, route_table in new.routes.items():
            for nh in route_table.values():
                if nh.router_mac is not None:
                    counts = self._rmac_refs.setdefault((vni, nh.vtep), {})
                    counts[nh.router_mac] = counts.get(nh.router_mac, 0) + 1
        self._adopt(new)

    def _adopt(self, new: DesiredState) -> None:
        """Take over a recomputed desired state, marking every object whose value differs."""
        old = self.desired
        dirty = old.dirty
        for kind, old_tables, new_tables in (
            (FDB, old.fdb, new.fdb),
            (NEIGH, old.neigh, new.neigh),
            (ROUTE, old.routes, new.routes),
            (RMAC, old.rmacs, new.rmacs),
        ):
            for vni in set(old_tables) | set(new_tables):
                a, b = old_tables.get(vni, {}), new_tables.get(vni, {})
                for k in set(a) | set(b):
                    if a.get(k) != b.get(k):
                        dirty.add((kind, vni, k))
        for vni in set(old.flood) | set(new.flood):
            for vtep in old.flood.get(vni, set()) ^ new.flood.get(vni, set()):
                dirty.add((FLOOD, vni, vtep))
        # In place: the dataplane holds a reference to this DesiredState.
        for name in ("fdb", "flood", "neigh", "routes", "rmacs"):
            table = getattr(old, name)
            table.clear()
            table.update(getattr(new, name))
        self._make_tables()
