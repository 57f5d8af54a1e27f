"""The EVPN core: events in, BGP effects and desired kernel state out. Pure and synchronous.

One owner (the daemon's core task) calls `apply(event, now)`; the core keeps the RIB, the
local MACs and MAC mobility, and keeps `desired` current incrementally, recording in
`desired.dirty` every kernel object whose wanted value changed. It imports no asyncio,
pyroute2 or exabgp (DESIGN rule 1), nor the configuration layer: it is given a plain
CoreSettings; time comes in as `now`.

Core wires the collaborators and is the public face. Each collaborator is handed the ones it
uses when it is built, and calls go one way (nothing calls back up, so no re-entry guard):

  Core -> BgpInput -> LocalMacs -> Origination -> BestPathIndexes -> DesiredState
  (BgpInput, Origination: the Rib; BgpInput, LocalMacs: the BestPathIndexes too)

  BgpInput         UPDATEs, loop checks, peer state, graceful restart    bgp_input.py
  LocalMacs        local MAC events, local vs remote, duplicate freezing local_macs.py
  Origination      our own paths in the RIB, the Effects of a call       origination.py
  BestPathIndexes  best paths by kernel object, the desired state        indexes.py
  CoreViews        typed read views for the API and the metrics          views.py
  Journal          the call's `now`, counters, notices, last rejections  journal.py

A remote change to a MAC this VTEP has local state for is queued by BestPathIndexes
(`unsettled`) and settled by LocalMacs right after it; the FDB and neighbour values always come
from desired.fdb_entry / neigh_entry.
"""

from __future__ import annotations

from evpnd.core.bgp_input import BgpInput
from evpnd.core.desired import DesiredState, Frozen, compute_desired
from evpnd.core.events import (
    EndOfRib,
    Event,
    LocalMac,
    LocalMacBatch,
    PeerOpen,
    PeerState,
    RouteUpdate,
)
from evpnd.core.indexes import BestPathIndexes
from evpnd.core.journal import Journal, Notice
from evpnd.core.local_macs import LocalMacs
from evpnd.core.mobility import Mobility
from evpnd.core.origination import Effects, Origination
from evpnd.core.rib import Rib
from evpnd.core.settings import CoreSettings, SettingsView
from evpnd.core.views import CoreViews
from evpnd.routes.evpn import Path


