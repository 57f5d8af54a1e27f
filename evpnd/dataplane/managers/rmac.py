"""Router MACs of an L3VNI: (l3vni, VTEP) -> FDB `RMAC dst VTEP` on the L3 VXLAN device (both
halves, as for remote MACs) + neighbour `VTEP lladdr RMAC` on the L3 bridge (and `::ffff:VTEP`
for the IPv6 routes via an IPv4 VTEP), so routed packets get the remote router MAC (symmetric
IRB as FRR programs it).

One key covers several kernel objects: the neighbours, the FDB entry of the wanted MAC, and the
entries of MACs that pointed at this VTEP and are no longer anyone's router MAC. The key "" (the
full pass adds it) stands for every VTEP: leftovers, and bridge entries without a vxlan entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers.base import DIFFERENT, EXTRA, MISSING, Finding, KindManager
from evpnd.dataplane.managers.fdb import BRIDGE_FDB, FdbManager
from evpnd.dataplane.managers.neigh import neigh_finding, neigh_op
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import RMAC, DesiredState, VniDevices

RMAC_FDB = "rmac_fdb"


class RmacManager(KindManager):
    kind = RMAC
    actions: dict[str, int] = {}  # its ops are the FDB and neighbour managers' ("fdb+", ...)

    def __init__(self, fdb: FdbManager) -> None:
        self.fdb = fdb

    def applies(self, dev: VniDevices) -> bool:
        return dev.l3

    def keys(self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror) -> Iterable:
        vteps = desired.rmacs.get(vni, {}).keys() | set(map(nl.unmap, mirror.neigh.get(vni, {})))
        vteps |= set(mirror.fdb.get(vni, {}).values())
        vteps.add("")  # orphans: bridge entries without a vxlan entry
        return vteps

    def findings(
        self, vni: int, vtep: str, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        rmacs = desired.rmacs.get(vni, {})
        want = rmacs.get(vtep)
        if vtep:
            for ip in (vtep, nl.v4_mapped(vtep)):  # the mapped one: next hop of IPv6 routes
                if ip is not None:
                    f = neigh_finding(RMAC, vni, ip, want, mirror)
                    if f is not None:
                        yield f
        fdb = mirror.fdb.get(vni, {})
        bridged = mirror.brfdb.get(vni, set())
        if want is not None:
            have = fdb.get(want)
            if have != vtep:
                yield Finding(
                    MISSING if have is None else DIFFERENT, RMAC_FDB, vni, want, vtep, have
                )
            elif want not in bridged:
                yield Finding(MISSING, BRIDGE_FDB, vni, want, vtep)
        # Router MACs that pointed at this VTEP (or at any) and are no longer anyone's.
        wanted_macs = set(rmacs.values())
        for mac, other in fdb.items():
            if (other == vtep or not vtep) and mac != want and mac not in wanted_macs:
                yield Finding(EXTRA, RMAC_FDB, vni, mac, None, other)
        if not vtep:
            for mac in bridged - wanted_macs - fdb.keys():
                yield Finding(EXTRA, BRIDGE_FDB, vni, mac)

    def op(self, f: Finding, dev: VniDevices, mirror: Mirror) -> nl.Op:
        if f.label == RMAC:
            return neigh_op(f, dev.bridge)
        if f.want is not None:
            return self.fdb.add_op(f.vni, dev.vxlan, f.key, str(f.want))
        bridged = f.key in mirror.brfdb.get(f.vni, ())
        return self.fdb.delete_op(f.vni, dev.vxlan, f.key, f.label == RMAC_FDB, bridged)

    def diff(
        self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        """An FDB entry can be found from two keys (its VTEP's and ""): report it once."""
        seen: set[tuple[str, str]] = set()
        for f in super().diff(vni, dev, desired, mirror):
            if (f.label, f.key) not in seen:
                seen.add((f.label, f.key))
                yield f
