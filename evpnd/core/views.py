"""Typed read views of the core, for the control API and the metrics.

CoreViews only reads (DESIGN: the API never mutates the core); every row is a frozen
dataclass, so callers never read the RIB, mobility or desired-state internals and never parse
text back into keys. The flags a path shows (best, stale, frozen, sticky, local) are decided
in one place, CoreViews.flags(), for every command.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from evpnd.core.desired import DesiredState, RouteNextHop
from evpnd.core.indexes import BestPathIndexes
from evpnd.core.journal import Journal
from evpnd.core.local_macs import remote_best
from evpnd.core.mobility import Mobility, rank, why_wins
from evpnd.core.origination import Origination
from evpnd.core.path_groups import group_paths
from evpnd.core.rib import Rib, path_targets
from evpnd.routes.evpn import LOCAL_PEER, MacIpKey, Path

FLAG_NAMES = ("best", "stale", "frozen", "sticky", "local")
ROUTE_TYPES = (2, 3, 5)


@dataclass(frozen=True, slots=True)
class PathFlags:
    best: bool
    stale: bool
    frozen: bool  # a type-2 path whose MAC is frozen (duplicate) where the path is imported
    sticky: bool
    local: bool

    def names(self) -> list[str]:
        """The set flags by name, in FLAG_NAMES order (what `show routes` prints)."""
        return [name for name in FLAG_NAMES if getattr(self, name)]


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One path of one peer (local ones too), for `show routes`."""

    path: Path
    flags: PathFlags
    l2vnis: tuple[int, ...]  # where the best path is imported (empty for other paths)
    l3vnis: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PeerRow:
    peer: str
    state: str
    since: float | None  # when it became Established, None when not up
    reason: str
    received: int
    withdrawn: int
    accepted: int
    rejected: int
    paths: int  # held now
    stale: int  # of which stale
    rejects: dict[str, int] = field(default_factory=dict)  # paths rejected, per reason
    limit_state: str = ""  # max_routes: '', 'warning' or 'max-routes' (held down)
    limit_until: float | None = None  # held down until (None: until cleared)


@dataclass(frozen=True, slots=True)
class MacRow:
    """FRR's `show evpn mac vni all`: one (L2VNI, MAC) known locally or remotely."""

    vni: int
    mac: str
    type: str  # "local" or "remote": who wins
    vtep: str | None  # the remote winner's VTEP (None when local)
    local_seq: int
    remote_seq: int  # highest seen
    sticky: bool
    duplicate: bool  # flagged by duplicate detection
    frozen: bool  # its kernel entries are frozen
    moves: int
    ips: tuple[str, ...]
    paths: int
    fdb: str | None  # the desired FDB value


@dataclass(frozen=True, slots=True)
class LocalMacView:
    present: bool
    ips: tuple[str, ...]
    seq: int
    sticky: bool
    advertised: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path
    flags: PathFlags


@dataclass(frozen=True, slots=True)
class ExplainVni:
    vni: int
    kernel: str | None  # the desired FDB (VTEP) or neighbour (MAC) value
    candidates: tuple[Candidate, ...]  # winner first
    winner: Candidate | None
    reason: str | None
    why_not: str | None = None
    note: str | None = None
    duplicate: bool = False
    local: LocalMacView | None = None


@dataclass(frozen=True, slots=True)
class HostRouteView:
    vni: int
    prefix: str
    kernel: RouteNextHop | None


@dataclass(frozen=True, slots=True)
class Explanation:
    query: str
    kind: str  # "mac" or "ip"
    vnis: tuple[ExplainVni, ...]
    routes: tuple[HostRouteView, ...] = ()  # IP: its host routes in L3VNI tables
    why_not: str | None = None


@dataclass(frozen=True, slots=True)
class VniState:
    """What `show vni` counts for one VNI."""

    local_macs: int  # learned on local ports
    remote_macs: int  # desired FDB entries
    flood_vteps: tuple[str, ...]
    prefixes: int  # desired routes (L3VNI)
    rmac_vteps: tuple[str, ...]  # VTEPs with a router MAC (L3VNI)


