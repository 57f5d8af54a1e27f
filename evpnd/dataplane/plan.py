"""Diff desired objects against the mirror and turn the differences into netlink operations.

Pure: input is the desired state, the mirror, the device map and a set of keys; output is a list
of `netlink.Op` whose `tag` says how to update the mirror once the kernel has accepted it.

Kernel objects per desired object (symmetric IRB as FRR programs it):
  fdb    (vni, MAC)    -> one RTM_NEWNEIGH with NTF_SELF|NTF_MASTER|NTF_EXT_LEARNED on the VXLAN
                          device: the kernel adds both the vxlan entry `MAC dst VTEP self
                          extern_learn` and the bridge entry `MAC master BRIDGE extern_learn`.
                          The bridge entry makes known unicast go to the VXLAN port only (no
                          flooding to access ports) and is what ARP/ND suppression looks up.
  flood  (vni, VTEP)   -> `00:00:00:00:00:00 dst VTEP self permanent` (appended; RFC 8365 5.1.3)
  neigh  (vni, IP)     -> neighbour on the L2 bridge: lladdr MAC, NUD_NOARP, extern_learn,
                          protocol RTPROT_EVPND (answers ARP/ND locally; RFC 9161)
  route  (l3vni, pfx)  -> route in the L3VNI's table via VTEP onlink dev <L3 bridge>
  rmac   (l3vni, VTEP) -> FDB `RMAC dst VTEP` on the L3 VXLAN device + neighbour `VTEP lladdr
                          RMAC` on the L3 bridge, so routed packets get the remote router MAC.
Ownership rules: only mirrored (owned) objects are replaced or deleted; a key held by a
hand-made static entry (`foreign_*`) is skipped and counted as a conflict.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass, field

from evpnd.core.desired import FDB, FLOOD, NEIGH, RMAC, ROUTE, DesiredState, DirtyKey
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.devices import DeviceMap
from evpnd.dataplane.mirror import Mirror

_CREATE = nl.NLM_F_CREATE | nl.NLM_F_REPLACE
_FDB_FLAGS = nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED

# Phases: withdraw routes first, add them last, so a route never points at a missing neighbour.
_PHASE = {"route-": 0, "fdb-": 1, "flood-": 1, "neigh-": 1, "fdb+": 2, "flood+": 2}
_PHASE |= {"neigh+": 2, "route+": 3}


@dataclass
class PlanStats:
    conflicts: list[DirtyKey] = field(default_factory=list)  # held by a hand-made entry
    held: int = 0  # owned but unwanted; kept until the sweep hold time has passed
    invalid: list[tuple[DirtyKey, str]] = field(default_factory=list)
    unknown_vni: int = 0


class Planner:
    def __init__(self) -> None:
        self.enc = nl.FdbEncoder()

    def plan(
        self,
        keys: Iterable[DirtyKey],
        desired: DesiredState,
        mirror: Mirror,
        dm: DeviceMap,
        allow_delete: bool = True,
    ) -> tuple[list[nl.Op], PlanStats]:
        ops: list[nl.Op] = []
        stats = PlanStats()
        phases: set[str] = set()
        fdb_ctx: dict[int, tuple] = {}
        op_type = nl.Op
        for key in keys:
            kind, vni, item = key
            if kind == FDB:
                # The bulk case (100k MACs after a session comes up), kept tight.
                ctx = fdb_ctx.get(vni)
                if ctx is None:
                    ctx = fdb_ctx[vni] = self._fdb_context(vni, desired, mirror, dm)
                if not ctx:
                    stats.unknown_vni += 1
                    continue
                want_t, have_t, bridged, foreign, prefix, vx = ctx
                want = want_t.get(item)
                have = have_t.get(item)
                in_bridge = item in bridged
                if want is not None:
                    if have == want and in_bridge:
                        continue
                    if have is None and item in foreign:
                        stats.conflicts.append(key)
                        continue
                elif have is None and not in_bridge:
                    continue
                elif not allow_delete:
                    stats.held += 1
                    continue
                try:
                    mac = bytes.fromhex(item.replace(":", ""))
                    if len(mac) != 6:
                        raise ValueError(f"not a MAC address: {item!r}")
                    if want is not None:
                        body = prefix + mac + self.enc.pad_dst(want)
                        op = op_type(nl.RTM_NEWNEIGH, _CREATE, body, ("fdb+", vni, item, want))
                    else:
                        # One message can delete both halves; the kernel stops at the first
                        # part that is missing, so name only the parts the mirror has.
                        flags = (nl.NTF_SELF if have is not None else 0) | nl.NTF_EXT_LEARNED
                        flags |= nl.NTF_MASTER if in_bridge else 0
                        body = self.enc.prefix(nl.AF_BRIDGE, vx, 0, flags) + mac + b"\0\0"
                        op = op_type(nl.RTM_DELNEIGH, 0, body, ("fdb-", vni, item, None))
                except (ValueError, OSError, TypeError, AttributeError) as exc:
                    stats.invalid.append((key, str(exc)))
                    continue
                ops.append(op)
                phases.add(op.tag[0])
                continue
            dev = dm.vnis.get(vni)
            if dev is None:
                stats.unknown_vni += 1
                continue
            before = len(ops)
            try:
                if kind == FLOOD:
                    self._flood(ops, stats, vni, item, desired, mirror, dev.vxlan, allow_delete)
                elif kind == NEIGH:
                    self._neigh(ops, stats, vni, item, desired, mirror, dev.bridge, allow_delete)
                elif kind == ROUTE and dev.table is not None:
                    self._route(ops, stats, vni, item, desired, mirror, dev, allow_delete)
                elif kind == RMAC and dev.l3:
                    self._rmac(ops, stats, vni, item, desired, mirror, dev, allow_delete)
            except (ValueError, OSError, TypeError, AttributeError) as exc:
                stats.invalid.append((key, str(exc)))  # bad value from upstream: skip, count
            phases.update(op.tag[0] for op in ops[before:])
        if len({_PHASE[p] for p in phases}) > 1:
            ops.sort(key=lambda op: _PHASE[op.tag[0]])
        return ops, stats

    def _fdb_context(self, vni: int, desired: DesiredState, mirror: Mirror, dm: DeviceMap):
        dev = dm.vnis.get(vni)
        if dev is None or dev.l3:
            return ()
        return (
            desired.fdb.get(vni) or {},
            mirror.fdb.get(vni) or {},
            mirror.brfdb.get(vni) or set(),
            mirror.foreign_macs.get(vni) or set(),
            self.enc.prefix(nl.AF_BRIDGE, dev.vxlan, nl.NUD_REACHABLE, _FDB_FLAGS),
            dev.vxlan,
        )

    # ---- per kind ---------------------------------------------------------------------------

    def _fdb_delete(self, ops, vni, mac, vx, vxlan: bool, bridge: bool) -> None:
        # One message can delete both; the kernel stops at the first part that is missing, so
        # name only the parts the mirror has.
        flags = (nl.NTF_SELF if vxlan else 0) | (nl.NTF_MASTER if bridge else 0)
        body = self.enc.fdb(vx, mac, None, flags | nl.NTF_EXT_LEARNED, 0)
        ops.append(nl.Op(nl.RTM_DELNEIGH, 0, body, ("fdb-", vni, mac, None)))

    def _flood(self, ops, stats, vni, vtep, desired, mirror, vx, allow_delete) -> None:
        want = vtep in desired.flood.get(vni, ())
        have = vtep in mirror.flood.get(vni, ())
        if want == have:
            return
        if want:
            body = self.enc.fdb(vx, nl.ZERO_MAC, vtep, nl.NTF_SELF, nl.NUD_PERMANENT)
            flags = nl.NLM_F_CREATE | nl.NLM_F_APPEND
            ops.append(nl.Op(nl.RTM_NEWNEIGH, flags, body, ("flood+", vni, vtep, True)))
        elif not allow_delete:
            stats.held += 1
        else:
            body = self.enc.fdb(vx, nl.ZERO_MAC, vtep, nl.NTF_SELF, 0)
            ops.append(nl.Op(nl.RTM_DELNEIGH, 0, body, ("flood-", vni, vtep, None)))

    def _neigh(self, ops, stats, vni, ip, desired, mirror, bridge, allow_delete) -> None:
        self._neigh_to(ops, stats, vni, ip, desired.neigh.get(vni, {}).get(ip), mirror, bridge,
                       allow_delete)  # fmt: skip

    def _neigh_to(self, ops, stats, vni, ip, want, mirror, bridge, allow_delete) -> None:
        have = mirror.neigh.get(vni, {}).get(ip)
        if want is not None:
            if have == want:
                return
            if have is None and ip in mirror.foreign_ips.get(vni, ()):
                stats.conflicts.append((NEIGH, vni, ip))
                return
            body = nl.neigh_body(bridge, ip, want)
            ops.append(nl.Op(nl.RTM_NEWNEIGH, _CREATE, body, ("neigh+", vni, ip, want)))
        elif have is not None:
            if not allow_delete:
                stats.held += 1
                return
            body = nl.neigh_body(bridge, ip, None)
            ops.append(nl.Op(nl.RTM_DELNEIGH, 0, body, ("neigh-", vni, ip, None)))

    def _route(self, ops, stats, vni, prefix, desired, mirror, dev, allow_delete) -> None:
        nh = desired.routes.get(vni, {}).get(prefix)
        have = mirror.routes.get(vni, {}).get(prefix)
        if nh is not None:
            want = (nh.vtep, dev.bridge)
            if have == want:
                return
            if have is None and prefix in mirror.foreign_routes.get(vni, ()):
                stats.conflicts.append((ROUTE, vni, prefix))
                return
            body = nl.route_body(dev.table, prefix, nh.vtep, dev.bridge)
            ops.append(nl.Op(nl.RTM_NEWROUTE, _CREATE, body, ("route+", vni, prefix, want)))
        elif have is not None:
            if not allow_delete:
                stats.held += 1
                return
            body = nl.route_body(dev.table, prefix, None, None)
            ops.append(nl.Op(nl.RTM_DELROUTE, 0, body, ("route-", vni, prefix, None)))

    def _rmac(self, ops, stats, vni, vtep, desired, mirror, dev, allow_delete) -> None:
        rmacs = desired.rmacs.get(vni, {})
        want = rmacs.get(vtep)
        if vtep:
            self._neigh_to(ops, stats, vni, vtep, want, mirror, dev.bridge, allow_delete)
            mapped = nl.v4_mapped(vtep)
            if mapped:  # next hop of the IPv6 routes via this VTEP
                self._neigh_to(ops, stats, vni, mapped, want, mirror, dev.bridge, allow_delete)
        fdb = mirror.fdb.get(vni, {})
        bridged = mirror.brfdb.get(vni, set())
        if want is not None and (fdb.get(want) != vtep or want not in bridged):
            body = self.enc.fdb(dev.vxlan, want, vtep, _FDB_FLAGS, nl.NUD_REACHABLE)
            ops.append(nl.Op(nl.RTM_NEWNEIGH, _CREATE, body, ("fdb+", vni, want, vtep)))
        # Router MACs that pointed at this VTEP (or at none) and are no longer anyone's.
        wanted_macs = set(rmacs.values())
        for mac in [m for m, v in fdb.items() if (v == vtep or not vtep) and m != want]:
            if mac not in wanted_macs:
                if not allow_delete:
                    stats.held += 1
                    continue
                self._fdb_delete(ops, vni, mac, dev.vxlan, True, mac in bridged)
        if not vtep:
            for mac in bridged - wanted_macs - set(fdb):
                self._fdb_delete(ops, vni, mac, dev.vxlan, False, True)


_BULK = frozenset({"fdb+", "fdb-"})


def apply_results(mirror: Mirror, ops: list[nl.Op]) -> list[nl.Op]:
    """Record finished ops in the mirror; return the ones the kernel refused."""
    failed: list[nl.Op] = []
    tables: dict[int, tuple[dict[str, str], set[str]]] = {}
    for op in ops:
        tag = op.tag
        action = tag[0]
        if action in _BULK and op.error in (0, -errno.ENOENT):  # the bulk case, inlined
            vni = tag[1]
            pair = tables.get(vni)
            if pair is None:
                pair = tables[vni] = (
                    mirror.fdb.setdefault(vni, {}),
                    mirror.brfdb.setdefault(vni, set()),
                )
            if action == "fdb-":
                pair[0].pop(tag[2], None)
                pair[1].discard(tag[2])
            elif op.error == 0:
                pair[0][tag[2]] = tag[3]
                pair[1].add(tag[2])
            else:
                failed.append(op)
        elif not apply_result(mirror, op):
            failed.append(op)
    return failed


def apply_result(mirror: Mirror, op: nl.Op) -> bool:
    """Record a finished op in the mirror. True if the kernel did what was asked."""
    action, vni, key, value = op.tag
    err = op.error
    gone = err == 0 or err == -2  # ENOENT on delete: already gone
    if action == "fdb+":
        if err == 0:
            mirror.set_fdb(vni, key, value)
    elif action == "fdb-":
        if gone:
            mirror.drop_fdb(vni, key)
    elif action == "flood+":
        if err == 0:
            mirror.flood.setdefault(vni, set()).add(key)
    elif action == "flood-":
        if gone:
            mirror.flood.get(vni, set()).discard(key)
    elif action == "neigh+":
        if err == 0:
            mirror.neigh.setdefault(vni, {})[key] = value
    elif action == "neigh-":
        if gone:
            mirror.neigh.get(vni, {}).pop(key, None)
    elif action == "route+":
        if err == 0:
            mirror.routes.setdefault(vni, {})[key] = value
    elif action == "route-" and (gone or err == -3):  # ESRCH: no such route
        mirror.routes.get(vni, {}).pop(key, None)
        return True
    return err == 0 or (action.endswith("-") and gone)


def all_keys(desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> list[DirtyKey]:
    """Every key either side knows, for a full pass (drift repair, sweeps)."""
    keys: list[DirtyKey] = []
    for vni, dev in dm.vnis.items():
        if dev.l3:
            prefixes = desired.routes.get(vni, {}).keys() | mirror.routes.get(vni, {}).keys()
            keys += [(ROUTE, vni, p) for p in prefixes]
            vteps = desired.rmacs.get(vni, {}).keys() | set(
                map(nl.unmap, mirror.neigh.get(vni, {}).keys())
            )
            vteps |= set(mirror.fdb.get(vni, {}).values())
            keys += [(RMAC, vni, v) for v in vteps]
            keys.append((RMAC, vni, ""))  # orphans: bridge entries without a vxlan entry
            continue
        macs = desired.fdb.get(vni, {}).keys() | mirror.fdb.get(vni, {}).keys()
        macs |= mirror.brfdb.get(vni, set())
        keys += [(FDB, vni, m) for m in macs]
        keys += [
            (FLOOD, vni, v) for v in desired.flood.get(vni, set()) | mirror.flood.get(vni, set())
        ]
        ips = desired.neigh.get(vni, {}).keys() | mirror.neigh.get(vni, {}).keys()
        keys += [(NEIGH, vni, ip) for ip in ips]
    return keys


def diff(desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> dict:
    """Kernel vs desired per kind: missing (wanted, not there), extra (owned, not wanted),
    different (both, other value). For `evpnctl show kernel --diff`."""
    out: dict = {"missing": [], "extra": [], "different": [], "conflicts": []}

    def compare(kind: str, vni: int, want: dict, have: dict, foreign: set) -> None:
        for k, v in want.items():
            if k not in have:
                where = "conflicts" if k in foreign else "missing"
                out[where].append({"kind": kind, "vni": vni, "key": k, "want": _txt(v)})
            elif have[k] != v:
                out["different"].append(
                    {"kind": kind, "vni": vni, "key": k, "want": _txt(v), "have": _txt(have[k])}
                )
        for k in have.keys() - want.keys():
            out["extra"].append({"kind": kind, "vni": vni, "key": k, "have": _txt(have[k])})

    for vni, dev in dm.vnis.items():
        macs = mirror.foreign_macs.get(vni, set())
        if dev.l3:
            want_routes = {
                p: (nh.vtep, dev.bridge) for p, nh in desired.routes.get(vni, {}).items()
            }
            have_routes = mirror.routes.get(vni, {})
            compare(ROUTE, vni, want_routes, have_routes, mirror.foreign_routes.get(vni, set()))
            rmacs = desired.rmacs.get(vni, {})
            want_neigh = dict(rmacs)
            want_neigh |= {nl.v4_mapped(v): m for v, m in rmacs.items() if nl.v4_mapped(v)}
            ips = mirror.foreign_ips.get(vni, set())
            compare(RMAC, vni, want_neigh, mirror.neigh.get(vni, {}), ips)
            want_fdb = {m: v for v, m in rmacs.items()}
            compare("rmac_fdb", vni, want_fdb, mirror.fdb.get(vni, {}), macs)
            continue
        want_fdb = desired.fdb.get(vni, {})
        have_fdb = mirror.fdb.get(vni, {})
        compare(FDB, vni, want_fdb, have_fdb, macs)
        bridged = mirror.brfdb.get(vni, set())
        for mac in want_fdb.keys() & have_fdb.keys():
            if mac not in bridged:
                out["missing"].append({"kind": "bridge_fdb", "vni": vni, "key": mac})
        for mac in bridged - want_fdb.keys():
            out["extra"].append({"kind": "bridge_fdb", "vni": vni, "key": mac})
        flood_want = {v: True for v in desired.flood.get(vni, set())}
        compare(FLOOD, vni, flood_want, {v: True for v in mirror.flood.get(vni, set())}, set())
        ips = mirror.foreign_ips.get(vni, set())
        compare(NEIGH, vni, desired.neigh.get(vni, {}), mirror.neigh.get(vni, {}), ips)
    return out


def _txt(value: object) -> object:
    if isinstance(value, tuple):
        return [str(x) if x is not None else None for x in value]
    return value
