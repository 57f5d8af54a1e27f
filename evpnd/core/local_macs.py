"""Local MACs: learned on this VTEP's ports, advertised iff they win (RFC 7432 section 15).

A LocalMac event updates the MAC's LocalMacState (present, IPs, sticky). Then the MAC is
settled: advertised with a sequence number above every remote one, or withdrawn when a remote
path wins (the MAC moved away); moves are counted for duplicate detection, which freezes the
MAC's kernel entries and stops advertising it until clear_duplicates().

Settling is a work list, not a recursion: BestPathIndexes queues the MACs with local state
whose paths changed (`unsettled`); settle_pending() decides each, re-originates through
Origination (which may queue the same MAC again: deciding again is a no-op, so that is not
done), then asks the indexes to refresh the MAC's FDB entry and the queued neighbour entries.
"""

from __future__ import annotations

from evpnd.core.events import LocalMac
from evpnd.core.indexes import BestPathIndexes
from evpnd.core.journal import Journal
from evpnd.core.mobility import NO_IPS, LocalMacState, Mobility, rank
from evpnd.core.origination import Origination
from evpnd.core.path_groups import Group, group_paths
from evpnd.core.settings import SettingsView
from evpnd.routes.evpn import LOCAL_PEER, MacIpKey, Path, RouteKey


def remote_best(group: Group | None) -> tuple[Path | None, int]:
    """The best remote path among a MAC's paths, and the highest remote sequence (-1: none)."""
    best = None
    top = -1
    for path in group_paths(group):
        if path.peer == LOCAL_PEER:
            continue
        top = max(top, path.attrs.mobility_seq)
        if best is None or rank(path) > rank(best):
            best = path
    return best, top


