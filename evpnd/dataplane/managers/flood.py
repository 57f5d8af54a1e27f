"""Head-end replication: (vni, VTEP) -> `00:00:00:00:00:00 dst VTEP self permanent` on the VXLAN
device, appended (one per remote VTEP; RFC 8365 section 5.1.3). No hand-made entry blocks one:
the kernel keeps a list per all-zero MAC."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers.base import ENOENT, Finding, KindManager, judge
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import FLOOD, DesiredState, VniDevices
from evpnd.dataplane.single_msgs import flood_suffix


class FloodManager(KindManager):
    kind = FLOOD
    actions = {"flood-": 1, "flood+": 2}

    def __init__(self) -> None:
        self.enc = nl.FdbEncoder()

    def applies(self, dev: VniDevices) -> bool:
        return not dev.l3

    def keys(self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror) -> Iterable:
        return desired.flood.get(vni, set()) | mirror.flood.get(vni, set())

    def findings(
        self, vni: int, vtep: str, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        want = True if vtep in desired.flood.get(vni, ()) else None
        have = True if vtep in mirror.flood.get(vni, ()) else None
        v = judge(want, have, False)
        if v:
            yield Finding(v, FLOOD, vni, vtep, want, have)

    def op(self, f: Finding, dev: VniDevices, mirror: Mirror) -> nl.Op:
        # vxlan_mode single: the entry is the VNI's on the shared device (NDA_SRC_VNI)
        suffix = b"" if dev.vlan is None else flood_suffix(dev.vni)
        if f.want is not None:
            body = self.enc.fdb(dev.vxlan, nl.ZERO_MAC, f.key, nl.NTF_SELF, nl.NUD_PERMANENT)
            body += suffix
            flags = nl.NLM_F_CREATE | nl.NLM_F_APPEND
            return nl.Op(nl.RTM_NEWNEIGH, flags, body, ("flood+", f.vni, f.key, True))
        body = self.enc.fdb(dev.vxlan, nl.ZERO_MAC, f.key, nl.NTF_SELF, 0) + suffix
        return nl.Op(nl.RTM_DELNEIGH, 0, body, ("flood-", f.vni, f.key, None))

    def apply_result(self, mirror: Mirror, op: nl.Op) -> bool:
        action, vni, vtep, _value = op.tag
        if action == "flood+":
            if op.error == 0:
                mirror.flood.setdefault(vni, set()).add(vtep)
            return op.error == 0
        if op.error in (0, -ENOENT):
            mirror.flood.get(vni, set()).discard(vtep)
            return True
        return False
