"""The EVPN core: events in, BGP effects and desired kernel state out. Pure and synchronous.

One owner (the daemon's core task) calls `apply(event, now)`; the core keeps the RIB, the
local MACs and MAC mobility, and keeps `desired` current incrementally, recording in
`desired.dirty` every kernel object whose wanted value changed. It imports no asyncio,
pyroute2 or exabgp (DESIGN rule 1); time comes in as `now`.

This module holds the public face (start, apply, tick, reconfigure, clear_duplicates, ...)
and the BGP input path (updates, withdraws, loop checks, peer state, graceful restart). The
rest of Core lives in:
  indexes.py      indexes of best paths by kernel object; incremental desired-state upkeep
  views.py        read views for the control API (iter_paths, peer_stats, mac_table, explain)
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from evpnd import views
from evpnd.config import Config
from evpnd.config_view import ConfigView
from evpnd.desired import FDB, NEIGH, DesiredState, compute_desired
from evpnd.events import EndOfRib, Event, LocalMac, PeerState, RouteUpdate
from evpnd.indexes import Indexes
from evpnd.mobility import _VTEP_RANK, LocalMacState, Mobility, rank, vtep_rank
from evpnd.path_groups import ABSENT, Group, group_del, group_paths, group_put
from evpnd.rib import PeerStats, Rib
from evpnd.routes.communities import TUNNEL_VXLAN
from evpnd.routes.evpn import (
    LOCAL_PEER,
    Attributes,
    ImetKey,
    MacIpKey,
    Path,
    Pmsi,
    PrefixKey,
    RouteKey,
)

REJECT_REASONS = (
    "rejected_own_as",
    "rejected_own_rd",
    "rejected_own_vtep",
    "rejected_originator",
    "rejected_no_vni",
    "rejected_malformed",
)
_MAX_REJECTION_RECORDS = 10_000
_MAX_NOTICES = 1_000


@dataclass
class Effects:
    """What the speaker must do after an event.

    `withdraw` holds exactly the Path that was announced (ExaBGP matches withdraws on the
    label and ESI too). Within one Effects a key appears at most once in each list; when the
    NLRI itself changed (label, ESI, gateway) the old path is withdrawn and the new announced.
    """

    announce: list[Path] = field(default_factory=list)
    withdraw: list[Path] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.announce.extend(other.announce)
        self.withdraw.extend(other.withdraw)

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw)


def _is_link_local(ip: str) -> bool:
    """IPv6 fe80::/10 only: FRR treats IPv4 link-local hosts like any other."""
    if ":" not in ip:
        return False
    try:
        return ipaddress.IPv6Address(ip).is_link_local
    except ValueError:
        return False


def _nlri_changed(old: Path, new: Path) -> bool:
    """True when ExaBGP would see a different NLRI (it keys its RIB on the packed NLRI)."""
    return (
        old.vni != new.vni
        or old.l3vni != new.l3vni
        or old.esi != new.esi
        or old.gateway != new.gateway
    )


class Core(Indexes):
    """See the module docstring. Read views for the control API are at the end."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.desired = DesiredState()
        self.rib = Rib()
        dad = cfg.duplicate_detection
        self.mobility = Mobility(dad.enabled, dad.max_moves, float(dad.time))
        self.counters: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        self.rejections: dict[RouteKey, tuple[str, str, float]] = {}  # last few: peer, reason
        self._view = ConfigView(cfg)
        self._macs: dict[tuple[int, str], Group] = {}
        self._ips: dict[tuple[int, str], Group] = {}
        self._prefixes: dict[tuple[int, str], Group] = {}
        self._flood: dict[tuple[int, str], set[RouteKey]] = {}
        self._rmac_refs: dict[tuple[int, str], dict[str, int]] = {}
        self._local_keys: dict[tuple[int, str], set[RouteKey]] = {}
        self._before: dict[RouteKey, Path | None] = {}  # local paths at the start of a call
        self._settling: set[tuple[int, str]] = set()
        self._attrs_cache: dict[tuple, Attributes] = {}
        self._now = 0.0
        # Notable events for the daemon to log (the core does no I/O): drain_notices().
        self.notices: deque[dict] = deque(maxlen=_MAX_NOTICES)
        self._update_rejects: dict[str, int] = {}
        self.started = False
        self._make_tables()

    # ----------------------------------------------------------------- entry points

    def start(self, now: float) -> Effects:
        """Originate our own routes: a type-3 per L2VNI and a type-5 per configured prefix."""
        self._now = now
        self.started = True
        for path in self._static_local_paths().values():
            self._set_local(path.key, path)
        return self._effects()

    def apply(self, event: Event, now: float) -> Effects:
        """Apply one event (RouteUpdate, PeerState, EndOfRib, LocalMac; others are ignored)."""
        self._now = now
        kind = type(event)
        if kind is RouteUpdate:
            self._route_update(event)  # type: ignore[arg-type]
        elif kind is LocalMac:
            self._local_mac(event)  # type: ignore[arg-type]
        elif kind is PeerState:
            self._peer_state(event)  # type: ignore[arg-type]
        elif kind is EndOfRib and event.peer in self.rib.stale:  # type: ignore[union-attr]
            self._sweep(event.peer)  # type: ignore[union-attr]
        return self._effects()

    def tick(self, now: float) -> Effects:
        """Timers: sweep graceful-restart stale paths whose restart time ran out.

        Duplicate-detection windows need no timer: a window is checked against `now` at the
        next move (FRR does the same); frozen MACs stay frozen until clear_duplicates().
        """
        self._now = now
        for peer, deadline in list(self.rib.stale_deadline.items()):
            if now >= deadline:
                self._sweep(peer)
        return self._effects()

    def reconfigure(self, cfg: Config, now: float) -> Effects:
        """Adopt a new configuration: originate/withdraw what changed, import everything again."""
        self._now = now
        old_view = self._view
        self.cfg = cfg
        self._view = view = ConfigView(cfg)
        self._attrs_cache.clear()  # local attributes carry the configured RTs and router MAC
        dad = cfg.duplicate_detection
        self.mobility.configure(dad.enabled, dad.max_moves, float(dad.time))
        for vni in set(old_view.l2) - set(view.l2):
            self.mobility.forget_vni(vni)
        # Paths that the new identity (ASN, RDs, VTEP, router id) makes loops are dropped.
        for peer in [p for p in self.rib.adj_in if p != LOCAL_PEER]:
            for key, path in list(self.rib.adj_in[peer].items()):
                reason = self._check_attrs(path.attrs) or self._check_path(path)
                if reason and reason != "rejected_no_vni":
                    self._reject(peer, key, reason)
                    self.rib.remove(peer, key)
        # Our own routes as the new configuration wants them.
        wanted = self._static_local_paths() if self.started else {}
        for st in self.mobility.local.values():
            st.sticky = st.sticky or st.mac in view.sticky[st.vni]
            if st.advertised:
                wanted.update(self._local_mac_paths(st))
        for key in list(self.rib.adj_in.get(LOCAL_PEER, ())):
            if key not in wanted:
                self._remember_before(key)
                self.rib.remove(LOCAL_PEER, key)
        for key, path in wanted.items():
            if self.rib.get(LOCAL_PEER, key) != path:
                self._remember_before(key)
                self.rib.put(path)
        self._local_keys = {}
        for key in self.rib.adj_in.get(LOCAL_PEER, ()):
            if type(key) is MacIpKey:
                vni = self.rib.adj_in[LOCAL_PEER][key].vni
                self._local_keys.setdefault((vni, key.mac), set()).add(key)
        self._rebuild_indexes()
        # Local MACs may now win or lose differently (sticky MACs, new VNIs): settle them all.
        for vni, mac in list(self.mobility.local):
            self._settle_mac(vni, mac)
        return self._effects()

    def clear_duplicates(
        self, now: float, vni: int | None = None, mac: str | None = None
    ) -> Effects:
        """Thaw duplicate (frozen) MACs, like FRR's `clear evpn dup-addr`."""
        self._now = now
        for v, m in self.mobility.duplicates(vni, mac.lower() if mac else None):
            ips = self.mobility.thaw(v, m)
            self.counters["duplicates_cleared"] = self.counters.get("duplicates_cleared", 0) + 1
            self._settle_mac(v, m)
            for ip in ips:
                self._refresh_neigh(v, ip)
        return self._effects()

    def drain_notices(self) -> list[dict]:
        """Notable events since the last call, oldest first, for the daemon to log. Each is
        {"event", "at", ...}: duplicate_detected (vni, mac, ips), mac_moved_away (vni, mac,
        vtep, seq), stale_swept (peer, paths), paths_rejected (peer, reasons: {reason: n}, one
        per UPDATE, never one per route), local_mac_refused (vni, mac, reason)."""
        out = list(self.notices)
        self.notices.clear()
        return out

    def _notice(self, event: str, **fields: object) -> None:
        self.notices.append({"event": event, "at": self._now, **fields})

    def advertised(self) -> list[Path]:
        """Every local path currently advertised (the speaker replays these after a restart)."""
        return list(self.rib.adj_in.get(LOCAL_PEER, {}).values())

    def compute_desired(self) -> DesiredState:
        """The desired state from scratch (tests compare it with the incremental one)."""
        return compute_desired(self, self.cfg)

    # ----------------------------------------------------------------- BGP input

    def _peer(self, peer: str) -> PeerStats:
        stats = self.rib.peers.get(peer)
        if stats is None:
            stats = self.rib.peers[peer] = PeerStats()
        return stats

    def _check_attrs(self, attrs: Attributes) -> str | None:
        """Loop checks that depend on the attributes only (shared by a whole UPDATE)."""
        view = self._view
        if view.asn in attrs.as_path:
            return "rejected_own_as"
        if attrs.originator_id is not None and attrs.originator_id == view.router_id:
            return "rejected_originator"
        return None

    def _check_path(self, path: Path) -> str | None:
        view = self._view
        key = path.key
        if key.rd in view.own_rds:
            return "rejected_own_rd"
        if path.next_hop == view.vtep:
            return "rejected_own_vtep"
        try:
            vtep_rank(path.next_hop)
        except ValueError:
            return "rejected_malformed"
        kind = type(key)
        if kind is MacIpKey:
            if len(key.mac) != 17:
                return "rejected_malformed"
            l2, l3 = view.imports.targets(path.attrs.route_targets)
            if not l2 and not (l3 and key.ip is not None and path.l3vni):
                return "rejected_no_vni"
        elif kind is ImetKey:
            if key.origin == view.vtep:
                return "rejected_own_vtep"
            if not view.imports.targets(path.attrs.route_targets)[0]:
                return "rejected_no_vni"
        elif kind is PrefixKey:
            if not view.imports.targets(path.attrs.route_targets)[1]:
                return "rejected_no_vni"
        else:
            return "rejected_malformed"
        return None

    def _reject(self, peer: str, key: RouteKey, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1
        self._update_rejects[reason] = self._update_rejects.get(reason, 0) + 1
        records = self.rejections
        records.pop(key, None)
        if len(records) >= _MAX_REJECTION_RECORDS:
            del records[next(iter(records))]
        records[key] = (peer, reason, self._now)

    def _route_update(self, update: RouteUpdate) -> None:
        peer = update.peer
        if peer == LOCAL_PEER:
            self.counters["rejected_malformed"] += len(update.announced)
            return
        stats = self._peer(peer)
        rib = self.rib
        changed = self._best_changed
        if update.withdrawn:
            self._withdraw_keys(peer, update.withdrawn, stats)
        if not update.announced:
            return
        # The hot path (100k routes at a session start): the attributes are shared by the
        # whole UPDATE, so their checks and the route-target import are done once. A type-2
        # key nobody sent before, imported into one L2VNI only, is handled inline (the same
        # as _type2_added, which handles the general new-key case).
        view = self._view
        own_rds, vtep, imports = view.own_rds, view.vtep, view.imports
        known_vteps = _VTEP_RANK
        best = rib.best
        adj = rib.adj_in.get(peer)
        if adj is None:
            adj = rib.adj_in[peer] = {}
        fresh_ok = not rib.stale.get(peer)
        macs, ips = self._macs, self._ips
        mobility = self.mobility
        local, frozen_fdb, frozen_neigh = mobility.local, mobility.frozen_fdb, mobility.frozen_neigh
        desired = self.desired
        dirty_add = desired.dirty.add
        settle, refresh_neigh = self._settle_mac, self._refresh_neigh
        put = group_put
        last_attrs = None
        attrs_reason = None
        l2: tuple[int, ...] = ()
        l3: tuple[int, ...] = ()
        single = 0  # the one L2VNI the UPDATE's route targets import into, else 0
        fdb_t: dict[str, str] = {}
        neigh_t: dict[str, str] = {}
        check_path = self._check_path
        type2_added = self._type2_added
        accepted = rejected = 0
        for path in update.announced:
            if path.peer != peer:
                path = path._replace(peer=peer)
            attrs = path.attrs
            if attrs is not last_attrs:
                last_attrs = attrs
                attrs_reason = self._check_attrs(attrs)
                l2, l3 = imports.targets(attrs.route_targets)
                single = l2[0] if len(l2) == 1 else 0
                if single:
                    fdb_t = desired.fdb.setdefault(single, {})
                    neigh_t = desired.neigh.setdefault(single, {})
            key = path.key
            nh = path.next_hop
            if (
                attrs_reason is None
                and type(key) is MacIpKey
                and l2
                and key.rd not in own_rds
                and nh in known_vteps
                and nh != vtep
                and len(key.mac) == 17
            ):
                accepted += 1
                if fresh_ok and key not in best:
                    adj[key] = path
                    best[key] = path
                    ip = key.ip
                    irb = ip is not None and path.l3vni and l3
                    if irb or not single:
                        type2_added(key, path, l2, l3 if irb else ())
                        continue
                    mac = key.mac
                    gk = (single, mac)
                    group = macs.get(gk)
                    if group is None:
                        macs[gk] = path
                        if gk in local or gk in frozen_fdb:
                            settle(single, mac)
                        elif fdb_t.get(mac) != nh:
                            fdb_t[mac] = nh
                            dirty_add((FDB, single, mac))
                    else:
                        if type(group) is dict:
                            group[key] = path
                        else:
                            macs[gk] = {group.key: group, key: path}
                        if gk in local or fdb_t.get(mac) != nh:
                            settle(single, mac)
                    if ip is not None:
                        gk = (single, ip)
                        if gk not in ips and gk not in frozen_neigh:
                            ips[gk] = path
                            if neigh_t.get(ip) != mac:
                                neigh_t[ip] = mac
                                dirty_add((NEIGH, single, ip))
                        else:
                            put(ips, gk, key, path)
                            refresh_neigh(single, ip)
                    continue
            else:
                reason = attrs_reason or check_path(path)
                if reason is not None:
                    rejected += 1
                    self._reject(peer, key, reason)
                    if reason != "rejected_no_vni":
                        # Treat-as-withdraw (RFC 7606): the peer's earlier path is gone too.
                        old, new = rib.remove(peer, key)
                        if old is not new:
                            changed(key, old, new)
                        continue
                else:
                    accepted += 1
            old, new = rib.put(path)
            if old is not new and old != new:  # a repeated announcement changes nothing
                changed(key, old, new)
        stats.received += len(update.announced)
        stats.accepted += accepted
        stats.rejected += rejected
        if self._update_rejects:
            reasons = {k.removeprefix("rejected_"): n for k, n in self._update_rejects.items()}
            self._notice("paths_rejected", peer=peer, reasons=reasons)
            self._update_rejects = {}

    def _withdraw_keys(self, peer: str, keys: list[RouteKey], stats: PeerStats) -> None:
        """Withdrawn NLRIs (matched on the key only). A type-2 key held by this peer alone,
        imported into one L2VNI only, is handled inline; the rest goes the general way."""
        stats.withdrawn += len(keys)
        rib = self.rib
        adj = rib.adj_in.get(peer)
        if adj is None:
            return
        best, multi = rib.best, rib.multi
        fresh_ok = not rib.stale.get(peer)
        imports = self._view.imports
        macs, ips = self._macs, self._ips
        mobility = self.mobility
        local, frozen_fdb, frozen_neigh = mobility.local, mobility.frozen_fdb, mobility.frozen_neigh
        desired = self.desired
        dirty_add = desired.dirty.add
        last_attrs = None
        single = 0
        fdb_t: dict[str, str] = {}
        neigh_t: dict[str, str] = {}
        for key in keys:
            if fresh_ok and type(key) is MacIpKey and key not in multi:
                old = adj.pop(key, None)
                if old is None:
                    continue
                del best[key]
                attrs = old.attrs
                if attrs is not last_attrs:
                    last_attrs = attrs
                    l2, l3 = imports.targets(attrs.route_targets)
                    single = l2[0] if len(l2) == 1 else 0
                    if single:
                        fdb_t = desired.fdb.setdefault(single, {})
                        neigh_t = desired.neigh.setdefault(single, {})
                ip = key.ip
                if not single or (ip is not None and old.l3vni and l3) or old.peer == LOCAL_PEER:
                    self._type2_removed(key, old)
                    continue
                mac = key.mac
                gk = (single, mac)
                left = group_del(macs, gk, key)
                if left is not ABSENT:
                    if gk in local or gk in frozen_fdb:
                        self._settle_mac(single, mac)
                    elif left is None:
                        if mac in fdb_t:
                            del fdb_t[mac]
                            dirty_add((FDB, single, mac))
                    elif fdb_t.get(mac) == old.next_hop:
                        self._refresh_fdb(single, mac)
                if ip is not None:
                    gk = (single, ip)
                    left = group_del(ips, gk, key)
                    if left is None and gk not in frozen_neigh:
                        if ip in neigh_t:
                            del neigh_t[ip]
                            dirty_add((NEIGH, single, ip))
                    elif left is not ABSENT:
                        self._refresh_neigh(single, ip)
                continue
            old, new = rib.remove(peer, key)
            if old is not new:
                if new is None and type(key) is MacIpKey:
                    self._type2_removed(key, old)  # type: ignore[arg-type]
                else:
                    self._best_changed(key, old, new)

    def _peer_state(self, event: PeerState) -> None:
        stats = self._peer(event.peer)
        stats.state = event.state
        stats.reason = event.reason
        if event.state == "up":
            stats.since = self._now
        elif event.state == "down":
            stats.since = None
            gr = self._view.graceful_restart
            if gr > 0:
                # RFC 4724: keep forwarding on the paths, marked stale, for the restart time.
                for key in self.rib.mark_stale(event.peer, self._now + gr):
                    if key in self.rib.multi:
                        old, new = self.rib.reselect(key)
                        if old is not new:
                            self._best_changed(key, old, new)
            else:
                self._flush(event.peer)

    def _flush(self, peer: str) -> None:
        for key in self.rib.peer_keys(peer):
            old, new = self.rib.remove(peer, key)
            if old is not new:
                self._best_changed(key, old, new)
        self.rib.end_stale(peer)

    def _sweep(self, peer: str) -> None:
        keys = self.rib.stale_keys(peer)
        self.counters["stale_swept"] = self.counters.get("stale_swept", 0) + len(keys)
        if keys:
            self._notice("stale_swept", peer=peer, paths=len(keys))
        for key in keys:
            old, new = self.rib.remove(peer, key)
            if old is not new:
                self._best_changed(key, old, new)
        self.rib.end_stale(peer)

    # ----------------------------------------------------------------- local routes

    def _static_local_paths(self) -> dict[RouteKey, Path]:
        """Type-3 per L2VNI (ingress replication, RFC 8365 section 9) and configured type-5s."""
        view = self._view
        out: dict[RouteKey, Path] = {}
        for vni in view.l2:
            key = ImetKey(view.rd[vni], 0, view.vtep)
            attrs = Attributes(
                route_targets=view.export[vni],
                encap=TUNNEL_VXLAN,
                pmsi=Pmsi(Pmsi.INGRESS_REPLICATION, vni, view.vtep),
            )
            out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, attrs=attrs)
        for vni, l3 in view.l3.items():
            attrs = Attributes(
                route_targets=view.export[vni], encap=TUNNEL_VXLAN, router_mac=l3.router_mac
            )
            for net in l3.advertise_prefixes:
                pkey = PrefixKey(view.rd[vni], 0, str(net))
                gateway = "::" if net.version == 6 else "0.0.0.0"
                out[pkey] = Path(pkey, LOCAL_PEER, view.vtep, vni=vni, gateway=gateway, attrs=attrs)
        return out

    def _local_attrs(self, vni: int, with_l3: bool, seq: int, sticky: bool) -> Attributes:
        ck = (vni, with_l3, seq, sticky)
        attrs = self._attrs_cache.get(ck)
        if attrs is None:
            view = self._view
            rts = view.export[vni]
            l3 = view.l3_of.get(vni)
            rmac = None
            if with_l3 and l3 is not None:
                rts = rts + tuple(rt for rt in view.export[l3.vni] if rt not in rts)
                rmac = l3.router_mac
            attrs = Attributes(
                route_targets=rts,
                encap=TUNNEL_VXLAN,
                mobility_seq=seq,
                sticky=sticky,
                has_mobility=seq > 0 or sticky,
                router_mac=rmac,
            )
            if len(self._attrs_cache) > 10_000:
                self._attrs_cache.clear()
            self._attrs_cache[ck] = attrs
        return attrs

    def _local_mac_paths(self, st: LocalMacState) -> dict[RouteKey, Path]:
        """The type-2 routes of a local MAC. Like FRR, only MAC+IP routes carry the L3VNI
        label, its route targets and the router MAC (RFC 9135 section 5.1.1)."""
        view = self._view
        vni, mac = st.vni, st.mac
        rd = view.rd[vni]
        out: dict[RouteKey, Path] = {}
        if st.present:
            key = MacIpKey(rd, 0, mac, None)
            attrs = self._local_attrs(vni, False, st.seq, st.sticky)
            out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, attrs=attrs)
        if st.ips:
            l3 = view.l3_of.get(vni)
            with_l3 = self._local_attrs(vni, True, st.seq, st.sticky)
            l2_only = self._local_attrs(vni, False, st.seq, st.sticky)
            l3vni = l3.vni if l3 is not None else 0
            for ip in st.ips:
                key = MacIpKey(rd, 0, mac, ip)
                if _is_link_local(ip):  # FRR: no L3 attributes for IPv6 link-local hosts
                    out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, attrs=l2_only)
                else:
                    out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, l3vni=l3vni, attrs=with_l3)
        return out

    def _remember_before(self, key: RouteKey) -> None:
        if key not in self._before:
            self._before[key] = self.rib.get(LOCAL_PEER, key)

    def _set_local(self, key: RouteKey, path: Path | None) -> None:
        current = self.rib.get(LOCAL_PEER, key)
        if current == path:
            return
        self._remember_before(key)
        if type(key) is MacIpKey:
            vni = (path or current).vni  # type: ignore[union-attr]
            mk = (vni, key.mac)
            if path is None:
                keys = self._local_keys.get(mk)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._local_keys[mk]
            else:
                self._local_keys.setdefault(mk, set()).add(key)
        if path is None:
            old, new = self.rib.remove(LOCAL_PEER, key)
        else:
            old, new = self.rib.put(path)
        if old is not new:
            self._best_changed(key, old, new)

    def _effects(self) -> Effects:
        effects = Effects()
        if not self._before:
            return effects
        local = self.rib.adj_in.get(LOCAL_PEER, {})
        for key, before in self._before.items():
            after = local.get(key)
            if before == after:
                continue
            if after is None:
                effects.withdraw.append(before)  # type: ignore[arg-type]
            elif before is None:
                effects.announce.append(after)
            else:
                if _nlri_changed(before, after):
                    effects.withdraw.append(before)
                effects.announce.append(after)
        self._before = {}
        return effects

    def _remote_best(self, vni: int, mac: str) -> tuple[Path | None, int]:
        """The best remote path for a MAC in a VNI, and the highest remote sequence."""
        best = None
        top = -1
        for path in group_paths(self._macs.get((vni, mac))):
            if path.peer == LOCAL_PEER:
                continue
            top = max(top, path.attrs.mobility_seq)
            if best is None or rank(path) > rank(best):
                best = path
        return best, top

    def _local_rank(self, st: LocalMacState) -> tuple[bool, bool, int, int]:
        return (st.sticky, st.sticky, st.seq, self._view.vtep_rank)

    def _local_mac(self, event: LocalMac) -> None:
        view = self._view
        vni = event.vni
        if vni not in view.l2:
            self.counters["local_unknown_vni"] = self.counters.get("local_unknown_vni", 0) + 1
            self._notice("local_mac_refused", vni=vni, mac=event.mac, reason="unknown VNI")
            return
        if not isinstance(event.mac, str) or len(event.mac) != 17:
            self.counters["local_malformed"] = self.counters.get("local_malformed", 0) + 1
            self._notice("local_mac_refused", vni=vni, mac=repr(event.mac), reason="malformed")
            return
        mac = event.mac.lower()
        mk = (vni, mac)
        mobility = self.mobility
        st = mobility.local.get(mk)
        if event.present:
            if st is None:
                st = mobility.local[mk] = LocalMacState(vni, mac, learned_at=self._now)
            configured_sticky = mac in view.sticky[vni]
            if event.ip is None:
                st.present = True
                st.sticky = event.sticky or configured_sticky
            else:
                st.ips.add(event.ip)
                st.sticky = st.sticky or event.sticky or configured_sticky
            if not st.advertised and not mobility.is_frozen(vni, mac):
                remote, top = self._remote_best(vni, mac)
                # RFC 7432 section 15.1: a MAC learned locally while a remote route exists is
                # advertised with the highest remote sequence + 1, unless a remote sticky
                # route pins it (section 15.2).
                if remote is not None and (st.sticky or not remote.attrs.sticky):
                    st.seq = max(st.seq, top + 1)
                    if self.desired.fdb.get(vni, {}).get(mac) is not None and (
                        mobility.record_move(vni, mac, self._now, local_learn=True)
                    ):
                        self._freeze(vni, mac)
        else:
            if st is None:
                return
            if event.ip is None:
                st.present = False
                st.ips.clear()  # the MAC is gone, so are the neighbours on it
            else:
                st.ips.discard(event.ip)
        self._settle_mac(vni, mac)

    def _freeze(self, vni: int, mac: str) -> None:
        """Duplicate detected: keep the kernel as it is now, stop advertising the MAC."""
        self.counters["duplicates_detected"] = self.counters.get("duplicates_detected", 0) + 1
        ips = {p.key.ip for p in group_paths(self._macs.get((vni, mac))) if p.key.ip is not None}  # type: ignore
        st = self.mobility.local.get((vni, mac))
        if st is not None:
            ips.update(st.ips)
        neigh = self.desired.neigh.get(vni, {})
        self._notice("duplicate_detected", vni=vni, mac=mac, ips=sorted(ips))
        self.mobility.freeze(
            vni, mac, self.desired.fdb.get(vni, {}).get(mac), {ip: neigh.get(ip) for ip in ips}
        )
        if st is not None and st.advertised:
            st.advertised = False
            self._sync_local_routes(st, {})

    def _sync_local_routes(self, st: LocalMacState, wanted: dict[RouteKey, Path]) -> None:
        mk = (st.vni, st.mac)
        for key in list(self._local_keys.get(mk, ())):
            if key not in wanted:
                self._set_local(key, None)
        for key, path in wanted.items():
            self._set_local(key, path)

    def _settle_mac(self, vni: int, mac: str) -> None:
        """Decide local vs remote for a MAC, then refresh its FDB entry."""
        mk = (vni, mac)
        st = self.mobility.local.get(mk)
        if st is not None and mk not in self._settling:
            self._settling.add(mk)
            try:
                self._resolve_local(st)
            finally:
                self._settling.discard(mk)
        if mk not in self._settling:
            self._refresh_fdb(vni, mac)

    def _resolve_local(self, st: LocalMacState) -> None:
        """Advertise a local MAC iff it wins against every remote path (RFC 7432 section 15)."""
        vni, mac = st.vni, st.mac
        mobility = self.mobility
        if not st.present and not st.ips:
            if st.advertised:
                st.advertised = False
                self._sync_local_routes(st, {})
            del mobility.local[(vni, mac)]
            return
        if mobility.is_frozen(vni, mac):
            return
        remote, _ = self._remote_best(vni, mac)
        local_wins = remote is None or self._local_rank(st) > rank(remote)
        if st.advertised and not local_wins:
            # A remote path with a higher sequence (or sticky): the MAC moved away.
            st.advertised = False
            self.counters["local_mac_lost"] = self.counters.get("local_mac_lost", 0) + 1
            self._notice(
                "mac_moved_away",
                vni=vni,
                mac=mac,
                vtep=remote.next_hop,
                seq=remote.attrs.mobility_seq,  # type: ignore[union-attr]
            )
            if mobility.record_move(vni, mac, self._now, local_learn=False):
                self._freeze(vni, mac)
            self._sync_local_routes(st, {})
        elif local_wins:
            st.advertised = True
            self._sync_local_routes(st, self._local_mac_paths(st))

    # ----------------------------------------------------------------- read views (views.py)

    def iter_paths(self) -> Iterator[dict]:
        """Every path of every peer with its flags, for `show routes`: see views.iter_paths."""
        return views.iter_paths(self)

    def peer_stats(self) -> dict[str, dict]:
        """Per peer: state, counters, paths held: see views.peer_stats."""
        return views.peer_stats(self)

    def mac_table(self, vni: int | None = None) -> list[dict]:
        """FRR's `show evpn mac vni all`: see views.mac_table."""
        return views.mac_table(self, vni)

    def explain(self, mac_or_ip: str, vni: int | None = None) -> dict:
        """Why the kernel holds (or does not hold) an entry: see views.explain."""
        return views.explain(self, mac_or_ip, vni)
