"""evpnd's own routes: the paths it originates, and the BGP effects of changing them.

OwnRoutes builds the paths from the configuration (pure: config view in, Paths out): a type-3
per L2VNI, a type-5 per configured prefix, the type-2s of a local MAC (OwnRoutes). Origination
puts them in the RIB as the LOCAL_PEER's paths, hands the best-path changes to the indexes, and
turns the changes of one call into Effects (what the speaker announces and withdraws).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from evpnd.core.indexes import BestPathIndexes
from evpnd.core.mobility import LocalMacState
from evpnd.core.rib import Rib
from evpnd.core.settings import SettingsView
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


@dataclass
class Effects:
    """What the speaker must do after an event.

    `withdraw` holds exactly the Path that was announced (ExaBGP matches withdraws on the
    label and ESI too). Within one Effects a key appears at most once in each list; when the
    NLRI itself changed (label, ESI, gateway) the old path is withdrawn and the new announced.
    """

    announce: list[Path] = field(default_factory=list)
    withdraw: list[Path] = field(default_factory=list)
    # sessions to end: (peer, NOTIFICATION code, subcode), e.g. a peer over its max_routes
    notify: list[tuple[str, int, int]] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.announce.extend(other.announce)
        self.withdraw.extend(other.withdraw)
        self.notify.extend(other.notify)

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw or self.notify)


def is_link_local(ip: str) -> bool:
    """IPv6 fe80::/10 only: FRR treats IPv4 link-local hosts like any other."""
    if ":" not in ip:
        return False
    try:
        return ipaddress.IPv6Address(ip).is_link_local
    except ValueError:
        return False


def nlri_changed(old: Path, new: Path) -> bool:
    """True when ExaBGP would see a different NLRI (it keys its RIB on the packed NLRI)."""
    return (
        old.vni != new.vni
        or old.l3vni != new.l3vni
        or old.esi != new.esi
        or old.gateway != new.gateway
    )


class OwnRoutes:
    """The paths evpnd originates, as one configuration wants them. Built anew on a config
    change (the cached attributes carry the configured route targets and router MAC)."""

    def __init__(self, view: SettingsView) -> None:
        self.view = view
        self._attrs: dict[tuple[int, bool, int, bool], Attributes] = {}

    def static_paths(self) -> dict[RouteKey, Path]:
        """Type-3 per L2VNI (ingress replication, RFC 8365 section 9) and configured type-5s."""
        view = self.view
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
                pkey = PrefixKey(view.rd[vni], 0, net)
                gateway = "::" if ":" in net else "0.0.0.0"
                out[pkey] = Path(pkey, LOCAL_PEER, view.vtep, vni=vni, gateway=gateway, attrs=attrs)
        return out

    def attributes(self, vni: int, with_l3: bool, seq: int, sticky: bool) -> Attributes:
        ck = (vni, with_l3, seq, sticky)
        attrs = self._attrs.get(ck)
        if attrs is None:
            view = self.view
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
            if len(self._attrs) > 10_000:
                self._attrs.clear()
            self._attrs[ck] = attrs
        return attrs

    def mac_path(self, st: LocalMacState) -> Path:
        """The MAC-only type-2 route of a local MAC (mac_paths' first)."""
        view = self.view
        vni = st.vni
        key = MacIpKey(view.rd[vni], 0, st.mac, None)
        attrs = self.attributes(vni, False, st.seq, st.sticky)
        return Path(key, LOCAL_PEER, view.vtep, vni=vni, attrs=attrs)

    def mac_paths(self, st: LocalMacState) -> dict[RouteKey, Path]:
        """The type-2 routes of a local MAC. Like FRR, only MAC+IP routes carry the L3VNI
        label, its route targets and the router MAC (RFC 9135 section 5.1.1)."""
        view = self.view
        vni, mac = st.vni, st.mac
        rd = view.rd[vni]
        out: dict[RouteKey, Path] = {}
        if st.present:
            key = MacIpKey(rd, 0, mac, None)
            attrs = self.attributes(vni, False, st.seq, st.sticky)
            out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, attrs=attrs)
        if st.ips:
            l3 = view.l3_of.get(vni)
            with_l3 = self.attributes(vni, True, st.seq, st.sticky)
            l2_only = self.attributes(vni, False, st.seq, st.sticky)
            l3vni = l3.vni if l3 is not None else 0
            for ip in st.ips:
                key = MacIpKey(rd, 0, mac, ip)
                if is_link_local(ip):  # FRR: no L3 attributes for IPv6 link-local hosts
                    out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, attrs=l2_only)
                else:
                    out[key] = Path(key, LOCAL_PEER, view.vtep, vni=vni, l3vni=l3vni, attrs=with_l3)
        return out


