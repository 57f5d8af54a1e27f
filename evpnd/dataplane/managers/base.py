"""What every kind manager has: the verdicts of its one comparison, the findings that carry
them, and the generic plan/diff/apply loops built on that comparison.

A manager owns one kind of kernel object (see the package docstring). Its `findings()` is THE
comparison of desired against mirror for one key; `plan` turns findings into operations and
`diff` turns the same findings into `show kernel --diff` entries, so the two cannot disagree.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DesiredState, DirtyKey, VniDevices

# Verdicts of a comparison. MISSING and DIFFERENT are written, EXTRA deleted (once the sweep
# hold time allows), CONFLICT left alone (a hand-made entry holds the key) and counted.
OK, MISSING, DIFFERENT, EXTRA, CONFLICT = 0, 1, 2, 3, 4
BUCKET = {MISSING: "missing", DIFFERENT: "different", EXTRA: "extra", CONFLICT: "conflicts"}

ENOENT, ESRCH, EEXIST = errno.ENOENT, errno.ESRCH, errno.EEXIST
# ops' failures a planner does not raise on: a bad value from upstream is skipped and counted
INVALID = (ValueError, OSError, TypeError, AttributeError)


def judge(want: object, have: object, foreign: bool) -> int:
    """The comparison of one kernel object: wanted value vs the owned one in the mirror
    (None: absent) and whether a hand-made entry holds the key."""
    if want is not None:
        if have == want:
            return OK
        if have is None:
            return CONFLICT if foreign else MISSING
        return DIFFERENT
    return OK if have is None else EXTRA


class Finding(NamedTuple):
    """One kernel object that is not as wanted."""

    verdict: int
    label: str  # the object's kind as `show kernel --diff` names it (fdb, bridge_fdb, rmac...)
    vni: int
    key: str
    want: object = None
    have: object = None


@dataclass
class PlanStats:
    conflicts: list[DirtyKey] = field(default_factory=list)  # held by a hand-made entry
    held: int = 0  # owned but unwanted; kept until the sweep hold time has passed
    invalid: list[tuple[DirtyKey, str]] = field(default_factory=list)
    unknown_vni: int = 0


class KindManager:
    """Base of the managers: the generic loops over `findings`. Subclasses set `kind` (the
    desired-state kind of their dirty keys), `actions` (the op tags they produce and apply,
    with their phase) and implement `applies`, `keys`, `findings`, `op`, `apply_result`."""

    kind: str = ""
    # op tag action -> phase: withdraw routes first and add them last, so that a route never
    # points at a missing neighbour (0: route-, 1: other deletes, 2: other adds, 3: route+)
    actions: dict[str, int] = {}

    def applies(self, dev: VniDevices) -> bool:
        """Whether this VNI's devices hold objects of this kind."""
        raise NotImplementedError

    def keys(self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror) -> Iterable:
        """Lookup: every item either side knows for this VNI (a full pass, the diff)."""
        raise NotImplementedError

    def findings(
        self, vni: int, item: str, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        """The comparison: what is not as wanted for this key."""
        raise NotImplementedError

    def op(self, f: Finding, dev: VniDevices, mirror: Mirror) -> nl.Op:
        """The netlink operation that makes a MISSING/DIFFERENT/EXTRA finding right."""
        raise NotImplementedError

    def apply_result(self, mirror: Mirror, op: nl.Op) -> bool:
        """Record a finished op in the mirror. True if the kernel did what was asked."""
        raise NotImplementedError

    # ---- generic loops ------------------------------------------------------------------------

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
        for key in keys:
            _kind, vni, item = key
            dev = devs.get(vni)
            if dev is None or not self.applies(dev):
                stats.unknown_vni += 1
                continue
            try:
                for f in self.findings(vni, item, dev, desired, mirror):
                    if f.verdict == CONFLICT:
                        stats.conflicts.append((f.label, vni, f.key))
                    elif f.verdict == EXTRA and not allow_delete:
                        stats.held += 1
                    else:
                        ops.append(self.op(f, dev, mirror))
            except INVALID as exc:
                stats.invalid.append((key, str(exc)))  # bad value from upstream: skip, count

    def apply_results(self, mirror: Mirror, ops: list[nl.Op], failed: list[nl.Op]) -> None:
        for op in ops:
            if not self.apply_result(mirror, op):
                failed.append(op)

    def diff(
        self, vni: int, dev: VniDevices, desired: DesiredState, mirror: Mirror
    ) -> Iterator[Finding]:
        for item in sorted(self.keys(vni, dev, desired, mirror)):
            yield from self.findings(vni, item, dev, desired, mirror)


def gone(action: str, err: int) -> bool:
    """A delete that found nothing to delete did what was asked."""
    return action.endswith("-") and err in (0, -ENOENT)
