"""Remote MACs: (vni, MAC) -> one RTM_NEWNEIGH with NTF_SELF|NTF_MASTER|NTF_EXT_LEARNED on the
VXLAN device. The kernel adds both the vxlan entry `MAC dst VTEP self extern_learn` and the
bridge entry `MAC master BRIDGE extern_learn`; the bridge entry makes known unicast go to the
VXLAN port only (no flooding to access ports) and is what ARP/ND suppression looks up.

The bulk case (100k MACs after a session comes up): `plan` and `apply_results` are tight loops
around the same `judge_fdb` that `findings` (the diff) uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers.base import (
    CONFLICT,
    DIFFERENT,
    ENOENT,
    EXTRA,
    INVALID,
    MISSING,
    OK,
    Finding,
    KindManager,
    PlanStats,
)
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import FDB, DesiredState, DirtyKey, VniDevices
from evpnd.dataplane.single_msgs import fdb_suffix

CREATE = nl.NLM_F_CREATE | nl.NLM_F_REPLACE
FLAGS = nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED
# Verdicts of the bridge half alone (the vxlan half is right or absent as wanted)
HALF_MISSING, HALF_EXTRA = 5, 6
BRIDGE_FDB = "bridge_fdb"


def judge_fdb(mac: str, want: str | None, have: str | None, bridged, foreign) -> int:
    """The comparison of one remote MAC: wanted VTEP, the owned vxlan entry's VTEP, whether
    the owned bridge entry exists, and the hand-made entries that block the key."""
    if want is not None:
        if have == want:
            return OK if mac in bridged else HALF_MISSING
        if have is None:
            return CONFLICT if mac in foreign else MISSING
        return DIFFERENT
    if have is not None:
        return EXTRA
    return HALF_EXTRA if mac in bridged else OK


class FdbManager(KindManager):
    kind = FDB
    actions = {"fdb-": 1, "fdb+": 2}

    def __init__(self) -> None:
        self.enc = nl.FdbEncoder()

    def applies(self, dev: VniDevices) -> bool:
        return not dev.l3

    def keys(self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror) -> Iterable:
        keys = desired.fdb.get(vni, {}).keys() | mirror.fdb.get(vni, {}).keys()
        return keys | mirror.brfdb.get(vni, set())

    def findings(
        self, vni: int, mac: str, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        want = desired.fdb.get(vni, {}).get(mac)
        have = mirror.fdb.get(vni, {}).get(mac)
        bridged = mirror.brfdb.get(vni, set())
        v = judge_fdb(mac, want, have, bridged, mirror.foreign_macs.get(vni, set()))
        if v == OK:
            return
        if v in (HALF_MISSING, HALF_EXTRA):
            yield Finding(MISSING if v == HALF_MISSING else EXTRA, BRIDGE_FDB, vni, mac)
            return
        yield Finding(v, FDB, vni, mac, want, have)
        if v == DIFFERENT and mac not in bridged:
            yield Finding(MISSING, BRIDGE_FDB, vni, mac)
        elif v == EXTRA and mac in bridged:
            yield Finding(EXTRA, BRIDGE_FDB, vni, mac)

    # ---- operations (also used by the router-MAC manager) ------------------------------------

    def add_op(self, vni: int, vxlan: int, mac: str, vtep: str, suffix: bytes = b"") -> nl.Op:
        body = self.enc.fdb(vxlan, mac, vtep, FLAGS, nl.NUD_REACHABLE) + suffix
        return nl.Op(nl.RTM_NEWNEIGH, CREATE, body, ("fdb+", vni, mac, vtep))

    def delete_op(
        self, vni: int, vxlan: int, mac: str, vxlan_half: bool, bridge_half: bool,
        suffix: bytes = b"",
    ) -> nl.Op:  # fmt: skip
        # One message can delete both halves; the kernel stops at the first part that is
        # missing, so name only the parts the mirror has.
        flags = (nl.NTF_SELF if vxlan_half else 0) | (nl.NTF_MASTER if bridge_half else 0)
        body = self.enc.fdb(vxlan, mac, None, flags | nl.NTF_EXT_LEARNED, 0) + suffix
        return nl.Op(nl.RTM_DELNEIGH, 0, body, ("fdb-", vni, mac, None))

    @staticmethod
    def suffix(dev: VniDevices) -> bytes:
        """vxlan_mode single: the VLAN and VNI every entry on the shared device carries."""
        return b"" if dev.vlan is None else fdb_suffix(dev.vlan, dev.vni, dev.bridge)

    def op(self, f: Finding, dev: VniDevices, mirror: Mirror) -> nl.Op:
        if f.want is not None:
            return self.add_op(f.vni, dev.vxlan, f.key, str(f.want), self.suffix(dev))
        bridged = f.key in mirror.brfdb.get(f.vni, ())
        vxlan_half = f.key in mirror.fdb.get(f.vni, {})
        return self.delete_op(f.vni, dev.vxlan, f.key, vxlan_half, bridged, self.suffix(dev))

    def plan(
        self,
        keys: list[DirtyKey],
        devs: dict[int, VniDevices],
        desired: DesiredState,
        mirror: Mirror,
        allow_delete: bool,
        ops: list[nl.Op],
        stats: PlanStats,
    ) -> None:
        """`findings` + `op` for every key, inlined: the bulk case."""
        ctxs: dict[int, tuple] = {}
        op_type = nl.Op
        judge = judge_fdb
        append = ops.append
        for key in keys:
            _kind, vni, item = key
            ctx = ctxs.get(vni)
            if ctx is None:
                ctx = ctxs[vni] = self._context(vni, devs, desired, mirror)
            if not ctx:
                stats.unknown_vni += 1
                continue
            want_t, have_t, bridged, foreign, prefix, vx, suffix = ctx
            want = want_t.get(item)
            have = have_t.get(item)
            v = judge(item, want, have, bridged, foreign)
            if v == OK:
                continue
            if v == CONFLICT:
                stats.conflicts.append(key)
                continue
            if want is None and not allow_delete:
                stats.held += 1
                continue
            try:
                mac = bytes.fromhex(item.replace(":", ""))
                if len(mac) != 6:
                    raise ValueError(f"not a MAC address: {item!r}")
                if want is not None:
                    body = prefix + mac + self.enc.pad_dst(want) + suffix
                    append(op_type(nl.RTM_NEWNEIGH, CREATE, body, ("fdb+", vni, item, want)))
                else:
                    flags = (nl.NTF_SELF if have is not None else 0) | nl.NTF_EXT_LEARNED
                    flags |= nl.NTF_MASTER if item in bridged else 0
                    body = self.enc.prefix(nl.AF_BRIDGE, vx, 0, flags) + mac + b"\0\0" + suffix
                    append(op_type(nl.RTM_DELNEIGH, 0, body, ("fdb-", vni, item, None)))
            except INVALID as exc:
                stats.invalid.append((key, str(exc)))

    def _context(self, vni: int, devs: dict[int, VniDevices], desired, mirror: Mirror) -> tuple:
        dev = devs.get(vni)
        if dev is None or dev.l3:
            return ()
        return (
            desired.fdb.get(vni) or {},
            mirror.fdb.get(vni) or {},
            mirror.brfdb.get(vni) or set(),
            mirror.foreign_macs.get(vni) or set(),
            self.enc.prefix(nl.AF_BRIDGE, dev.vxlan, nl.NUD_REACHABLE, FLAGS),
            dev.vxlan,
            self.suffix(dev),
        )

    # ---- results ------------------------------------------------------------------------------

    def apply_result(self, mirror: Mirror, op: nl.Op) -> bool:
        action, vni, mac, vtep = op.tag
        if action == "fdb+":
            if op.error == 0:
                mirror.set_fdb(vni, mac, vtep)
            return op.error == 0
        if op.error in (0, -ENOENT):  # ENOENT on delete: already gone
            mirror.drop_fdb(vni, mac)
            return True
        return False

    def apply_results(self, mirror: Mirror, ops: list[nl.Op], failed: list[nl.Op]) -> None:
        """`apply_result` for every op, inlined: the bulk case."""
        tables: dict[int, tuple[dict[str, str], set[str]]] = {}
        for op in ops:
            tag = op.tag
            err = op.error
            if err != 0 and err != -ENOENT:
                failed.append(op)
                continue
            vni = tag[1]
            pair = tables.get(vni)
            if pair is None:
                pair = tables[vni] = (
                    mirror.fdb.setdefault(vni, {}),
                    mirror.brfdb.setdefault(vni, set()),
                )
            if tag[0] == "fdb-":
                pair[0].pop(tag[2], None)
                pair[1].discard(tag[2])
            elif err == 0:
                pair[0][tag[2]] = tag[3]
                pair[1].add(tag[2])
            else:
                failed.append(op)
