"""Indexes of best paths by kernel object, and the incremental upkeep of the desired state.

Kept from best paths as they change (nothing scans all routes on an update):
  macs[(l2vni, mac)]      best type-2 paths carrying the MAC (any RD, any IP, local too)
  ips[(l2vni, ip)]        best type-2 MAC+IP paths carrying the IP
  prefixes[(l3vni, pfx)]  best type-5 paths and symmetric-IRB host routes
  (each a Group: one Path, or {key: Path} when there are several)
  flood[(l2vni, vtep)]    keys of imported remote type-3 routes towards that VTEP
  rmac_refs[(l3vni, vtep)]  {router MAC: routes via that VTEP carrying it}
From them the desired FDB, neighbour, flood, route and router-MAC entries are refreshed one
object at a time by the rules in desired.py, each change recorded in `desired.dirty`.

The flow has one direction: this object never calls back into the rest of the core. The FDB
entry of a MAC this VTEP has local state for, and the neighbour entries of its IPs, wait for
the local-versus-remote decision: they are queued in `unsettled`, which LocalMacs drains
(it decides, re-originates, then asks for refresh_fdb / refresh_neigh here).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from evpnd.core.desired import (
    FDB,
    FLOOD,
    NEIGH,
    RMAC,
    ROUTE,
    DesiredState,
    fdb_entry,
    flood_vtep,
    host_prefix,
    neigh_entry,
    rmac_value,
    route_value,
)
from evpnd.core.mobility import Mobility
from evpnd.core.path_groups import ABSENT, Group, group_del, group_paths, group_put
from evpnd.core.rib import Rib, path_targets
from evpnd.core.settings import SettingsView
from evpnd.routes.evpn import LOCAL_PEER, ImetKey, MacIpKey, Path, PrefixKey, RouteKey

Targets = tuple[tuple[int, ...], tuple[int, ...]]  # (L2VNIs, L3VNIs) a path is imported into
Unsettled = tuple[int, str, str | None]  # (L2VNI, MAC, IP of the changed key or None)


class BestPathIndexes:
    """Best paths by kernel object, and the desired state kept from them."""

    def __init__(self, view: SettingsView, desired: DesiredState, mobility: Mobility) -> None:
        self.view = view
        self.desired = desired
        self.mobility = mobility  # read only: local MACs (who waits to settle), frozen values
        self.macs: dict[tuple[int, str], Group] = {}
        self.ips: dict[tuple[int, str], Group] = {}
        self.prefixes: dict[tuple[int, str], Group] = {}
        self.flood: dict[tuple[int, str], set[RouteKey]] = {}
        self.rmac_refs: dict[tuple[int, str], dict[str, int]] = {}
        # MACs with local state whose paths changed: LocalMacs.settle_pending() drains it.
        self.unsettled: deque[Unsettled] = deque()
        self.make_tables()

    # ------------------------------------------------ a best path changed

    def best_changed(self, key: RouteKey, old: Path | None, new: Path | None) -> None:
        """A key's best path changed: move it in the indexes, refresh the objects it feeds."""
        imports = self.view.imports
        if (
            old is not None
            and new is not None
            and type(key) is MacIpKey
            and equivalent(old, new)
            and self.type2_replaced(key, new, path_targets(new, imports))
        ):
            return
        old_t = None if old is None else path_targets(old, imports)
        new_t = None if new is None else path_targets(new, imports)
        if isinstance(key, MacIpKey):
            self._type2_changed(key, new, old_t, new_t)
        elif isinstance(key, ImetKey):
            self._type3_changed(key, old, new, old_t, new_t)
        else:
            self._type5_changed(key, new, old_t, new_t)

    def _type5_changed(
        self, key: PrefixKey, new: Path | None, old_t: Targets | None, new_t: Targets | None
    ) -> None:
        prefix = key.prefix
        vnis = set()
        if old_t:
            for vni in old_t[1]:
                group_del(self.prefixes, (vni, prefix), key)
                vnis.add(vni)
        if new_t and new is not None:
            for vni in new_t[1]:
                group_put(self.prefixes, (vni, prefix), key, new)
                vnis.add(vni)
        for vni in vnis:
            self.refresh_route(vni, prefix)

    def _type2_changed(
        self, key: MacIpKey, new: Path | None, old_t: Targets | None, new_t: Targets | None
    ) -> None:
        mac, ip = key.mac, key.ip
        macs, ips, prefixes = self.macs, self.ips, self.prefixes
        if old_t is not None:
            for vni in old_t[0]:
                group_del(macs, (vni, mac), key)
                if ip is not None:
                    group_del(ips, (vni, ip), key)
            if old_t[1] and ip is not None:
                pfx = host_prefix(ip)
                for vni in old_t[1]:
                    group_del(prefixes, (vni, pfx), key)
        if new_t is not None and new is not None:
            for vni in new_t[0]:
                group_put(macs, (vni, mac), key, new)
                if ip is not None:
                    group_put(ips, (vni, ip), key, new)
            if new_t[1] and ip is not None:
                pfx = host_prefix(ip)
                for vni in new_t[1]:
                    group_put(prefixes, (vni, pfx), key, new)
        l2: tuple[int, ...] | set[int] = ()
        if old_t is None:
            l2 = new_t[0] if new_t is not None else ()
        else:
            l2 = old_t[0] if new_t is None else {*old_t[0], *new_t[0]}
        for vni in l2:
            self.mac_changed(vni, mac, ip)
        l3: tuple[int, ...] | set[int] = () if old_t is None else old_t[1]
        if new_t is not None:
            l3 = new_t[1] if not l3 else {*l3, *new_t[1]}
        if l3 and ip is not None:
            pfx = host_prefix(ip)
            for vni in l3:
                self.refresh_route(vni, pfx)

    def type2_replaced(self, key: MacIpKey, new: Path, targets: Targets) -> bool:
        """The best path of a type-2 key went to an equivalent path (equivalent()): the other
        route reflector's copy when one is lost or withdraws. Only the Path objects in the
        groups change: fdb_entry(), neigh_entry() and route_value() read nothing that differs,
        so no entry is re-derived (it was ~60% of a route reflector's loss). A MAC with local
        state goes the general way (False): the local-versus-remote decision is LocalMacs'."""
        l2, l3 = targets
        mac, ip = key.mac, key.ip
        local = self.mobility.local
        if local:
            for vni in l2:
                if (vni, mac) in local:
                    return False
        macs, ips = self.macs, self.ips
        for vni in l2:
            group_put(macs, (vni, mac), key, new)
            if ip is not None:
                group_put(ips, (vni, ip), key, new)
        if l3 and ip is not None:
            pfx = host_prefix(ip)
            for vni in l3:
                group_put(self.prefixes, (vni, pfx), key, new)
        return True

    def mac_changed(self, vni: int, mac: str, ip: str | None) -> None:
        """The paths of a MAC (and of one of its IPs) changed in an L2VNI: refresh its FDB and
        neighbour entries, or queue them behind the local-versus-remote decision."""
        if (vni, mac) in self.mobility.local:
            self.unsettled.append((vni, mac, ip))
            return
        self.refresh_fdb(vni, mac)
        if ip is not None:
            self.refresh_neigh(vni, ip)

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
                refs = self.flood.get((vni, vtep))
                if refs is not None:
                    refs.discard(key)
                    if not refs:
                        del self.flood[(vni, vtep)]
                touched.append((vni, vtep))
        if new is not None and new_t is not None and new.peer != LOCAL_PEER:
            vtep = flood_vtep(new)
            for vni in new_t[0]:
                self.flood.setdefault((vni, vtep), set()).add(key)
                touched.append((vni, vtep))
        desired = self.desired
        for vni, vtep in touched:
            wanted = (vni, vtep) in self.flood
            table = desired.flood.get(vni)
            if table is None:
                table = desired.flood[vni] = set()
            if wanted != (vtep in table):
                if wanted:
                    table.add(vtep)
                else:
                    table.discard(vtep)
                desired.dirty.add((FLOOD, vni, vtep))

    def type2_added(
        self, key: MacIpKey, path: Path, l2: tuple[int, ...], l3: tuple[int, ...]
    ) -> None:
        """A remote type-2 key that had no path before: _type2_changed(old=None), made short.

        The FDB entry is set directly when the MAC has no local state, is not frozen and had
        no path before: fdb_entry() of a group of one remote path is its next hop. When the
        MAC had paths, fdb_entry() decides (refresh_fdb), unless the current entry already
        points at this path's VTEP: a path from the winning VTEP cannot change the winner's
        VTEP (equal rank means equal VTEP), so the entry stays what fdb_entry() would say.
        """
        mac, ip, nh = key.mac, key.ip, path.next_hop
        macs, ips = self.macs, self.ips
        local = self.mobility.local
        frozen_fdb = self.mobility.frozen_fdb
        frozen_neigh = self.mobility.frozen_neigh
        desired = self.desired
        dirty = desired.dirty
        for vni in l2:
            gk = (vni, mac)
            fresh = gk not in macs
            group_put(macs, gk, key, path)
            if ip is not None:
                group_put(ips, (vni, ip), key, path)
            if gk in local:
                self.unsettled.append((vni, mac, ip))
                continue
            table = desired.fdb.get(vni)
            if table is None:
                table = desired.fdb[vni] = {}
            if gk in frozen_fdb or (not fresh and table.get(mac) != nh):
                self.refresh_fdb(vni, mac)
            elif fresh and table.get(mac) != nh:
                table[mac] = nh
                dirty.add((FDB, vni, mac))
            if ip is not None:
                gk = (vni, ip)
                group = ips[gk]
                if group is path and gk not in frozen_neigh:
                    # the IP's only path: neigh_entry() is its MAC
                    neigh = desired.neigh.get(vni)
                    if neigh is None:
                        neigh = desired.neigh[vni] = {}
                    if neigh.get(ip) != mac:
                        neigh[ip] = mac
                        dirty.add((NEIGH, vni, ip))
                else:
                    self.refresh_neigh(vni, ip)
        if l3 and ip is not None:
            prefix = host_prefix(ip)
            for vni in l3:
                group_put(self.prefixes, (vni, prefix), key, path)
                self.refresh_route(vni, prefix)

    def type2_removed(self, key: MacIpKey, old: Path) -> None:
        """A type-2 key lost its last path: _type2_changed(new=None), made short.

        The FDB entry is dropped directly when the MAC has no other path, no local state and
        is not frozen (fdb_entry() of no group is None); it is left alone when the removed
        path was not from the winning VTEP (removing a path that does not hold the highest
        rank leaves the winner, see type2_added); otherwise fdb_entry() decides.
        """
        if old.peer == LOCAL_PEER:
            self.best_changed(key, old, None)
            return
        l2, l3 = path_targets(old, self.view.imports)
        mac, ip, nh = key.mac, key.ip, old.next_hop
        macs, ips = self.macs, self.ips
        local = self.mobility.local
        frozen_fdb = self.mobility.frozen_fdb
        desired = self.desired
        dirty = desired.dirty
        for vni in l2:
            gk = (vni, mac)
            left = group_del(macs, gk, key)
            ip_left = ABSENT if ip is None else group_del(ips, (vni, ip), key)
            if gk in local:
                if left is not ABSENT or ip_left is not ABSENT:
                    self.unsettled.append((vni, mac, None if ip_left is ABSENT else ip))
                continue
            if left is not ABSENT:
                table = desired.fdb.get(vni)
                if gk in frozen_fdb or table is None:
                    self.refresh_fdb(vni, mac)
                elif left is None:
                    if mac in table:
                        del table[mac]
                        dirty.add((FDB, vni, mac))
                elif table.get(mac) == nh:
                    self.refresh_fdb(vni, mac)
            if ip is not None and ip_left is not ABSENT:
                self.refresh_neigh(vni, ip)
        if l3 and ip is not None:
            prefix = host_prefix(ip)
            for vni in l3:
                group_del(self.prefixes, (vni, prefix), key)
                self.refresh_route(vni, prefix)

    # ------------------------------------------------ desired kernel objects from the indexes

    def refresh_fdb(self, vni: int, mac: str) -> None:
        value = fdb_entry(self.macs, self.mobility.frozen_fdb, vni, mac)
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

    def refresh_neigh(self, vni: int, ip: str) -> None:
        value = neigh_entry(self.ips, self.mobility.frozen_neigh, vni, ip)
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

    def refresh_route(self, vni: int, prefix: str) -> None:
        value = route_value(group_paths(self.prefixes.get((vni, prefix))))
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
        counts = self.rmac_refs.setdefault((vni, vtep), {})
        counts[rmac] = counts.get(rmac, 0) + delta
        if counts[rmac] <= 0:
            del counts[rmac]
        if not counts:
            del self.rmac_refs[(vni, vtep)]
        value = rmac_value(counts)
        table = self.desired.rmacs.setdefault(vni, {})
        if table.get(vtep) != value:
            if value is None:
                del table[vtep]
            else:
                table[vtep] = value
            self.desired.dirty.add((RMAC, vni, vtep))

    def make_tables(self) -> None:
        desired = self.desired
        for vni in self.view.l2:
            desired.fdb.setdefault(vni, {})
            desired.flood.setdefault(vni, set())
            desired.neigh.setdefault(vni, {})
        for vni in self.view.l3:
            desired.routes.setdefault(vni, {})
            desired.rmacs.setdefault(vni, {})

    def rebuild(self, view: SettingsView, rib: Rib, new: DesiredState) -> None:
        """After a configuration change: re-index every best path under the new settings and
        take over `new` (the state computed from scratch), marking what differs as dirty."""
        self.view = view
        self.macs, self.ips, self.prefixes, self.flood = {}, {}, {}, {}
        self.rmac_refs = {}
        imports = view.imports
        for key, best in rib.best.items():
            l2, l3 = path_targets(best, imports)
            if isinstance(key, MacIpKey):
                for vni in l2:
                    group_put(self.macs, (vni, key.mac), key, best)
                    if key.ip is not None:
                        group_put(self.ips, (vni, key.ip), key, best)
                if key.ip is not None:
                    for vni in l3:
                        group_put(self.prefixes, (vni, host_prefix(key.ip)), key, best)
            elif isinstance(key, ImetKey):
                if best.peer != LOCAL_PEER:
                    for vni in l2:
                        self.flood.setdefault((vni, flood_vtep(best)), set()).add(key)
            else:
                for vni in l3:
                    group_put(self.prefixes, (vni, key.prefix), key, best)
        for vni, route_table in new.routes.items():
            for nh in route_table.values():
                if nh.router_mac is not None:
                    counts = self.rmac_refs.setdefault((vni, nh.vtep), {})
                    counts[nh.router_mac] = counts.get(nh.router_mac, 0) + 1
        self._adopt(new)

    def _adopt(self, new: DesiredState) -> None:
        """Take over a recomputed desired state, marking every object whose value differs."""
        old = self.desired
        dirty = old.dirty
        _mark_changed(dirty, FDB, old.fdb, new.fdb)
        _mark_changed(dirty, NEIGH, old.neigh, new.neigh)
        _mark_changed(dirty, ROUTE, old.routes, new.routes)
        _mark_changed(dirty, RMAC, old.rmacs, new.rmacs)
        for vni in set(old.flood) | set(new.flood):
            for vtep in old.flood.get(vni, set()) ^ new.flood.get(vni, set()):
                dirty.add((FLOOD, vni, vtep))
        # In place: the dataplane holds a reference to this DesiredState.
        old.fdb.clear()
        old.fdb.update(new.fdb)
        old.flood.clear()
        old.flood.update(new.flood)
        old.neigh.clear()
        old.neigh.update(new.neigh)
        old.routes.clear()
        old.routes.update(new.routes)
        old.rmacs.clear()
        old.rmacs.update(new.rmacs)
        self.make_tables()


def equivalent(old: Path, new: Path) -> bool:
    """Two remote paths of one key that feed the same kernel objects with the same values:
    same next hop, labels and ESI, and equal attributes for what the rules read (route
    targets: where it is imported; sequence and sticky: rank(); router MAC: route_value())."""
    if old.peer == LOCAL_PEER or new.peer == LOCAL_PEER:
        return False
    if (old.next_hop, old.vni, old.l3vni, old.esi) != (new.next_hop, new.vni, new.l3vni, new.esi):
        return False
    a, b = old.attrs, new.attrs
    return a is b or (
        a.route_targets == b.route_targets
        and a.mobility_seq == b.mobility_seq
        and a.sticky == b.sticky
        and a.router_mac == b.router_mac
    )


def _mark_changed(
    dirty: set[tuple[str, int, str]],
    kind: str,
    old: Mapping[int, Mapping[str, object]],
    new: Mapping[int, Mapping[str, object]],
) -> None:
    for vni in set(old) | set(new):
        a, b = old.get(vni, {}), new.get(vni, {})
        for k in set(a) | set(b):
            if a.get(k) != b.get(k):
                dirty.add((kind, vni, k))