@dataclass(frozen=True, slots=True)
class RouteCounts:
    """Paths held, per (peer, route type); local paths per type; best paths per type (every
    peer with a table and every route type is present, 0 when none)."""

    held: dict[tuple[str, int], int] = field(default_factory=dict)
    advertised: dict[int, int] = field(default_factory=dict)
    best: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CoreStats:
    """Counters (rejections by reason, core events), local and duplicate MACs, desired
    objects per kind: what the metrics read."""

    counters: dict[str, int]
    local_macs: int
    duplicate_macs: int
    desired: dict[str, int]


class CoreViews:
    def __init__(
        self,
        rib: Rib,
        indexes: BestPathIndexes,
        mobility: Mobility,
        origination: Origination,
        journal: Journal,
    ) -> None:
        self.rib = rib
        self.indexes = indexes
        self.mobility = mobility
        self.origination = origination
        self.journal = journal

    @property
    def desired(self) -> DesiredState:
        return self.indexes.desired

    # ------------------------------------------------ the one rule for flags

    def flags(self, path: Path) -> PathFlags:
        best = self.rib.best.get(path.key) is path
        key = path.key
        frozen = False
        if isinstance(key, MacIpKey) and self.mobility.frozen_fdb:
            l2 = path_targets(path, self.indexes.view.imports)[0] or (path.vni,)
            frozen = any(self.mobility.is_frozen(v, key.mac) for v in l2)
        return PathFlags(
            best=best,
            stale=self.rib.is_stale(path),
            frozen=frozen,
            sticky=path.attrs.sticky,
            local=path.peer == LOCAL_PEER,
        )

    # ------------------------------------------------ show routes, peers, status

    def routes(self) -> Iterator[RouteRow]:
        """Every path of every peer (local ones too) with its flags."""
        imports = self.indexes.view.imports
        for table in self.rib.adj_in.values():
            for path in table.values():
                flags = self.flags(path)
                l2, l3 = path_targets(path, imports) if flags.best else ((), ())
                yield RouteRow(path, flags, l2, l3)

    def path_count(self) -> int:
        return sum(len(t) for t in self.rib.adj_in.values())

    def advertised(self) -> list[Path]:
        return self.origination.advertised()

    def peers(self) -> dict[str, PeerRow]:
        out = {}
        rib = self.rib
        for peer, stats in rib.peers.items():
            out[peer] = PeerRow(
                peer=peer,
                state=stats.state,
                since=stats.since,
                reason=stats.reason,
                received=stats.received,
                withdrawn=stats.withdrawn,
                accepted=stats.accepted,
                rejected=stats.rejected,
                paths=len(rib.adj_in.get(peer, ())),
                stale=len(rib.stale.get(peer, ())),
                rejects=dict(stats.rejects),
                limit_state=stats.limit_state,
                limit_until=stats.limit_until,
            )
        return out

    def route_counts(self) -> RouteCounts:
        counts = RouteCounts()
        for peer, table in self.rib.adj_in.items():
            if peer != LOCAL_PEER:
                for rtype in ROUTE_TYPES:
                    counts.held[(peer, rtype)] = 0
            for key in table:
                if peer == LOCAL_PEER:
                    counts.advertised[key.route_type] = counts.advertised.get(key.route_type, 0) + 1
                else:
                    hk = (peer, key.route_type)
                    counts.held[hk] = counts.held.get(hk, 0) + 1
        for rtype in ROUTE_TYPES:
            counts.advertised.setdefault(rtype, 0)
            counts.best.setdefault(rtype, 0)
        for key in self.rib.best:
            counts.best[key.route_type] = counts.best.get(key.route_type, 0) + 1
        return counts

    def stats(self) -> CoreStats:
        mobility = self.mobility
        return CoreStats(
            counters=dict(self.journal.counters),
            local_macs=sum(1 for st in mobility.local.values() if st.present),
            duplicate_macs=len(mobility.duplicates()),
            desired=self.desired.counts(),
        )

    # ------------------------------------------------ show vni, kernel routes

    def local_mac_counts(self) -> dict[int, int]:
        """Present local MACs per VNI in one pass over them: `show vni` for every VNI asking
        vni_state one VNI at a time scanned every local MAC per VNI (VNIs x MACs, issue 17)."""
        counts: dict[int, int] = {}
        for (v, _), st in self.mobility.local.items():
            if st.present:
                counts[v] = counts.get(v, 0) + 1
        return counts

    def vni_state(self, vni: int, local_counts: dict[int, int] | None = None) -> VniState:
        desired = self.desired
        if local_counts is not None:
            local = local_counts.get(vni, 0)
        else:
            local = sum(1 for (v, _), st in self.mobility.local.items() if v == vni and st.present)
        return VniState(
            local_macs=local,
            remote_macs=len(desired.fdb.get(vni, {})),
            flood_vteps=tuple(desired.flood.get(vni, ())),
            prefixes=len(desired.routes.get(vni, {})),
            rmac_vteps=tuple(desired.rmacs.get(vni, {})),
        )

    def kernel_routes(self) -> Iterator[HostRouteView]:
        """Every desired route in every L3VNI table."""
        for vni, table in self.desired.routes.items():
            for prefix, nh in table.items():
                yield HostRouteView(vni, prefix, nh)

    # ------------------------------------------------ endpoints (network policy)

    def endpoints(self) -> dict[int, dict[str, frozenset[str]]]:
        """Every MAC EVPN knows per L2VNI with its IPs: best type-2 paths (remote and our own)
        and locally learned MACs not (yet) advertised. Network policy's groups are fed from it."""
        found: dict[int, dict[str, set[str]]] = {}
        for vni, mac in self.indexes.macs:
            found.setdefault(vni, {}).setdefault(mac, set())
        for (vni, ip), group in self.indexes.ips.items():
            for path in group_paths(group):
                if isinstance(path.key, MacIpKey):
                    found.setdefault(vni, {}).setdefault(path.key.mac, set()).add(ip)
        for (vni, mac), st in self.mobility.local.items():
            if st.present:
                found.setdefault(vni, {}).setdefault(mac, set()).update(st.ips)
        return {
            vni: {mac: frozenset(ips) for mac, ips in macs.items()} for vni, macs in found.items()
        }

    # ------------------------------------------------ MACs and duplicates

    def duplicates(self, vni: int | None = None, mac: str | None = None) -> list[tuple[int, str]]:
        return self.mobility.duplicates(vni, mac)

    def mac_table(self, vni: int | None = None) -> list[MacRow]:
        mobility = self.mobility
        macs = self.indexes.macs
        keys = set(macs) | set(mobility.local) | set(mobility.frozen_fdb)
        rows = []
        for v, mac in sorted(keys):
            if vni is not None and v != vni:
                continue
            group = list(group_paths(macs.get((v, mac))))
            st = mobility.local.get((v, mac))
            remote, top = remote_best(macs.get((v, mac)))
            winner = max(group, key=rank) if group else None
            is_local = (winner is not None and winner.peer == LOCAL_PEER) or (
                winner is None and st is not None
            )
            dad = mobility.dad.get((v, mac))
            ips = {p.key.ip for p in group if isinstance(p.key, MacIpKey) and p.key.ip}
            if st is not None:
                ips |= st.ips
            rows.append(
                MacRow(
                    vni=v,
                    mac=mac,
                    type="local" if is_local else "remote",
                    vtep=None if is_local or remote is None else remote.next_hop,
                    local_seq=st.seq if st is not None else 0,
                    remote_seq=max(top, 0),
                    sticky=bool((winner and winner.attrs.sticky) or (st and st.sticky)),
                    duplicate=bool(dad and dad.duplicate),
                    frozen=mobility.is_frozen(v, mac),
                    moves=dad.count if dad else 0,
                    ips=tuple(sorted(ips)),
                    paths=len(group),
                    fdb=self.desired.fdb.get(v, {}).get(mac),
                )
            )
        return rows

    # ------------------------------------------------ explain

    def explain(self, query: str, vni: int | None = None) -> Explanation:
        """Why the kernel holds (or does not hold) an entry for a MAC or an IP.

        Per VNI: the candidates (winner first), why the winner won (higher sequence / sticky /
        lowest VTEP tie-break / only path / local), the desired value and, when nothing is
        installed, why not (local, duplicate-frozen, rejected: REASON, no VNI imports it).
        """
        query = query.strip().lower()
        is_mac = query.count(":") == 5 and len(query) == 17 and "." not in query
        mobility = self.mobility
        groups = self.indexes.macs if is_mac else self.indexes.ips
        frozen = mobility.frozen_fdb if is_mac else mobility.frozen_neigh
        found = {v for (v, k) in groups if k == query} | {v for (v, k) in frozen if k == query}
        if is_mac:
            found |= {v for (v, m) in mobility.local if m == query}
        vnis = sorted(found)
        if vni is not None:
            vnis = [v for v in vnis if v == vni] or [vni]
        routes: tuple[HostRouteView, ...] = ()
        if not is_mac:
            table = self.desired.routes
            routes = tuple(
                HostRouteView(v, p, table.get(v, {}).get(p))
                for (v, p) in self.indexes.prefixes
                if p.split("/")[0] == query
            )
        return Explanation(
            query=query,
            kind="mac" if is_mac else "ip",
            vnis=tuple(self._explain_one(query, v, is_mac) for v in vnis),
            routes=routes,
            why_not=None if vnis else self._why_unknown(query, is_mac),
        )

    def _explain_one(self, query: str, vni: int, is_mac: bool) -> ExplainVni:
        groups = self.indexes.macs if is_mac else self.indexes.ips
        # best first; of one VTEP's equal routes for a MAC, its MAC-only route before its MAC/IP
        # routes (both carry the MAC: a MAC is advertised alone and with each IP it has)
        paths = sorted(
            group_paths(groups.get((vni, query))),
            key=lambda p: (rank(p), getattr(p.key, "ip", None) is None),
            reverse=True,
        )
        desired = self.desired
        kernel = (desired.fdb if is_mac else desired.neigh).get(vni, {}).get(query)
        candidates = tuple(Candidate(p, self.flags(p)) for p in paths)
        mac: str | None = query
        if not is_mac:
            first = paths[0].key if paths else None
            mac = first.mac if isinstance(first, MacIpKey) else None
        mobility = self.mobility
        st = mobility.local.get((vni, mac)) if mac else None
        frozen = mac is not None and mobility.is_frozen(vni, mac)
        reason = None
        if paths:
            winner = paths[0]
            # The decision is between VTEPs: another route of the winner's VTEP (its MAC/IP
            # route next to its MAC-only one) is no competitor ("same VTEP" said nothing).
            other = next((p for p in paths[1:] if p.next_hop != winner.next_hop), None)
            if len(paths) == 1:
                reason = "only path" + (" (local)" if winner.peer == LOCAL_PEER else "")
            else:
                if other is None:
                    reason = f"only VTEP ({len(paths)} routes from {winner.next_hop})"
                else:
                    reason = why_wins(winner, other)
                if winner.peer == LOCAL_PEER:
                    reason = f"local: {reason}"
        local = None
        if st is not None:
            local = LocalMacView(
                st.present, tuple(sorted(st.ips)), st.seq, st.sticky, st.advertised
            )
        why_not = note = None
        if frozen:
            text = "duplicate: frozen after too many moves; `evpnctl clear dup-addr` thaws it"
            if kernel is None:
                why_not = text
            else:
                note = text
        elif kernel is None:
            if paths and paths[0].peer == LOCAL_PEER:
                why_not = "local: the MAC is on this VTEP, no remote entry needed"
            elif st is not None and not paths:
                why_not = "local: learned here"
            else:
                why_not = self._why_unknown(query, is_mac, vni)
        return ExplainVni(
            vni=vni,
            kernel=kernel,
            candidates=candidates,
            winner=candidates[0] if candidates else None,
            reason=reason,
            why_not=why_not,
            note=note,
            duplicate=frozen,
            local=local,
        )

    def _why_unknown(self, query: str, is_mac: bool, vni: int | None = None) -> str:
        imports = self.indexes.view.imports
        for peer, table in self.rib.adj_in.items():
            for key, path in table.items():
                if isinstance(key, MacIpKey) and (key.mac if is_mac else key.ip) == query:
                    l2, _ = path_targets(path, imports)
                    if vni is None or vni not in l2:
                        return f"received from {peer} but no VNI imports it (route targets)"
        for key, (peer, reason, when) in reversed(self.journal.rejections.items()):
            if isinstance(key, MacIpKey) and (key.mac if is_mac else key.ip) == query:
                return f"rejected from {peer}: {reason.removeprefix('rejected_')} at {when}"
        return "no route for it"