class Origination:
    """Own paths into the RIB (as LOCAL_PEER's), their best-path changes to the indexes, and
    what was advertised before, so that each entry point returns the Effects of exactly what
    changed."""

    def __init__(self, view: SettingsView, rib: Rib, indexes: BestPathIndexes) -> None:
        self.own = OwnRoutes(view)
        self.rib = rib
        self.indexes = indexes
        self._before: dict[RouteKey, Path | None] = {}  # local paths at the start of a call
        # (l2vni, MAC) -> its type-2 keys: the key itself while it is one (most MACs: a set
        # each was 21 MB at 100k local MACs), a set from two on
        self.local_keys: dict[tuple[int, str], RouteKey | set[RouteKey]] = {}

    def configure(self, view: SettingsView) -> None:
        self.own = OwnRoutes(view)  # own attributes carry the configured RTs and router MAC

    def advertised(self) -> list[Path]:
        """Every local path currently advertised."""
        return list(self.rib.adj_in.get(LOCAL_PEER, {}).values())

    def remember_before(self, key: RouteKey) -> None:
        if key not in self._before:
            self._before[key] = self.rib.get(LOCAL_PEER, key)

    def set_local(self, key: RouteKey, path: Path | None) -> None:
        """Advertise `path` under `key` (None: withdraw it)."""
        current = self.rib.get(LOCAL_PEER, key)
        if current == path:
            return
        self.remember_before(key)
        if isinstance(key, MacIpKey):
            vni = path.vni if path is not None else current.vni if current is not None else 0
            if path is None:
                self._forget_key((vni, key.mac), key)
            else:
                self._note_key((vni, key.mac), key)
        if path is None:
            old, new = self.rib.remove(LOCAL_PEER, key)
        else:
            old, new = self.rib.put(path)
        if old is not new:
            self.indexes.best_changed(key, old, new)

    def _note_key(self, mk: tuple[int, str], key: RouteKey) -> None:
        keys = self.local_keys.get(mk)
        if keys is None:
            self.local_keys[mk] = key
        elif isinstance(keys, set):
            keys.add(key)
        elif keys != key:
            self.local_keys[mk] = {keys, key}

    def _forget_key(self, mk: tuple[int, str], key: RouteKey) -> None:
        keys = self.local_keys.get(mk)
        if isinstance(keys, set):
            keys.discard(key)
            if not keys:
                del self.local_keys[mk]
        elif keys is not None and keys == key:
            del self.local_keys[mk]

    def keys_of(self, mk: tuple[int, str]) -> list[RouteKey]:
        """The type-2 keys advertised for a local MAC."""
        keys = self.local_keys.get(mk)
        if keys is None:
            return []
        return list(keys) if isinstance(keys, set) else [keys]

    def add_first(self, path: Path) -> None:
        """set_local for the first type-2 path of a MAC with none (LocalMacs._first_seen): no
        current path to look up or compare with."""
        key = path.key
        mk = (path.vni, key.mac) if isinstance(key, MacIpKey) else None
        if mk is None or mk in self.local_keys:
            self.set_local(key, path)  # not a first path after all: the general way
            return
        if key not in self._before:
            self._before[key] = None
        self.local_keys[mk] = key
        old, new = self.rib.put(path)
        if old is not new:
            self.indexes.best_changed(key, old, new)

    def add_first_mac(self, mk: tuple[int, str], path: Path) -> None:
        """add_first for LocalMacs.local_mac_batch's case, which the caller has checked: `path`
        is the MAC-only route of a local MAC with no path for its key from anyone, no own keys
        and no path in its VNI's MAC index. So the key's best path is this one, and the index
        store is the one best_changed would make (the MAC's group in its own VNI: local paths
        feed only their VNI); no FDB entry to refresh (a local MAC has none)."""
        key = path.key
        if key not in self._before:
            self._before[key] = None
        self.local_keys[mk] = key
        rib = self.rib
        table = rib.adj_in.get(LOCAL_PEER)
        if table is None:
            table = rib.adj_in[LOCAL_PEER] = {}
        table[key] = path
        rib.best[key] = path
        self.indexes.macs[mk] = path

    def sync_mac(self, st: LocalMacState, wanted: dict[RouteKey, Path]) -> None:
        """Make the type-2 routes advertised for a local MAC exactly `wanted`."""
        for key in self.keys_of((st.vni, st.mac)):
            if key not in wanted:
                self.set_local(key, None)
        for key, path in wanted.items():
            self.set_local(key, path)

    def replace_all(self, wanted: dict[RouteKey, Path]) -> None:
        """After a configuration change: the local paths become exactly `wanted`, in the RIB
        only (the caller re-indexes everything at once)."""
        for key in list(self.rib.adj_in.get(LOCAL_PEER, ())):
            if key not in wanted:
                self.remember_before(key)
                self.rib.remove(LOCAL_PEER, key)
        for key, path in wanted.items():
            if self.rib.get(LOCAL_PEER, key) != path:
                self.remember_before(key)
                self.rib.put(path)
        self.local_keys = {}
        for key, path in self.rib.adj_in.get(LOCAL_PEER, {}).items():
            if isinstance(key, MacIpKey):
                self._note_key((path.vni, key.mac), key)

    def effects(self) -> Effects:
        """What changed in the local paths since the last call."""
        effects = Effects()
        if not self._before:
            return effects
        local = self.rib.adj_in.get(LOCAL_PEER, {})
        for key, before in self._before.items():
            after = local.get(key)
            if before == after:
                continue
            if after is None:
                if before is not None:
                    effects.withdraw.append(before)
            elif before is None:
                effects.announce.append(after)
            else:
                if nlri_changed(before, after):
                    effects.withdraw.append(before)
                effects.announce.append(after)
        self._before = {}
        return effects
