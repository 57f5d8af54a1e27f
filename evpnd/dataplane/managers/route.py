"""Type-5 routes: (l3vni, prefix) -> a route `proto 235` in the L3VNI's table via the VTEP,
onlink, dev <L3 bridge> (an IPv6 prefix over an IPv4 VTEP via ::ffff:VTEP, an IPv4 prefix over
an IPv6 VTEP via RTA_VIA). A route someone else put in the table blocks the prefix."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers.base import ENOENT, ESRCH, Finding, KindManager, judge
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import ROUTE, DesiredState, VniDevices

CREATE = nl.NLM_F_CREATE | nl.NLM_F_REPLACE


class RouteManager(KindManager):
    kind = ROUTE
    actions = {"route-": 0, "route+": 3}

    def applies(self, dev: VniDevices) -> bool:
        return dev.l3 and dev.table is not None

    def keys(self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror) -> Iterable:
        return desired.routes.get(vni, {}).keys() | mirror.routes.get(vni, {}).keys()

    def findings(
        self, vni: int, prefix: str, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        nh = desired.routes.get(vni, {}).get(prefix)
        want = (nh.vtep, dev.bridge) if nh is not None else None  # as the mirror records it
        have = mirror.routes.get(vni, {}).get(prefix)
        v = judge(want, have, prefix in mirror.foreign_routes.get(vni, ()))
        if v:
            yield Finding(v, ROUTE, vni, prefix, want, have)

    def op(self, f: Finding, dev: VniDevices, mirror: Mirror) -> nl.Op:
        assert dev.table is not None  # see applies()
        if f.want is not None:
            want = f.want
            assert isinstance(want, tuple)
            vtep, oif = want
            body = nl.route_body(dev.table, f.key, vtep, oif)
            return nl.Op(nl.RTM_NEWROUTE, CREATE, body, ("route+", f.vni, f.key, f.want))
        body = nl.route_body(dev.table, f.key, None, None)
        return nl.Op(nl.RTM_DELROUTE, 0, body, ("route-", f.vni, f.key, None))

    def apply_result(self, mirror: Mirror, op: nl.Op) -> bool:
        action, vni, prefix, value = op.tag
        if action == "route+":
            if op.error == 0:
                mirror.routes.setdefault(vni, {})[prefix] = value
            return op.error == 0
        if op.error in (0, -ENOENT, -ESRCH):  # ESRCH: no such route
            mirror.routes.get(vni, {}).pop(prefix, None)
            return True
        return False
