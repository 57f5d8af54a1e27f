"""Desired state vs mirror -> netlink operations, through the kind managers (managers/).

Pure: input is the desired state, the mirror, the device map and a set of keys; output is a list
of `netlink.Op` whose `tag` = (action, vni, key, value) says which manager records it in the
mirror once the kernel has accepted it. The planner only dispatches: each key to the manager of
its kind, each finished op to the manager of its action; `diff` asks the same managers for the
same comparison.

Ownership rules (DESIGN rule 5): only mirrored (owned) objects are replaced or deleted; a key
held by a hand-made static entry (`foreign_*`) is skipped and counted as a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.managers import BUCKET, KindManager, PlanStats, default_managers
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DesiredState, DeviceMap, DirtyKey

__all__ = ["PlanStats", "Planner", "all_keys", "apply_result", "apply_results", "diff"]


class Planner:
    def __init__(self, managers: Sequence[KindManager] | None = None) -> None:
        self.managers = list(managers) if managers is not None else default_managers()
        self.by_kind = {m.kind: m for m in self.managers}
        self.by_action = {a: m for m in self.managers for a in m.actions}
        self.phase = {a: p for m in self.managers for a, p in m.actions.items()}

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
        keys = keys if isinstance(keys, list) else list(keys)
        kinds = {key[0] for key in keys}
        if len(kinds) == 1:  # the bulk case (100k MACs): no regrouping
            groups = {kinds.pop(): keys}
        else:
            groups = {kind: [] for kind in kinds}
            for key in keys:
                groups[key[0]].append(key)
        for kind, group in groups.items():
            manager = self.by_kind.get(kind)
            if manager is None:
                stats.invalid += [(key, f"unknown kind {kind!r}") for key in group]
                continue
            manager.plan(group, dm.vnis, desired, mirror, allow_delete, ops, stats)
        phase = self.phase
        if len({phase[a] for a in {op.tag[0] for op in ops}}) > 1:
            ops.sort(key=lambda op: phase[op.tag[0]])
        return ops, stats

    def apply_results(self, mirror: Mirror, ops: list[nl.Op]) -> list[nl.Op]:
        """Record finished ops in the mirror; return the ones the kernel refused."""
        failed: list[nl.Op] = []
        by_action = self.by_action
        managers = {by_action[action] for action in {op.tag[0] for op in ops}}
        if len(managers) == 1:  # the bulk case: no regrouping
            managers.pop().apply_results(mirror, ops, failed)
            return failed
        groups: dict[KindManager, list[nl.Op]] = {m: [] for m in managers}
        for op in ops:
            groups[by_action[op.tag[0]]].append(op)
        for manager, group in groups.items():
            manager.apply_results(mirror, group, failed)
        return failed

    def apply_result(self, mirror: Mirror, op: nl.Op) -> bool:
        return self.by_action[op.tag[0]].apply_result(mirror, op)

    def all_keys(self, desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> list[DirtyKey]:
        """Every key either side knows, for a full pass (drift repair, sweeps)."""
        keys: list[DirtyKey] = []
        for vni, dev in dm.vnis.items():
            for m in self.managers:
                if m.applies(dev):
                    kind = m.kind
                    keys += [(kind, vni, item) for item in m.keys(vni, dev, desired, mirror)]
        return keys

    def diff(self, desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> dict:
        """Kernel vs desired per kind: missing (wanted, not there), extra (owned, not wanted),
        different (both, other value), conflicts (held by a hand-made entry). For `evpnctl show
        kernel --diff`: the managers' findings, the comparison their plans act on."""
        out: dict = {bucket: [] for bucket in BUCKET.values()}
        for vni, dev in dm.vnis.items():
            for m in self.managers:
                if not m.applies(dev):
                    continue
                for f in m.diff(vni, dev, desired, mirror):
                    entry: dict = {"kind": f.label, "vni": vni, "key": f.key}
                    if f.want is not None:
                        entry["want"] = _txt(f.want)
                    if f.have is not None:
                        entry["have"] = _txt(f.have)
                    out[BUCKET[f.verdict]].append(entry)
        return out


def _txt(value: object) -> object:
    if isinstance(value, tuple):
        return [str(x) if x is not None else None for x in value]
    return value


# Module-level entry points as before the managers existed (tests, tools).
_DEFAULT = Planner()


def apply_results(mirror: Mirror, ops: list[nl.Op]) -> list[nl.Op]:
    return _DEFAULT.apply_results(mirror, ops)


def apply_result(mirror: Mirror, op: nl.Op) -> bool:
    return _DEFAULT.apply_result(mirror, op)


def all_keys(desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> list[DirtyKey]:
    return _DEFAULT.all_keys(desired, mirror, dm)


def diff(desired: DesiredState, mirror: Mirror, dm: DeviceMap) -> dict:
    return _DEFAULT.diff(desired, mirror, dm)
