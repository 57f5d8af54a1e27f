"""The EVPN core: events in, BGP effects and desired kernel state out. Pure and synchronous.

One owner (the daemon's core task) calls `apply(event, now)`; the core keeps the RIB, the
local MACs and MAC mobility, and keeps `desired` current incrementally, recording in
`desired.dirty` every kernel object whose wanted value changed. It imports no asyncio,
pyroute2 or exabgp (DESIGN rule 1); time comes in as `now`.

This module holds the public face (start, apply, tick, reconfigure, clear_duplicates, ...)
and the BGP input path (updates, withdraws, loop checks, peer state, graceful restart). The
rest of Core, by purpose (mixins share the core's state; the rest are plain functions):
  origination.py  own paths (type-3 per L2VNI, type-5s, local type-2s) and their Effects
  local_macs.py   LocalMac events, sequence numbers, local vs remote, duplicate freezing
  indexes.py      indexes of best paths by kernel object; incremental desired-state upkeep
  views.py        read views for the control API (iter_paths, peer_stats, mac_table, explain)
  config_view.py  the configuration reduced to what the hot path looks up
  path_groups.py  the best paths feeding one kernel object (one Path or {key: Path})
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from evpnd.config import Config
from evpnd.core import views
from evpnd.core.config_view import ConfigView
from evpnd.core.desired import FDB, NEIGH, DesiredState, compute_desired
from evpnd.core.events import EndOfRib, Event, LocalMac, PeerOpen, PeerState, RouteUpdate
from evpnd.core.indexes import Indexes
from evpnd.core.local_macs import LocalMacs
from evpnd.core.mobility import _VTEP_RANK, Mobility, vtep_rank
from evpnd.core.origination import Effects, Origination, OwnRoutes
from evpnd.core.path_groups import ABSENT, Group, group_del, group_put
from evpnd.core.rib import PeerStats, Rib
from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, PrefixKey, RouteKey

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
FAMILY = "l2vpn evpn"  # the key of PeerOpen.gr_families for EVPN (AFI 25, SAFI 70)


class Core(LocalMacs, Origination, Indexes):
    """See the module docstring. The read views for the control API are at the end."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.desired = DesiredState()
        self.rib = Rib()
        dad = cfg.duplicate_detection
        self.mobility = Mobility(dad.enabled, dad.max_moves, float(dad.time))
        self.counters: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        self.rejections: dict[RouteKey, tuple[str, str, float]] = {}  # last few: peer, reason
        self._view = ConfigView(cfg)
        self._own = OwnRoutes(self._view)
        self._macs: dict[tuple[int, str], Group] = {}
        self._ips: dict[tuple[int, str], Group] = {}
        self._prefixes: dict[tuple[int, str], Group] = {}
        self._flood: dict[tuple[int, str], set[RouteKey]] = {}
        self._rmac_refs: dict[tuple[int, str], dict[str, int]] = {}
        self._local_keys: dict[tuple[int, str], set[RouteKey]] = {}
        self._before: dict[RouteKey, Path | None] = {}  # local paths at the start of a call
        self._settling: set[tuple[int, str]] = set()
        self._now = 0.0
        # Notable events for the daemon to log (the core does no I/O): drain_notices().
        self.notices: deque[dict] = deque(maxlen=_MAX_NOTICES)
        self._update_rejects: dict[str, int] = {}
        # Graceful restart negotiated with each peer in its last OPEN: the restart time for
        # l2vpn/evpn (min of ours and the peer's), absent when either side does not do it.
        self.gr_restart_time: dict[str, int] = {}
        self.started = False
        self._make_tables()

    # ----------------------------------------------------------------- entry points

    def start(self, now: float) -> Effects:
        """Originate our own routes: a type-3 per L2VNI and a type-5 per configured prefix."""
        self._now = now
        self.started = True
        for path in self._own.static_paths().values():
            self._set_local(path.key, path)
        return self._effects()

    def apply(self, event: Event, now: float) -> Effects:
        """Apply one event (RouteUpdate, PeerState, PeerOpen, EndOfRib, LocalMac; others are
        ignored)."""
        self._now = now
        kind = type(event)
        if kind is RouteUpdate:
            self._route_update(event)  # type: ignore[arg-type]
        elif kind is LocalMac:
            self._local_mac(event)  # type: ignore[arg-type]
        elif kind is PeerState:
            self._peer_state(event)  # type: ignore[arg-type]
        elif kind is PeerOpen:
            self._peer_open(event)  # type: ignore[arg-type]
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
        self._own = OwnRoutes(view)  # own attributes carry the configured RTs and router MAC
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
        wanted = self._own.static_paths() if self.started else {}
        for st in self.mobility.local.values():
            st.sticky = st.sticky or st.mac in view.sticky[st.vni]
            if st.advertised:
                wanted.update(self._own.mac_paths(st))
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
        was_up = stats.state == "up"
        stats.state = event.state
        stats.reason = event.reason
        if event.state == "up":
            stats.since = self._now
        elif event.state == "down":
            stats.since = None
            restart_time = self.gr_restart_time.get(event.peer, 0)
            if restart_time > 0:
                if not was_up and event.peer in self.rib.stale_deadline:
                    # A failed attempt to reconnect (ExaBGP retries every few seconds): the
                    # restart time runs from the session loss, not from the latest attempt,
                    # or a peer that never comes back would keep its paths forever (RFC 4724
                    # section 4.2: delete them if the session is not re-established in time).
                    return
                # RFC 4724 section 4.2: keep forwarding on the paths, marked stale, for the
                # restart time the peer advertised (or ours, if shorter).
                for key in self.rib.mark_stale(event.peer, self._now + restart_time):
                    if key in self.rib.multi:
                        old, new = self.rib.reselect(key)
                        if old is not new:
                            self._best_changed(key, old, new)
            else:
                # no graceful restart negotiated for l2vpn/evpn: as without GR
                self._flush(event.peer)

    def _peer_open(self, event: PeerOpen) -> None:
        """Record what the peer's OPEN negotiates; end a restart it does not carry on.

        RFC 4724 section 4.2: routes are retained only for a peer that advertised the
        capability with the family; when the session comes back, stale routes are deleted at
        once if the new OPEN lacks the capability, the family, or its Forwarding State bit.
        """
        peer = event.peer
        ours = self._view.graceful_restart
        forwarding = event.gr_families.get(FAMILY)
        if ours > 0 and event.gr_time is not None and forwarding is not None:
            self.gr_restart_time[peer] = min(ours, event.gr_time)
        else:
            self.gr_restart_time.pop(peer, None)
        if peer in self.rib.stale_deadline and not (forwarding and peer in self.gr_restart_time):
            self._sweep(peer)

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