class LocalMacs:
    """Local MAC events, local-versus-remote resolution, duplicate freezing."""

    def __init__(
        self,
        view: SettingsView,
        mobility: Mobility,
        indexes: BestPathIndexes,
        origination: Origination,
        journal: Journal,
    ) -> None:
        self.view = view
        self.mobility = mobility
        self.indexes = indexes
        self.origination = origination
        self.journal = journal
        self.advertised_count: dict[int, int] = {}  # advertised local MACs per L2VNI
        # _first_seen for new MACs (the tests compare it with the general decision: False)
        self.first_seen_shortcut = True

    def configure(self, view: SettingsView) -> None:
        self.view = view
        count: dict[int, int] = {}
        for st in self.mobility.local.values():
            st.sticky = st.sticky or st.mac in view.sticky[st.vni]
            if st.advertised:
                count[st.vni] = count.get(st.vni, 0) + 1
        self.advertised_count = count  # VNIs removed (their MACs forgotten) start again at 0

    def wanted_paths(self) -> dict[tuple[int, str], dict[RouteKey, Path]]:
        """The type-2 paths of every advertised local MAC, as the current settings want them."""
        own = self.origination.own
        return {mk: own.mac_paths(st) for mk, st in self.mobility.local.items() if st.advertised}

    def _local_rank(self, st: LocalMacState) -> tuple[bool, bool, int, int]:
        return (st.sticky, st.sticky, st.seq, self.view.vtep_rank)

    def local_mac(self, event: LocalMac) -> None:
        view = self.view
        vni = event.vni
        journal = self.journal
        if vni not in view.l2:
            journal.count("local_unknown_vni")
            journal.notice("local_mac_refused", vni=vni, mac=event.mac, reason="unknown VNI")
            return
        if not isinstance(event.mac, str) or len(event.mac) != 17:
            journal.count("local_malformed")
            journal.notice("local_mac_refused", vni=vni, mac=repr(event.mac), reason="malformed")
            return
        mac = event.mac.lower()
        mk = (vni, mac)
        mobility = self.mobility
        st = mobility.local.get(mk)
        if event.present:
            if st is None:
                st = mobility.local[mk] = LocalMacState(vni, mac, learned_at=journal.now)
                if (
                    event.ip is None
                    and self.first_seen_shortcut
                    and mk not in self.indexes.macs
                    and mk not in mobility.frozen_fdb
                ):
                    st.present = True
                    st.sticky = event.sticky or mac in view.sticky[vni]
                    self._first_seen(st)
                    return
            configured_sticky = mac in view.sticky[vni]
            if event.ip is None:
                st.present = True
                st.sticky = event.sticky or configured_sticky
            else:
                if isinstance(st.ips, set):
                    st.ips.add(event.ip)
                else:
                    st.ips = {event.ip}
                st.sticky = st.sticky or event.sticky or configured_sticky
            if not st.advertised and not mobility.is_frozen(vni, mac):
                remote, top = remote_best(self.indexes.macs.get((vni, mac)))
                # RFC 7432 section 15.1: a MAC learned locally while a remote route exists is
                # advertised with the highest remote sequence + 1, unless a remote sticky
                # route pins it (section 15.2).
                if remote is not None and (st.sticky or not remote.attrs.sticky):
                    st.seq = max(st.seq, top + 1)
                    if self.indexes.desired.fdb.get(vni, {}).get(mac) is not None and (
                        mobility.record_move(vni, mac, journal.now, local_learn=True)
                    ):
                        self._freeze(vni, mac)
        else:
            if st is None:
                return
            if event.ip is None:
                st.present = False
                st.ips = NO_IPS  # the MAC is gone, so are the neighbours on it
            elif isinstance(st.ips, set):
                st.ips.discard(event.ip)
        self.settle(vni, mac)

    def local_mac_batch(self, events: list[LocalMac]) -> None:
        """A LocalMacBatch's events, in order. A MAC seen for the first time (present, no IP,
        no path from anyone, not frozen, room in its VNI) is decided here, without settle()'s
        lookups: its own MAC route is the key's only path (its RD is this VTEP's, which no
        remote key may carry) and feeds only its own VNI, where the MAC has no other path, so
        Origination.add_first_mac stores it (RIB, own keys, MAC index) and its FDB entry stays
        none (what _first_seen decides through add_first and best_changed). Every other event
        goes through local_mac(). Most of a burst of learning is this case: 100k MACs' core
        cost 0.48-0.51 -> 0.28 s (`core_passes.py` advertise, issue 14)."""
        local_mac = self.local_mac
        origination = self.origination
        if not self.first_seen_shortcut or origination.rib.stale.get(LOCAL_PEER):
            for event in events:
                local_mac(event)
            return
        view = self.view
        l2, rds, sticky_macs, limits = view.l2, view.rd, view.sticky, view.max_local_macs
        vtep = view.vtep
        attributes = origination.own.attributes
        add_first_mac = origination.add_first_mac
        best = origination.rib.best
        local = self.mobility.local
        frozen = self.mobility.frozen_fdb
        macs = self.indexes.macs
        count = self.advertised_count
        now = self.journal.now
        for event in events:
            vni, mac = event.vni, event.mac
            if (
                event.ip is not None
                or not event.present
                or vni not in l2
                or type(mac) is not str
                or len(mac) != 17
            ):
                local_mac(event)
                continue
            mac = mac.lower()
            mk = (vni, mac)
            limit = limits.get(vni)
            if (
                mk in local
                or mk in macs
                or mk in frozen
                or (limit is not None and count.get(vni, 0) >= limit)
            ):
                local_mac(event)
                continue
            key = MacIpKey(rds[vni], 0, mac, None)
            if key in best:  # cannot be: a MAC with local paths has local state (above)
                local_mac(event)
                continue
            sticky = event.sticky or mac in sticky_macs[vni]
            local[mk] = LocalMacState(vni, mac, True, NO_IPS, sticky, 0, True, now)
            count[vni] = count.get(vni, 0) + 1
            attrs = attributes(vni, False, 0, sticky)
            add_first_mac(mk, Path(key, LOCAL_PEER, vtep, vni=vni, attrs=attrs))

    def _first_seen(self, st: LocalMacState) -> None:
        """A MAC learned for the first time, with no path from anyone and not frozen: what
        settle() decides for it is to advertise it (when the VNI has room), and its FDB entry
        stays none. Decided here without the general decision's lookups; most of a burst of
        learning (a rack of VMs starting, a host's 100k MACs) is this case (issue 14)."""
        if not self._room_for(st):
            return  # learned (kernel), not advertised; settle() would stop here too
        self._set_advertised(st, True)
        vni, mac = st.vni, st.mac
        pending = self.indexes.unsettled
        mark = len(pending)
        self.origination.add_first(self.origination.own.mac_path(st))
        if len(pending) > mark:
            # This MAC again, for its own new path (nothing to decide: see settle_pending), or
            # the same MAC in another VNI importing our route target: that one is settled.
            queued = [pending.pop() for _ in range(len(pending) - mark)]
            for item in reversed(queued):
                if item[0] != vni or item[1] != mac:
                    pending.append(item)
            if pending:
                self.settle_pending()

    def settle(self, vni: int, mac: str) -> None:
        """Decide local vs remote for a MAC, then refresh its FDB entry."""
        self.indexes.unsettled.append((vni, mac, None))
        self.settle_pending()

    def settle_pending(self) -> None:
        """Settle every MAC the indexes queued (see the module docstring)."""
        pending = self.indexes.unsettled
        local = self.mobility.local
        indexes = self.indexes
        while pending:
            vni, mac, ip = pending.popleft()
            st = local.get((vni, mac))
            ips: list[str] = []
            if st is not None:
                mark = len(pending)
                self._resolve(st)
                if len(pending) > mark:
                    # What _resolve queued is this MAC again, for its own re-originated paths:
                    # deciding again is a no-op (nothing it reads changed), so only the entries
                    # are refreshed (deciding twice was ~1/3 of a local MAC's cost, issue 14).
                    # Anything else queued meanwhile keeps its place.
                    queued = [pending.pop() for _ in range(len(pending) - mark)]
                    for item in reversed(queued):
                        if item[0] == vni and item[1] == mac:
                            if item[2] is not None:
                                ips.append(item[2])
                        else:
                            pending.append(item)
            indexes.refresh_fdb(vni, mac)
            if ip is not None:
                indexes.refresh_neigh(vni, ip)
            for queued_ip in ips:
                indexes.refresh_neigh(vni, queued_ip)

    def thaw(self, vni: int, mac: str) -> None:
        """clear_duplicates for one MAC: unfreeze, decide again, refresh its entries."""
        ips = self.mobility.thaw(vni, mac)
        self.journal.count("duplicates_cleared")
        self.settle(vni, mac)
        for ip in ips:
            self.indexes.refresh_neigh(vni, ip)

    def _freeze(self, vni: int, mac: str) -> None:
        """Duplicate detected: keep the kernel as it is now, stop advertising the MAC."""
        self.journal.count("duplicates_detected")
        ips = set()
        for path in group_paths(self.indexes.macs.get((vni, mac))):
            ip = path.key.ip if isinstance(path.key, MacIpKey) else None
            if ip is not None:
                ips.add(ip)
        st = self.mobility.local.get((vni, mac))
        if st is not None:
            ips.update(st.ips)
        desired = self.indexes.desired
        neigh = desired.neigh.get(vni, {})
        self.journal.notice("duplicate_detected", vni=vni, mac=mac, ips=sorted(ips))
        self.mobility.freeze(
            vni, mac, desired.fdb.get(vni, {}).get(mac), {ip: neigh.get(ip) for ip in ips}
        )
        if st is not None and st.advertised:
            self._set_advertised(st, False)
            self.origination.sync_mac(st, {})

    def _resolve(self, st: LocalMacState) -> None:
        """Advertise a local MAC iff it wins against every remote path (RFC 7432 section 15)."""
        vni, mac = st.vni, st.mac
        mobility = self.mobility
        if not st.present and not st.ips:
            if st.advertised:
                self._set_advertised(st, False)
                self.origination.sync_mac(st, {})
            del mobility.local[(vni, mac)]
            return
        if mobility.is_frozen(vni, mac):
            return
        remote, _ = remote_best(self.indexes.macs.get((vni, mac)))
        if remote is not None and self._local_rank(st) <= rank(remote):
            if st.advertised:
                # A remote path with a higher sequence (or sticky): the MAC moved away.
                self._set_advertised(st, False)
                self.journal.count("local_mac_lost")
                self.journal.notice(
                    "mac_moved_away",
                    vni=vni,
                    mac=mac,
                    vtep=remote.next_hop,
                    seq=remote.attrs.mobility_seq,
                )
                if mobility.record_move(vni, mac, self.journal.now, local_learn=False):
                    self._freeze(vni, mac)
                self.origination.sync_mac(st, {})
        else:
            if not st.advertised and not self._room_for(st):
                return  # over the VNI's max_local_macs: learned (kernel), not advertised
            self._set_advertised(st, True)
            self.origination.sync_mac(st, self.origination.own.mac_paths(st))

    def _set_advertised(self, st: LocalMacState, on: bool) -> None:
        if st.advertised != on:
            st.advertised = on
            count = self.advertised_count
            count[st.vni] = count.get(st.vni, 0) + (1 if on else -1)

    def _room_for(self, st: LocalMacState) -> bool:
        """max_local_macs: a MAC not yet advertised is advertised only below the limit."""
        limit = self.view.max_local_macs.get(st.vni)
        if limit is None or self.advertised_count.get(st.vni, 0) < limit:
            return True
        journal = self.journal
        journal.count("local_macs_over_limit")
        if not st.over_limit:  # one notice per MAC, not one per re-learn
            st.over_limit = True
            journal.notice("local_mac_refused", vni=st.vni, mac=st.mac,
                           reason=f"max_local_macs {limit} reached")  # fmt: skip
        return False
