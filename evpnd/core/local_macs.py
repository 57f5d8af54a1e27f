"""Local MACs: learned on this VTEP's ports, advertised iff they win (RFC 7432 section 15).

A LocalMac event updates the MAC's LocalMacState (present, IPs, sticky). Then the MAC is
settled: advertised with a sequence number above every remote one, or withdrawn when a remote
path wins (the MAC moved away); moves are counted for duplicate detection, which freezes the
MAC's kernel entries and stops advertising it until clear_duplicates().
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from evpnd.core.events import LocalMac
from evpnd.core.mobility import LocalMacState, Mobility, rank
from evpnd.core.path_groups import Group, group_paths
from evpnd.routes.evpn import LOCAL_PEER, Path, RouteKey

if TYPE_CHECKING:
    from evpnd.core.config_view import ConfigView
    from evpnd.core.desired import DesiredState
    from evpnd.core.origination import OwnRoutes


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
    """Mixin of Core: local MAC events, local-versus-remote resolution, duplicate freezing."""

    # Core's state this part reads and writes (set in Core.__init__).
    desired: DesiredState
    mobility: Mobility
    counters: dict[str, int]
    notices: deque[dict]
    _view: ConfigView
    _own: OwnRoutes
    _now: float
    _macs: dict[tuple[int, str], Group]
    _local_keys: dict[tuple[int, str], set[RouteKey]]
    _settling: set[tuple[int, str]]  # MACs being settled (re-entry from _set_local)

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
                remote, top = remote_best(self._macs.get((vni, mac)))
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
        remote, _ = remote_best(self._macs.get((vni, mac)))
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
            self._sync_local_routes(st, self._own.mac_paths(st))
