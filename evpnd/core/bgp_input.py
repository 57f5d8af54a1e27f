"""BGP input: UPDATEs (announce, withdraw), loop checks, peer state and graceful restart.

Paths go into the RIB; every best-path change goes to the indexes; a remote change that
touches a MAC this VTEP has local state for is then settled by LocalMacs, in the same place
of the sequence as before (after each path), so that MAC mobility sees the paths in order.
"""

from __future__ import annotations

from evpnd.core.desired import FDB, NEIGH
from evpnd.core.events import PeerOpen, PeerState, RouteUpdate
from evpnd.core.indexes import BestPathIndexes, equivalent
from evpnd.core.journal import Journal
from evpnd.core.limits import RouteLimits
from evpnd.core.local_macs import LocalMacs
from evpnd.core.path_groups import ABSENT, group_del, group_put
from evpnd.core.rib import PeerStats, Rib, prefer
from evpnd.core.settings import SettingsView
from evpnd.core.validation import (
    PMSI_INGRESS_REPLICATION,
    TUNNEL_VXLAN,
    UNICAST_DIGIT,
    ZERO_MAC,
    mac_ok,
)
from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, PrefixKey, RouteKey

FAMILY = "l2vpn evpn"  # the key of PeerOpen.gr_families for EVPN (AFI 25, SAFI 70)

# (which address, AddressCheck's verdict) -> the journal's reason
_ADDRESS_REASONS = {
    ("nexthop", "own_vtep"): "rejected_own_vtep",
    ("nexthop", "martian"): "rejected_nexthop_martian",
    ("nexthop", "family"): "rejected_nexthop_family",
    ("nexthop", "malformed"): "rejected_malformed",
    ("pmsi", "own_vtep"): "rejected_own_vtep",
    ("pmsi", "martian"): "rejected_pmsi_martian",
    ("pmsi", "family"): "rejected_pmsi_family",
    ("pmsi", "malformed"): "rejected_pmsi_martian",  # an ingress replication PMSI without one
}


