"""What the kernel holds of evpnd's objects, kept in memory so no hot path has to dump.

Filled by one dump at start (and after a netlink overrun), then kept current from netlink events
and from the outcome of evpnd's own writes. Only owned objects are recorded as such (DESIGN rule
5): FDB entries with `extern_learn` on evpnd's VXLAN devices (vxlan `self` entries, and the
bridge's `master` entries pointing at the VXLAN port), all-zero flood entries on those devices,
neighbours with `extern_learn` or protocol RTPROT_EVPND on evpnd's bridges, routes with that
protocol in the L3VNI tables. Hand-made static entries that collide with a wanted key are kept
in `foreign_*` so the planner leaves them alone; the kernel's own (dynamic) neighbours on those
bridges in `dynamic_ips`, the only foreign neighbours evpnd may replace.

Keys follow the desired state: per VNI, so an L3VNI's router-MAC FDB entries live in `fdb[l3vni]`
and its VTEP neighbours in `neigh[l3vni]`. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.model import FDB, FLOOD, NEIGH, RMAC, ROUTE, VRF_DEFAULTS, DeviceMap, DirtyKey

_TABLES = ("fdb", "brfdb", "flood", "neigh", "routes", "foreign_macs", "foreign_ips")
_TABLES += ("foreign_routes", "dynamic_ips")

# An event that changed an owned object: the desired key it belongs to.
Change = DirtyKey


@dataclass
class Mirror:
    fdb: dict[int, dict[str, str]] = field(default_factory=dict)  # vni -> MAC -> VTEP (vxlan)
    brfdb: dict[int, set[str]] = field(default_factory=dict)  # vni -> MACs (bridge, on vxlan port)
    flood: dict[int, set[str]] = field(default_factory=dict)  # vni -> VTEPs (all-zero entries)
    neigh: dict[int, dict[str, str]] = field(default_factory=dict)  # vni -> IP -> MAC
    routes: dict[int, dict[str, tuple[str | None, int]]] = field(default_factory=dict)
    foreign_macs: dict[int, set[str]] = field(default_factory=dict)
    foreign_ips: dict[int, set[str]] = field(default_factory=dict)
    foreign_routes: dict[int, set[str]] = field(default_factory=dict)
    # neighbours the kernel made itself (ARP/ND through an SVI: reachable, stale, incomplete...):
    # not a person's, so evpnd's entry may replace them; any other key is written exclusively
    dynamic_ips: dict[int, set[str]] = field(default_factory=dict)

    # ---- updates from kernel messages -----------------------------------------------------------

    def on_fdb(self, n: nl.Neigh, dm: DeviceMap) -> Change | None:
        """An AF_BRIDGE entry on one of evpnd's VXLAN devices; else None (not ours to mirror)."""
        vni = dm.fdb_vni(n.ifindex, bool(n.flags & nl.NTF_SELF), n.src_vni, n.vlan)
        if vni is None or n.mac is None:
            return None
        dev = dm.vnis[vni]
        mac = n.mac
        if n.flags & nl.NTF_SELF:  # the VXLAN device's own table
            if mac == nl.ZERO_MAC:
                if n.dst is None:
                    return None
                flood = self.flood.setdefault(vni, set())
                if n.deleted:
                    flood.discard(n.dst)
                else:
                    flood.add(n.dst)
                return (FLOOD, vni, n.dst) if not dev.l3 else None
            if n.flags & nl.NTF_EXT_LEARNED and not n.extra:
                table = self.fdb.setdefault(vni, {})
                if n.deleted:
                    old = table.pop(mac, None)
                    vtep = old or n.dst
                elif n.dst is not None:
                    table[mac] = vtep = n.dst
                else:
                    return None
                if dev.l3:
                    return (RMAC, vni, vtep) if vtep else None
                return (FDB, vni, mac)
            # A hand-made entry: it may have replaced ours (`bridge fdb replace` clears
            # extern_learn), and when it goes the wanted entry must come back: both make the
            # key dirty so the planner judges it again (conflict, or missing).
            old = self.fdb.get(vni, {}).pop(mac, None)
            self._foreign_mac(vni, mac, n.deleted)
            if dev.l3:
                return (RMAC, vni, old) if old else None
            return (FDB, vni, mac) if old is not None or n.deleted else None
        if n.state & nl.NUD_PERMANENT:  # the port's own address
            return None
        if n.flags & nl.NTF_EXT_LEARNED:
            macs = self.brfdb.setdefault(vni, set())
            if n.deleted:
                macs.discard(mac)
            else:
                macs.add(mac)
            if dev.l3:
                vtep = self.fdb.get(vni, {}).get(mac)
                return (RMAC, vni, vtep) if vtep else None
            return (FDB, vni, mac)
        ours = mac in self.brfdb.get(vni, set())  # replaced by a hand-made entry, as above
        self.brfdb.get(vni, set()).discard(mac)
        self._foreign_mac(vni, mac, n.deleted)
        if dev.l3:
            return None
        return (FDB, vni, mac) if ours or n.deleted else None

    def _foreign_mac(self, vni: int, mac: str, deleted: bool) -> None:
        macs = self.foreign_macs.setdefault(vni, set())
        if deleted:
            macs.discard(mac)
        else:
            macs.add(mac)
        return None

    def moved_to_port(self, vni: int, mac: str) -> Change | None:
        """The bridge took over an entry on an access port (the host is local now): the bridge
        entry is no longer ours, and the kernel sends no delete for the VXLAN port."""
        macs = self.brfdb.get(vni)
        if macs and mac in macs:
            macs.discard(mac)
            return (FDB, vni, mac)
        return None

    def on_neigh(self, n: nl.Neigh, dm: DeviceMap) -> tuple[Change | None, bool]:
        """A neighbour on one of evpnd's bridges: (change, owned)."""
        vni = dm.by_bridge.get(n.ifindex)
        if vni is None or n.dst is None:
            return None, False
        owned = bool(n.flags & nl.NTF_EXT_LEARNED) or n.protocol == nl.RTPROT_EVPND
        ip = n.dst
        if owned:
            dynamic = self.dynamic_ips.get(vni)
            if dynamic:
                dynamic.discard(ip)
            table = self.neigh.setdefault(vni, {})
            if n.deleted or n.mac is None:
                table.pop(ip, None)
            else:
                table[ip] = n.mac
            if dm.vnis[vni].l3:
                return (RMAC, vni, nl.unmap(ip)), True
            return (NEIGH, vni, ip), True
        ips = self.foreign_ips.setdefault(vni, set())
        dynamic = self.dynamic_ips.setdefault(vni, set())
        if n.deleted:
            ips.discard(ip)
            dynamic.discard(ip)
        elif n.state & (nl.NUD_PERMANENT | nl.NUD_NOARP):
            ips.add(ip)
            dynamic.discard(ip)
        else:
            ips.discard(ip)
            dynamic.add(ip)
        # ours replaced by a hand-made entry (`ip neigh replace`), a hand-made one gone, or one
        # that an exclusive write of ours ran into (EEXIST): the key is judged again (conflict,
        # missing, or replaceable)
        self.neigh.get(vni, {}).pop(ip, None)
        if not dm.vnis[vni].l3:
            return (NEIGH, vni, ip), False
        return None, False

    def on_route(self, r: nl.Route, dm: DeviceMap) -> Change | None:
        vni = dm.by_table.get(r.table)
        if vni is None or (r.rtype == nl.RTN_UNREACHABLE and r.prefix in VRF_DEFAULTS):
            return None  # (a VRF's catch-all, see devices.py: no type-5 default's conflict)
        # A static GRE tunnel's prefixes (tunnel_devices.py) are not type-5 routes: kept as
        # foreign, so the route manager neither deletes them nor overwrites them.
        if r.protocol == nl.RTPROT_EVPND and r.oif not in dm.tunnels:
            table = self.routes.setdefault(vni, {})
            if r.deleted:
                table.pop(r.prefix, None)
            else:
                table[r.prefix] = (r.gateway, r.oif)
            return (ROUTE, vni, r.prefix)
        routes = self.foreign_routes.setdefault(vni, set())
        if r.deleted:
            routes.discard(r.prefix)
        else:
            routes.add(r.prefix)
        return None

    # ---- updates from evpnd's own writes (events for those are filtered out, see netlink) -------

    def set_fdb(self, vni: int, mac: str, vtep: str) -> None:
        self.fdb.setdefault(vni, {})[mac] = vtep
        self.brfdb.setdefault(vni, set()).add(mac)

    def drop_fdb_half(self, vni: int, mac: str, vxlan_half: bool) -> None:
        """One half of a remote MAC went away (its delete event)."""
        if vxlan_half:
            table = self.fdb.get(vni)
            if table:
                table.pop(mac, None)
        else:
            macs = self.brfdb.get(vni)
            if macs:
                macs.discard(mac)

    def drop_fdb(self, vni: int, mac: str) -> None:
        self.fdb.get(vni, {}).pop(mac, None)
        self.brfdb.get(vni, set()).discard(mac)

    def replace_vnis(self, other: Mirror, vnis) -> None:
        """Take these VNIs' objects from a fresh (partial) dump."""
        for vni in vnis:
            self.forget_vni(vni)
            for name in _TABLES:
                table = getattr(other, name).get(vni)
                if table is not None:
                    getattr(self, name)[vni] = table

    def forget_vni(self, vni: int) -> None:
        for table in (self.fdb, self.brfdb, self.flood, self.neigh, self.routes):
            table.pop(vni, None)
        for table in (self.foreign_macs, self.foreign_ips, self.foreign_routes, self.dynamic_ips):
            table.pop(vni, None)

    def counts(self) -> dict[str, int]:
        return {
            FDB: sum(map(len, self.fdb.values())),
            "bridge_fdb": sum(map(len, self.brfdb.values())),
            FLOOD: sum(map(len, self.flood.values())),
            NEIGH: sum(map(len, self.neigh.values())),
            ROUTE: sum(map(len, self.routes.values())),
            "foreign": sum(map(len, self.foreign_macs.values()))
            + sum(map(len, self.foreign_ips.values()))
            + sum(map(len, self.foreign_routes.values())),
        }