class Core:
    """See the module docstring."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        view = SettingsView(settings)
        dad = settings.duplicate_detection
        self.desired = DesiredState()
        self.rib = Rib()
        self.mobility = Mobility(dad.enabled, dad.max_moves, dad.window)
        self.journal = Journal()
        self.indexes = BestPathIndexes(view, self.desired, self.mobility)
        self.origination = Origination(view, self.rib, self.indexes)
        self.local_macs = LocalMacs(
            view, self.mobility, self.indexes, self.origination, self.journal
        )
        self.bgp = BgpInput(view, self.rib, self.indexes, self.local_macs, self.journal)
        self.views = CoreViews(
            self.rib, self.indexes, self.mobility, self.origination, self.journal
        )
        self.started = False

    @property
    def counters(self) -> dict[str, int]:
        return self.journal.counters

    def _effects(self) -> Effects:
        """End of an entry point: nothing left unsettled, then what changed for the speaker."""
        if self.indexes.unsettled:
            self.local_macs.settle_pending()
        effects = self.origination.effects()
        effects.notify.extend(self.bgp.limits.take())
        return effects

    # ----------------------------------------------------------------- entry points

    def start(self, now: float) -> Effects:
        """Originate our own routes: a type-3 per L2VNI and a type-5 per configured prefix."""
        self.journal.now = now
        self.started = True
        for path in self.origination.own.static_paths().values():
            self.origination.set_local(path.key, path)
        return self._effects()

    def apply(self, event: Event, now: float) -> Effects:
        """Apply one event (RouteUpdate, PeerState, PeerOpen, EndOfRib, LocalMac, LocalMacBatch;
        others are ignored)."""
        self.journal.now = now
        if isinstance(event, RouteUpdate):
            self.bgp.route_update(event)
        elif isinstance(event, LocalMacBatch):
            self.local_macs.local_mac_batch(event.macs)
        elif isinstance(event, LocalMac):
            self.local_macs.local_mac(event)
        elif isinstance(event, PeerState):
            self.bgp.peer_state(event)
        elif isinstance(event, PeerOpen):
            self.bgp.peer_open(event)
        elif isinstance(event, EndOfRib):
            self.bgp.end_of_rib(event.peer)
        return self._effects()

    def tick(self, now: float) -> Effects:
        """Timers: sweep graceful-restart stale paths whose restart time ran out.

        Duplicate-detection windows need no timer: a window is checked against `now` at the
        next move (FRR does the same); frozen MACs stay frozen until clear_duplicates().
        """
        self.journal.now = now
        self.bgp.expire_stale(now)
        self.bgp.expire_limits(now)
        return self._effects()

    def reconfigure(self, settings: CoreSettings, now: float) -> Effects:
        """Adopt new settings: originate/withdraw what changed, import everything again."""
        self.journal.now = now
        old_l2 = set(self.indexes.view.l2)
        self.settings = settings
        view = SettingsView(settings)
        dad = settings.duplicate_detection
        self.mobility.configure(dad.enabled, dad.max_moves, dad.window)
        for vni in old_l2 - set(view.l2):
            self.mobility.forget_vni(vni)
        # Paths that the new identity (ASN, RDs, VTEP, router id) makes loops are dropped.
        self.bgp.configure(view)
        # Our own routes as the new configuration wants them.
        self.origination.configure(view)
        self.local_macs.configure(view)
        wanted = self.origination.own.static_paths() if self.started else {}
        for paths in self.local_macs.wanted_paths().values():
            wanted.update(paths)
        self.origination.replace_all(wanted)
        for key in list(self.rib.multi):
            self.rib.reselect(key)
        self.indexes.rebuild(view, self.rib, self.compute_desired())
        # Local MACs may now win or lose differently (sticky MACs, new VNIs): settle them all.
        for vni, mac in list(self.mobility.local):
            self.local_macs.settle(vni, mac)
        return self._effects()

    def clear_duplicates(
        self, now: float, vni: int | None = None, mac: str | None = None
    ) -> Effects:
        """Thaw duplicate (frozen) MACs, like FRR's `clear evpn dup-addr`."""
        self.journal.now = now
        for v, m in self.mobility.duplicates(vni, mac.lower() if mac else None):
            self.local_macs.thaw(v, m)
        return self._effects()

    def clear_peer(self, now: float, peer: str | None = None) -> list[str]:
        """`evpnctl clear peer`: peers held down over their max_routes (one, or all) may
        come back (their next session is not ended) -> the peers released."""
        self.journal.now = now
        return self.bgp.clear_peer(peer)

    def hold_seconds(self, peer: str, now: float) -> float | None:
        """A peer held down over its max_routes: the seconds left, 0.0 for until `clear peer`;
        None when it is not held down (the speaker keeps it down in ExaBGP that long)."""
        if not self.bgp.limits.is_down(peer):
            return None
        until = self.bgp.limits.down[peer]
        return 0.0 if until is None else max(until - now, 0.001)

    def drain_notices(self) -> list[Notice]:
        """Notable events since the last call, oldest first, for the daemon to log. Each is
        {"event", "at", ...}: duplicate_detected (vni, mac, ips), mac_moved_away (vni, mac,
        vtep, seq), stale_swept (peer, paths), paths_rejected (peer, reasons: {reason: n}, one
        per UPDATE, never one per route), local_mac_refused (vni, mac, reason)."""
        return self.journal.drain_notices()

    def has_notices(self) -> bool:
        return bool(self.journal.notices)

    def advertised(self) -> list[Path]:
        """Every local path currently advertised (the speaker replays these after a restart)."""
        return self.origination.advertised()

    def compute_desired(self) -> DesiredState:
        """The desired state from scratch (tests compare it with the incremental one)."""
        frozen = Frozen(self.mobility.frozen_fdb, self.mobility.frozen_neigh)
        return compute_desired(self.rib, self.settings, frozen)