class BgpInput:
    """What peers send, into the RIB and the indexes."""

    def __init__(
        self,
        view: SettingsView,
        rib: Rib,
        indexes: BestPathIndexes,
        local_macs: LocalMacs,
        journal: Journal,
    ) -> None:
        self.view = view
        self.rib = rib
        self.indexes = indexes
        self.local_macs = local_macs
        self.journal = journal
        self._update_rejects: dict[str, int] = {}
        # Graceful restart negotiated with each peer in its last OPEN: the restart time for
        # l2vpn/evpn (min of ours and the peer's), absent when either side does not do it.
        self.gr_restart_time: dict[str, int] = {}
        self.limits = RouteLimits(view, journal)  # max_routes per peer

    def configure(self, view: SettingsView) -> None:
        """New settings: drop the paths that the new identity (ASN, RDs, VTEP, router id)
        makes loops (in the RIB only: the caller re-indexes everything)."""
        self.view = view
        self.limits.configure(view)
        for peer in list(self.rib.peers):
            self._sync_limit(peer)
        rib = self.rib
        for peer in [p for p in rib.adj_in if p != LOCAL_PEER]:
            for key, path in list(rib.adj_in[peer].items()):
                reason = self._check_attrs(path.attrs) or self._check_path(path)
                if reason and reason != "rejected_no_vni":
                    self.journal.reject(peer, key, reason)
                    rib.remove(peer, key)

    # ----------------------------------------------------------------- one best path changed

    def _changed(self, key: RouteKey, old: Path | None, new: Path | None) -> None:
        self.indexes.best_changed(key, old, new)
        if self.indexes.unsettled:
            self.local_macs.settle_pending()

    def _peer(self, peer: str) -> PeerStats:
        stats = self.rib.peers.get(peer)
        if stats is None:
            stats = self.rib.peers[peer] = PeerStats()
        return stats

    # ----------------------------------------------------------------- loop and sanity checks

    def _check_attrs(self, attrs: Attributes) -> str | None:
        """Loop checks that depend on the attributes only (shared by a whole UPDATE)."""
        view = self.view
        if view.asn in attrs.as_path:
            return "rejected_own_as"
        if attrs.originator_id is not None and attrs.originator_id == view.router_id:
            return "rejected_originator"
        if attrs.encap is not None and attrs.encap != TUNNEL_VXLAN:
            return "rejected_encap"  # not a VXLAN route: never installed as one
        return None

    def _check_path(self, path: Path) -> str | None:
        view = self.view
        key = path.key
        if key.rd in view.own_rds:
            return "rejected_own_rd"
        verdict = view.address.reason(path.next_hop)
        if verdict is not None:
            return _ADDRESS_REASONS["nexthop", verdict]
        if type(key) is MacIpKey:
            if len(key.mac) != 17:
                return "rejected_malformed"
            if not mac_ok(key.mac):
                return "rejected_mac"
            l2, l3 = view.imports.targets(path.attrs.route_targets)
            if not l2 and not (l3 and key.ip is not None and path.l3vni):
                return "rejected_no_vni"
        elif type(key) is ImetKey:
            if view.address.reason(key.origin) == "own_vtep":
                return "rejected_own_vtep"
            pmsi = path.attrs.pmsi
            if pmsi is not None:  # no PMSI: ingress replication to the next hop (as FRR)
                if pmsi.tunnel_type != PMSI_INGRESS_REPLICATION:
                    return "rejected_pmsi_type"
                verdict = view.address.reason(pmsi.endpoint)
                if verdict is not None:
                    return _ADDRESS_REASONS["pmsi", verdict]
            if not view.imports.targets(path.attrs.route_targets)[0]:
                return "rejected_no_vni"
        elif type(key) is PrefixKey:
            if not view.imports.targets(path.attrs.route_targets)[1]:
                return "rejected_no_vni"
        else:
            return "rejected_malformed"
        return None

    def _reject(self, peer: str, key: RouteKey, reason: str) -> None:
        self.journal.reject(peer, key, reason)
        self._update_rejects[reason] = self._update_rejects.get(reason, 0) + 1

    # ----------------------------------------------------------------- UPDATEs

    def route_update(self, update: RouteUpdate) -> None:
        peer = update.peer
        if peer == LOCAL_PEER:
            self.journal.count("rejected_malformed", len(update.announced))
            return
        stats = self._peer(peer)
        if self.limits.down and peer in self.limits.down:
            # held down over its max_routes: nothing it sends is used (its session is ended)
            stats.received += len(update.announced)
            self.journal.count("max_routes_dropped", len(update.announced))
            return
        rib = self.rib
        changed = self._changed
        if update.withdrawn:
            self._withdraw_keys(peer, update.withdrawn, stats)
        if not update.announced:
            return
        # The hot path (100k routes at a session start): the attributes are shared by the
        # whole UPDATE, so their checks and the route-target import are done once. A type-2
        # key nobody sent before, imported into one L2VNI only, for a MAC without local
        # state, is handled inline (the same as BestPathIndexes.type2_added, which handles
        # the general new-key case; the values it sets are those fdb_entry() and
        # neigh_entry() give, see the comments, and tests/unit/test_core_rules.py checks it).
        view = self.view
        own_rds, imports = view.own_rds, view.imports
        good_next_hops = view.address.good  # next hops that passed the import validation
        address_reason = view.address.reason
        best = rib.best
        adj = rib.adj_in.get(peer)
        if adj is None:
            adj = rib.adj_in[peer] = {}
        fresh_ok = not rib.stale.get(peer)
        # no path of any peer is stale: a second path is ranked against the first by prefer()
        second_ok = not any(rib.stale.values())
        multi = rib.multi
        indexes = self.indexes
        macs, ips = indexes.macs, indexes.ips
        unsettled = indexes.unsettled
        settle_pending = self.local_macs.settle_pending
        mobility = indexes.mobility
        local, frozen_fdb, frozen_neigh = mobility.local, mobility.frozen_fdb, mobility.frozen_neigh
        desired = indexes.desired
        dirty_add = desired.dirty.add
        refresh_fdb, refresh_neigh = indexes.refresh_fdb, indexes.refresh_neigh
        put = group_put
        last_attrs = None
        attrs_reason = None
        l2: tuple[int, ...] = ()
        l3: tuple[int, ...] = ()
        single = 0  # the one L2VNI the UPDATE's route targets import into, else 0
        fdb_t: dict[str, str] = {}
        neigh_t: dict[str, str] = {}
        check_path = self._check_path
        type2_added = indexes.type2_added
        type2_replaced = indexes.type2_replaced
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
                and (nh in good_next_hops or address_reason(nh) is None)
                and len(key.mac) == 17
                and key.mac[1] in UNICAST_DIGIT
                and key.mac != ZERO_MAC
            ):
                accepted += 1
                if fresh_ok and key not in best:
                    adj[key] = path
                    best[key] = path
                    ip = key.ip
                    mac = key.mac
                    gk = (single, mac)
                    irb = ip is not None and path.l3vni and l3
                    if irb or not single or gk in local:
                        type2_added(key, path, l2, l3 if irb else ())
                        if unsettled:
                            settle_pending()
                        continue
                    group = macs.get(gk)
                    if group is None:
                        macs[gk] = path
                        if gk in frozen_fdb:
                            refresh_fdb(single, mac)
                        elif fdb_t.get(mac) != nh:
                            # fdb_entry() of a group of one remote path: its next hop
                            fdb_t[mac] = nh
                            dirty_add((FDB, single, mac))
                    else:
                        if isinstance(group, dict):
                            group[key] = path
                        else:
                            macs[gk] = {group.key: group, key: path}
                        if fdb_t.get(mac) != nh:
                            # (an entry already at this VTEP stays: see type2_added)
                            refresh_fdb(single, mac)
                    if ip is not None:
                        gk = (single, ip)
                        if gk not in ips and gk not in frozen_neigh:
                            # neigh_entry() of a group of one remote path: its MAC
                            ips[gk] = path
                            if neigh_t.get(ip) != mac:
                                neigh_t[ip] = mac
                                dirty_add((NEIGH, single, ip))
                        else:
                            put(ips, gk, key, path)
                            refresh_neigh(single, ip)
                    continue
                if second_ok:
                    first = best[key]  # the branch above took the keys not in best
                    if first.peer != peer and key not in multi:
                        # The second peer's path of a key (two route reflectors): Rib.put's
                        # two-path case inlined (it ranks with prefer() too; the tests check
                        # both give the same RIB), and an equivalent copy that wins moves only
                        # the Path objects in the indexes (best_changed()'s first case, with
                        # path_targets(path) = l2, l3 at hand). Through Rib.put this pass
                        # costs 0.43-0.45 s per 100k instead of 0.38-0.41 (core_passes.py).
                        adj[key] = path
                        multi[key] = {first.peer: first, peer: path}
                        if prefer(path, first):
                            best[key] = path
                            if not (
                                equivalent(first, path)
                                and type2_replaced(
                                    key, path, (l2, l3 if key.ip is not None and path.l3vni else ())
                                )
                            ):
                                changed(key, first, path)
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
            per_peer = stats.rejects
            for reason, n in reasons.items():
                per_peer[reason] = per_peer.get(reason, 0) + n
            self.journal.notice("paths_rejected", peer=peer, reasons=reasons)
            self._update_rejects = {}
        if self.view.peer_limits and peer in self.view.peer_limits:
            if self.limits.check(peer, len(adj)):
                self._flush(peer)  # FRR: over maximum-prefix, the session and its routes go
            self._sync_limit(peer)

    # ----------------------------------------------------------------- max_routes

    def _sync_limit(self, peer: str) -> None:
        stats = self._peer(peer)
        stats.limit_state = self.limits.state(peer)
        stats.limit_until = self.limits.down.get(peer)

    def clear_peer(self, peer: str | None) -> list[str]:
        """`clear peer`: a peer held down over its max_routes may come back."""
        peers = self.limits.clear(peer)
        for p in self.rib.peers if peer is None else [peer]:
            self._sync_limit(p)
        return peers

    def expire_limits(self, now: float) -> None:
        for peer in self.limits.expire(now):
            self._sync_limit(peer)

    def _withdraw_keys(self, peer: str, keys: list[RouteKey], stats: PeerStats) -> None:
        """Withdrawn NLRIs (matched on the key only). A type-2 key held by this peer alone,
        imported into one L2VNI only, for a MAC without local state, is handled inline, and
        so is a type-2 key held by this peer and one other when no path is stale; the rest
        goes the general way."""
        stats.withdrawn += len(keys)
        rib = self.rib
        adj = rib.adj_in.get(peer)
        if adj is None:
            return
        best, multi = rib.best, rib.multi
        fresh_ok = not rib.stale.get(peer)
        imports = self.view.imports
        indexes = self.indexes
        macs, ips = indexes.macs, indexes.ips
        unsettled = indexes.unsettled
        settle_pending = self.local_macs.settle_pending
        mobility = indexes.mobility
        local, frozen_fdb, frozen_neigh = mobility.local, mobility.frozen_fdb, mobility.frozen_neigh
        desired = indexes.desired
        dirty_add = desired.dirty.add
        refresh_fdb, refresh_neigh = indexes.refresh_fdb, indexes.refresh_neigh
        last_attrs = None
        single = 0
        l3: tuple[int, ...] = ()
        fdb_t: dict[str, str] = {}
        neigh_t: dict[str, str] = {}
        # no path of any peer is stale: a key's one other path is its best when this one goes
        second_ok = fresh_ok and not any(rib.stale.values())
        type2_replaced = indexes.type2_replaced
        changed = self._changed
        other_attrs = None
        other_t: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        for key in keys:
            if fresh_ok and type(key) is MacIpKey and key in multi:
                paths = multi[key]
                if second_ok and len(paths) == 2:
                    # One of two route reflectors withdraws: Rib.remove's two-path case
                    # inlined, and when the path that stays is an equivalent copy only the
                    # Path objects in the indexes move (best_changed()'s first case). Through
                    # Rib.remove and best_changed this withdraw cost 0.29-0.30 s per 100k keys,
                    # inline 0.24-0.27 (core_passes.py rr-withdraw: with the other's withdraw).
                    old = adj.pop(key, None)
                    if old is None:
                        continue
                    del multi[key]
                    del paths[peer]
                    (other,) = paths.values()
                    first = best[key]
                    best[key] = other
                    if first is other:
                        continue  # the other path was the best already: nothing moves
                    attrs = other.attrs
                    if attrs is not other_attrs:
                        other_attrs = attrs
                        other_t = imports.targets(attrs.route_targets)
                    l2o, l3o = other_t
                    ip = key.ip
                    irb = ip is not None and other.l3vni and l3o
                    if not equivalent(old, other):
                        changed(key, old, other)
                    elif len(l2o) == 1 and not irb and (l2o[0], key.mac) not in local:
                        # type2_replaced() for one L2VNI and no host route
                        group_put(macs, (l2o[0], key.mac), key, other)
                        if ip is not None:
                            group_put(ips, (l2o[0], ip), key, other)
                    elif not type2_replaced(key, other, (l2o, l3o if irb else ())):
                        changed(key, old, other)
                    continue
            elif fresh_ok and type(key) is MacIpKey:
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
                mac = key.mac
                gk = (single, mac)
                if (
                    not single
                    or (ip is not None and old.l3vni and l3)
                    or old.peer == LOCAL_PEER
                    or gk in local
                ):
                    indexes.type2_removed(key, old)
                    if unsettled:
                        settle_pending()
                    continue
                left = group_del(macs, gk, key)
                if left is not ABSENT:
                    if gk in frozen_fdb:
                        refresh_fdb(single, mac)
                    elif left is None:
                        # fdb_entry() of no paths: no entry
                        if mac in fdb_t:
                            del fdb_t[mac]
                            dirty_add((FDB, single, mac))
                    elif fdb_t.get(mac) == old.next_hop:
                        # (a path not from the winning VTEP leaves the entry: see type2_removed)
                        if isinstance(left, Path) and left.peer != LOCAL_PEER:
                            # fdb_entry() of a group of one remote path: its next hop
                            if left.next_hop != old.next_hop:
                                fdb_t[mac] = left.next_hop
                                dirty_add((FDB, single, mac))
                        else:
                            refresh_fdb(single, mac)
                if ip is not None:
                    gk = (single, ip)
                    left = group_del(ips, gk, key)
                    if left is None and gk not in frozen_neigh:
                        # neigh_entry() of no paths: no entry
                        if ip in neigh_t:
                            del neigh_t[ip]
                            dirty_add((NEIGH, single, ip))
                    elif left is not ABSENT:
                        refresh_neigh(single, ip)
                continue
            old, new = rib.remove(peer, key)
            if old is not new:
                if new is None and old is not None and type(key) is MacIpKey:
                    indexes.type2_removed(key, old)
                    if unsettled:
                        settle_pending()
                else:
                    self._changed(key, old, new)

    # ----------------------------------------------------------------- sessions

    def peer_state(self, event: PeerState) -> None:
        stats = self._peer(event.peer)
        was_up = stats.state == "up"
        stats.state = event.state
        stats.reason = event.reason
        now = self.journal.now
        if event.state == "up":
            stats.since = now
            self.expire_limits(now)  # its restart time may have run out since the last tick
            self.limits.session_up(event.peer)
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
                for key in self.rib.mark_stale(event.peer, now + restart_time):
                    if key in self.rib.multi:
                        old, new = self.rib.reselect(key)
                        if old is not new:
                            self._changed(key, old, new)
            else:
                # no graceful restart negotiated for l2vpn/evpn: as without GR
                self._flush(event.peer)

    def peer_open(self, event: PeerOpen) -> None:
        """Record what the peer's OPEN negotiates; end a restart it does not carry on.

        RFC 4724 section 4.2: routes are retained only for a peer that advertised the
        capability with the family; when the session comes back, stale routes are deleted at
        once if the new OPEN lacks the capability, the family, or its Forwarding State bit.
        """
        peer = event.peer
        ours = self.view.graceful_restart
        forwarding = event.gr_families.get(FAMILY)
        if ours > 0 and event.gr_time is not None and forwarding is not None:
            self.gr_restart_time[peer] = min(ours, event.gr_time)
        else:
            self.gr_restart_time.pop(peer, None)
        if peer in self.rib.stale_deadline and not (forwarding and peer in self.gr_restart_time):
            self.sweep(peer)

    def end_of_rib(self, peer: str) -> None:
        if peer in self.rib.stale:
            self.sweep(peer)

    def expire_stale(self, now: float) -> None:
        """Sweep graceful-restart stale paths whose restart time ran out."""
        for peer, deadline in list(self.rib.stale_deadline.items()):
            if now >= deadline:
                self.sweep(peer)

    def _flush(self, peer: str) -> None:
        """A session lost: one pass over the peer's paths through the withdraw fast path
        (issue 14: a session down costs what withdrawing its NLRIs costs, not more)."""
        stats = self._peer(peer)
        counted = stats.withdrawn
        self._withdraw_keys(peer, self.rib.peer_keys(peer), stats)
        stats.withdrawn = counted  # a session loss withdraws no NLRIs
        self.rib.end_stale(peer)

    def sweep(self, peer: str) -> None:
        keys = self.rib.stale_keys(peer)
        self.journal.count("stale_swept", len(keys))
        if keys:
            self.journal.notice("stale_swept", peer=peer, paths=len(keys))
        for key in keys:
            old, new = self.rib.remove(peer, key)
            if old is not new:
                self._changed(key, old, new)
        self.rib.end_stale(peer)
