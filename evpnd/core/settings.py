"""What the core needs from the configuration, as plain frozen values (no pydantic, no yaml).

The daemon builds a CoreSettings from its validated Config (evpnd.config.core_settings); tests
may build one directly. `SettingsView` derives, once per settings, what the hot path looks up.
"""

from __future__ import annotations

from dataclasses import dataclass

from evpnd.core.mobility import vtep_rank
from evpnd.core.rib import ImportMap
from evpnd.core.validation import AddressCheck


@dataclass(frozen=True, slots=True)
class L2VniSettings:
    vni: int
    rd: str
    export_rts: tuple[str, ...]
    import_rts: tuple[str, ...] | None = None  # None: FRR's auto rule (RT number == VNI)
    sticky_macs: frozenset[str] = frozenset()  # lower-case MACs advertised sticky
    l3vni: int | None = None  # the L3VNI this L2VNI routes in (symmetric IRB)
    max_local_macs: int | None = None  # local MACs advertised at most (None: no limit)


@dataclass(frozen=True, slots=True)
class L3VniSettings:
    vni: int
    rd: str
    export_rts: tuple[str, ...]
    import_rts: tuple[str, ...] | None = None
    router_mac: str | None = None
    advertise_prefixes: tuple[str, ...] = ()  # networks as text, "10.1.0.0/24"


@dataclass(frozen=True, slots=True)
class DadSettings:
    """Duplicate address detection (FRR's dup-addr-detection max-moves N time S, freeze)."""

    enabled: bool = True
    max_moves: int = 5
    window: float = 180.0


@dataclass(frozen=True, slots=True)
class PeerLimitSettings:
    """FRR's `neighbor X maximum-prefix N [warning-only] [restart M]` for one peer."""

    peer: str
    max_routes: int
    warning_only: bool = False
    restart_minutes: int = 0  # 0: the peer stays down until cleared


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """Everything the core reads from the configuration."""

    router_id: str
    asn: int
    vtep: str
    l2vnis: tuple[L2VniSettings, ...] = ()
    l3vnis: tuple[L3VniSettings, ...] = ()
    duplicate_detection: DadSettings = DadSettings()
    graceful_restart: int = 0  # our restart time for l2vpn/evpn (RFC 4724), 0: off
    peer_limits: tuple[PeerLimitSettings, ...] = ()


class SettingsView:
    """The settings reduced to what the hot path looks up, built once per settings."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.vtep = settings.vtep
        self.vtep_rank = vtep_rank(self.vtep)
        self.address = AddressCheck(self.vtep)  # import validation of next hops, PMSI
        self.router_id = settings.router_id
        self.asn = settings.asn
        self.imports = ImportMap(settings.l2vnis, settings.l3vnis)
        self.l2 = {item.vni: item for item in settings.l2vnis}
        self.l3 = {item.vni: item for item in settings.l3vnis}
        every: tuple[L2VniSettings | L3VniSettings, ...] = (*settings.l2vnis, *settings.l3vnis)
        self.rd = {item.vni: item.rd for item in every}
        self.own_rds = frozenset(self.rd.values())
        self.export = {item.vni: item.export_rts for item in every}
        self.l3_of = {
            item.vni: self.l3.get(item.l3vni) if item.l3vni is not None else None
            for item in settings.l2vnis
        }
        self.sticky = {item.vni: item.sticky_macs for item in settings.l2vnis}
        self.graceful_restart = settings.graceful_restart
        self.peer_limits = {item.peer: item for item in settings.peer_limits}
        self.max_local_macs = {
            item.vni: item.max_local_macs for item in settings.l2vnis if item.max_local_macs
        }
