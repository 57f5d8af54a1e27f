"""ARP/ND suppression: (vni, IP) -> a neighbour on the L2VNI's bridge, lladdr MAC, NUD_NOARP,
extern_learn, protocol RTPROT_EVPND (answers ARP/ND locally; RFC 9161). A hand-made permanent or
noarp neighbour for the IP blocks the key (`mirror.foreign_ips`). A key evpnd believes free is
written exclusively (NLM_F_EXCL): a person's entry made after the plan was drawn (its event still
on the way) makes the write fail with EEXIST instead of being overwritten; only evpnd's own entry
or one the kernel made itself (`mirror.dynamic_ips`) is replaced.

`neigh_finding` and the ops are shared with the router-MAC manager, whose VTEP neighbours live
on the L3VNI's bridge."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers.base import EEXIST, ENOENT, Finding, KindManager, judge
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import NEIGH, DesiredState, VniDevices

CREATE = nl.NLM_F_CREATE | nl.NLM_F_REPLACE
CREATE_EXCL = nl.NLM_F_CREATE | nl.NLM_F_EXCL


def neigh_finding(
    label: str, vni: int, ip: str, want: str | None, mirror: Mirror
) -> Finding | None:
    have = mirror.neigh.get(vni, {}).get(ip)
    v = judge(want, have, ip in mirror.foreign_ips.get(vni, ()))
    return Finding(v, label, vni, ip, want, have) if v else None


def neigh_op(f: Finding, bridge: int, exclusive: bool = False) -> nl.Op:
    if f.want is not None:
        body = nl.neigh_body(bridge, f.key, str(f.want))
        flags = CREATE_EXCL if exclusive else CREATE
        return nl.Op(nl.RTM_NEWNEIGH, flags, body, ("neigh+", f.vni, f.key, f.want))
    body = nl.neigh_body(bridge, f.key, None)
    return nl.Op(nl.RTM_DELNEIGH, 0, body, ("neigh-", f.vni, f.key, None))


class NeighManager(KindManager):
    kind = NEIGH
    actions = {"neigh-": 1, "neigh+": 2}

    def applies(self, dev: VniDevices) -> bool:
        # vxlan_mode single: suppression would need a VLAN SVI per VNI (not made: README)
        return not dev.l3 and dev.vlan is None

    def keys(self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror) -> Iterable:
        return desired.neigh.get(vni, {}).keys() | mirror.neigh.get(vni, {}).keys()

    def findings(
        self, vni: int, ip: str, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        f = neigh_finding(NEIGH, vni, ip, desired.neigh.get(vni, {}).get(ip), mirror)
        if f is not None:
            yield f

    def op(self, f: Finding, dev: VniDevices, mirror: Mirror) -> nl.Op:
        exclusive = f.have is None and f.key not in mirror.dynamic_ips.get(f.vni, ())
        return neigh_op(f, dev.bridge, exclusive)

    def apply_result(self, mirror: Mirror, op: nl.Op) -> bool:
        action, vni, ip, mac = op.tag
        if action == "neigh+":
            if op.error == 0:
                mirror.neigh.setdefault(vni, {})[ip] = mac
            # EEXIST: an entry evpnd had not seen holds the key; left alone, and its event
            # (on the way) has the key judged again
            return op.error in (0, -EEXIST)
        if op.error in (0, -ENOENT):
            mirror.neigh.get(vni, {}).pop(ip, None)
            return True
        return False
