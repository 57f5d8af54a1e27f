"""The RIB: per-peer Adj-RIB-In, best path per route key, and route-target import. Pure.

A peer's new path for a key replaces its old one; withdraws match on the key only (peers
withdraw with label 0, DESIGN rule 6). evpnd's own routes live here too, under LOCAL_PEER.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from evpnd.routes.communities import rt_number
from evpnd.routes.evpn import LOCAL_PEER, ImetKey, MacIpKey, Path, RouteKey

_ORIGIN_ORDER = {"igp": 0, "egp": 1, "incomplete": 2}
NO_TARGETS: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())


class VniImports(Protocol):
    """A VNI and its explicit import route targets (None: the auto rule); CoreSettings' VNIs."""

    @property
    def vni(self) -> int: ...

    @property
    def import_rts(self) -> tuple[str, ...] | None: ...


class ImportMap:
    """Which VNIs import a set of route targets.

    A VNI with explicit `import_rts` imports exactly those. Otherwise FRR's auto rule: an RT
    whose number part equals the VNI imports into that VNI (so eBGP leaves with different ASNs
    interoperate). L2VNIs take types 2 and 3, L3VNIs take type 5 and symmetric-IRB type-2
    host routes (RFC 9135).
    """

    def __init__(self, l2vnis: Iterable[VniImports], l3vnis: Iterable[VniImports]) -> None:
        self.exact_l2: dict[str, list[int]] = {}
        self.exact_l3: dict[str, list[int]] = {}
        self.auto_l2: dict[int, list[int]] = {}
        self.auto_l3: dict[int, list[int]] = {}
        items: Iterable[VniImports]
        for items, exact, auto in (
            (l2vnis, self.exact_l2, self.auto_l2),
            (l3vnis, self.exact_l3, self.auto_l3),
        ):
            for item in items:
                if item.import_rts is None:
                    auto.setdefault(item.vni, []).append(item.vni)
                else:
                    for rt in item.import_rts:
                        exact.setdefault(rt, []).append(item.vni)
        self._cache: dict[tuple[str, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def targets(self, rts: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(L2VNIs, L3VNIs) importing any of these route targets, each sorted."""
        hit = self._cache.get(rts)
        if hit is not None:
            return hit
        l2: set[int] = set()
        l3: set[int] = set()
        for rt in rts:
            l2.update(self.exact_l2.get(rt, ()))
            l3.update(self.exact_l3.get(rt, ()))
            try:
                number = rt_number(rt)
            except ValueError:
                continue
            l2.update(self.auto_l2.get(number, ()))
            l3.update(self.auto_l3.get(number, ()))
        hit = (tuple(sorted(l2)), tuple(sorted(l3)))
        if len(self._cache) < 100_000:
            self._cache[rts] = hit
        return hit


def path_targets(path: Path, imports: ImportMap) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(L2VNIs, L3VNIs) a best path feeds. Local paths feed their own VNIs, not by RT."""
    key = path.key
    if path.peer == LOCAL_PEER:
        if type(key) is MacIpKey:
            return (path.vni,), ((path.l3vni,) if key.ip is not None and path.l3vni else ())
        if type(key) is ImetKey:
            return (path.vni,), ()
        return (), (path.vni,)
    l2, l3 = imports.targets(path.attrs.route_targets)
    if type(key) is MacIpKey:
        # Only a type-2 with an IP and a label 2 (L3VNI) is a symmetric-IRB host route.
        return l2, (l3 if key.ip is not None and path.l3vni else ())
    if type(key) is ImetKey:
        return l2, ()
    return (), l3


def bgp_order(path: Path, stale: bool) -> tuple[bool, bool, int, int, int, int, str]:
    """Smaller is better: RFC 4271 section 9.1.2.2, reduced to what EVPN peers differ in.

    A stale path (graceful restart, RFC 4724) loses to any fresh one.
    """
    attrs = path.attrs
    return (
        stale,
        path.peer != LOCAL_PEER,
        -(attrs.local_pref if attrs.local_pref is not None else 100),
        len(attrs.as_path),
        _ORIGIN_ORDER.get(attrs.origin, 3),
        attrs.med or 0,
        path.peer,
    )


def prefer(new: Path, old: Path) -> bool:
    """Whether `new` beats `old`, both fresh (bgp_order with stale False), without building the
    tuples when the attributes rank the same (the other route reflector's copy of a route: it
    decides on the peer). The hot case of a second route reflector's table (issue 14)."""
    a, b = new.attrs, old.attrs
    if a is b or (
        a.local_pref == b.local_pref
        and a.med == b.med
        and a.origin == b.origin
        and len(a.as_path) == len(b.as_path)
    ):
        new_local, old_local = new.peer == LOCAL_PEER, old.peer == LOCAL_PEER
        if new_local != old_local:
            return new_local
        return new.peer < old.peer
    return bgp_order(new, False) < bgp_order(old, False)


def select_best(candidates: dict[str, Path], stale: dict[str, set[RouteKey]]) -> Path:
    """The best of several peers' paths for one key (deterministic, order-independent)."""
    return min(candidates.values(), key=lambda p: bgp_order(p, p.key in stale.get(p.peer, ())))


@dataclass(slots=True)
class PeerStats:
    state: str = "idle"
    since: float | None = None  # when it became Established
    received: int = 0  # NLRIs announced
    withdrawn: int = 0  # NLRIs withdrawn
    accepted: int = 0
    rejected: int = 0
    reason: str = ""
    # paths rejected per reason (the journal's names without `rejected_`)
    rejects: dict[str, int] = field(default_factory=dict)
    limit_state: str = ""  # max_routes: '', 'warning' or 'max-routes' (held down)
    limit_until: float | None = None  # held down until (None: until cleared)


class Rib:
    """Adj-RIB-In per peer, best path per key, graceful-restart staleness.

    Most keys come from one peer only, so the per-key candidate set is kept only for keys
    that several peers sent (`multi`); `best` holds the best path of every key.
    """

    def __init__(self) -> None:
        self.adj_in: dict[str, dict[RouteKey, Path]] = {}
        self.best: dict[RouteKey, Path] = {}
        self.multi: dict[RouteKey, dict[str, Path]] = {}
        self.stale: dict[str, set[RouteKey]] = {}
        self.stale_deadline: dict[str, float] = {}
        self.peers: dict[str, PeerStats] = {}

    def candidates(self, key: RouteKey) -> dict[str, Path]:
        """Every peer's path for a key."""
        multi = self.multi.get(key)
        if multi is not None:
            return multi
        best = self.best.get(key)
        return {} if best is None else {best.peer: best}

    def put(self, path: Path) -> tuple[Path | None, Path | None]:
        """Store a peer's path (replacing its previous one for the key): (old best, new best)."""
        key, peer = path.key, path.peer
        table = self.adj_in.get(peer)
        if table is None:
            table = self.adj_in[peer] = {}
        table[key] = path
        stale = self.stale.get(peer)
        if stale:
            stale.discard(key)
        old = self.best.get(key)
        if old is None:
            self.best[key] = path
            return None, path
        multi = self.multi.get(key)
        if multi is None:
            if old.peer == peer:
                self.best[key] = path
                return old, path
            multi = self.multi[key] = {old.peer: old}
            if key not in self.stale.get(old.peer, ()):
                # the second peer's path (two route reflectors), both fresh: one comparison
                multi[peer] = path
                new = self.best[key] = path if prefer(path, old) else old
                return old, new
        multi[peer] = path
        new = self.best[key] = select_best(multi, self.stale)
        return old, new

    def remove(self, peer: str, key: RouteKey) -> tuple[Path | None, Path | None]:
        """Withdraw a peer's path for a key: (old best, new best); (None, None) if unknown."""
        table = self.adj_in.get(peer)
        if table is None or table.pop(key, None) is None:
            return None, None
        stale = self.stale.get(peer)
        if stale:
            stale.discard(key)
        old = self.best[key]
        multi = self.multi.get(key)
        if multi is None:
            del self.best[key]
            return old, None
        del multi[peer]
        if len(multi) == 1:
            del self.multi[key]
            (new,) = multi.values()
        elif old.peer == peer:
            new = select_best(multi, self.stale)
        else:
            new = old
        self.best[key] = new
        return old, new

    def reselect(self, key: RouteKey) -> tuple[Path | None, Path | None]:
        """Re-run best-path selection for a key (after staleness changed)."""
        old = self.best.get(key)
        multi = self.multi.get(key)
        if multi is None:
            return old, old
        new = self.best[key] = select_best(multi, self.stale)
        return old, new

    def mark_stale(self, peer: str, deadline: float) -> list[RouteKey]:
        """Graceful restart (RFC 4724 section 4.2): keep the peer's paths, marked stale."""
        keys = list(self.adj_in.get(peer, ()))
        self.stale.setdefault(peer, set()).update(keys)
        self.stale_deadline[peer] = deadline
        return keys

    def stale_keys(self, peer: str) -> list[RouteKey]:
        return list(self.stale.get(peer, ()))

    def end_stale(self, peer: str) -> None:
        self.stale.pop(peer, None)
        self.stale_deadline.pop(peer, None)

    def is_stale(self, path: Path) -> bool:
        return path.key in self.stale.get(path.peer, ())

    def paths(self) -> Iterator[Path]:
        for table in self.adj_in.values():
            yield from table.values()

    def peer_keys(self, peer: str) -> list[RouteKey]:
        return list(self.adj_in.get(peer, ()))

    def get(self, peer: str, key: RouteKey) -> Path | None:
        table = self.adj_in.get(peer)
        return None if table is None else table.get(key)
