"""What the dataplane's pure modules share: the desired state's kinds (re-exported from the core,
the one place the dataplane imports them from) and the device map (VNI <-> ifindex lookups).

Pure: no I/O, no pyroute2, no asyncio, no config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The dataplane's one import of the core (desired state, its kinds, the events it emits): if
# the core renames or moves them, only these lines change.
from evpnd.core.desired import (  # noqa: F401 - re-exported
    FDB,
    FLOOD,
    NEIGH,
    RMAC,
    ROUTE,
    DesiredState,
    DirtyKey,
    RouteNextHop,
)
from evpnd.core.events import Event, LocalMac, LocalMacBatch  # noqa: F401 - re-exported

# A VRF's table ends in unreachable defaults with the highest metric (the kernel's vrf.rst; FRR
# does the same): a lookup that misses the tenant's routes must not fall through to the next
# rule, the main table of the underlay. A type-5 default (metric 0) goes in front of them.
VRF_DEFAULT_METRIC = 4278198272
VRF_DEFAULTS = ("0.0.0.0/0", "::/0")

__all__ = [
    "FDB",
    "FLOOD",
    "NEIGH",
    "RMAC",
    "ROUTE",
    "VRF_DEFAULTS",
    "VRF_DEFAULT_METRIC",
    "DesiredState",
    "DeviceMap",
    "DirtyKey",
    "Event",
    "LocalMac",
    "LocalMacBatch",
    "RouteNextHop",
    "TunnelPort",
    "VniDevices",
]


@dataclass
class VniDevices:
    """The kernel side of one VNI."""

    vni: int
    l3: bool
    bridge: int  # ifindex
    vxlan: int  # ifindex
    bridge_name: str
    vxlan_name: str
    table: int | None = None  # L3VNI: the routing table for type-5 routes
    vrf_name: str | None = None  # L3VNI with `vrf:`: the VRF device holding that table
    vrf: int | None = None  # its ifindex
    vrf_members: tuple[str, ...] = ()  # the bridges evpnd keeps in it
    vrf_moved: bool = False  # a member was put into the VRF by this set-up (see `enslave`)
    access_ports: dict[int, str] = field(default_factory=dict)  # ifindex -> name
    sticky: frozenset[str] = frozenset()
    created: list[str] = field(default_factory=list)  # names evpnd created (this run)
    # vxlan_mode single: the VNI's VLAN on the one bridge; `bridge`/`vxlan` are then shared
    # by every L2VNI and FDB entries carry the VLAN and the VNI (single_msgs.py)
    vlan: int | None = None


@dataclass(frozen=True)
class TunnelPort:
    """A static tunnel device (issue 9): L2 ones are ports of an L2VNI's bridge; a MAC learned
    on one is a site's MAC, local to this VTEP only with `advertise: true`."""

    name: str
    type: str  # geneve | gretap | gre | vxlan
    vni: int | None  # the L2VNI whose bridge it joined (None: gre, L3)
    advertise: bool


@dataclass
class DeviceMap:
    """VNI <-> ifindex lookups used by the mirror, the managers and local learning."""

    vnis: dict[int, VniDevices] = field(default_factory=dict)
    by_vxlan: dict[int, int] = field(default_factory=dict)  # vxlan ifindex -> vni
    by_bridge: dict[int, int] = field(default_factory=dict)  # bridge ifindex -> vni
    by_table: dict[int, int] = field(default_factory=dict)  # table -> L3 vni
    problems: list[str] = field(default_factory=list)
    tunnels: dict[int, TunnelPort] = field(default_factory=dict)  # static tunnel ifindex -> port
    # `evpnctl mtu`: one dict per owned overlay device (mtu.MtuPlan.as_dict() + status), and
    # the MTU warnings of the last set-up
    mtu: list[dict[str, object]] = field(default_factory=list)
    mtu_warnings: list[str] = field(default_factory=list)
    # vxlan_mode single: the shared devices (0: none) and VLAN -> VNI
    single_vxlan: int = 0
    single_bridge: int = 0
    by_vlan: dict[int, int] = field(default_factory=dict)

    def add(self, dev: VniDevices) -> None:
        self.vnis[dev.vni] = dev
        if dev.vlan is not None:  # shared devices: the VNI is found by VLAN or VNI instead
            self.single_vxlan, self.single_bridge = dev.vxlan, dev.bridge
            self.by_vlan[dev.vlan] = dev.vni
            return
        self.by_vxlan[dev.vxlan] = dev.vni
        self.by_bridge[dev.bridge] = dev.vni
        if dev.table is not None:
            self.by_table[dev.table] = dev.vni

    def only(self, vnis: set[int]) -> DeviceMap:
        """The part of the map for these VNIs (a partial dump)."""
        part = DeviceMap()
        for vni in vnis & self.vnis.keys():
            part.add(self.vnis[vni])
        part.tunnels = self.tunnels
        return part

    def fdb_vni(self, ifindex: int, self_entry: bool, src_vni: int, vlan: int | None):
        """The VNI an FDB entry on a VXLAN device belongs to, or None: per-VNI devices by
        ifindex; the single device's own (self) entries by their VNI, its bridge entries by
        their VLAN."""
        vni = self.by_vxlan.get(ifindex)
        if vni is not None or not self.single_vxlan or ifindex != self.single_vxlan:
            return vni
        if self_entry:
            dev = self.vnis.get(src_vni)
            return src_vni if dev is not None and dev.vlan is not None else None
        return self.by_vlan.get(vlan) if vlan else None

    def port_vni(self, master: int, vlan: int | None) -> int | None:
        """The VNI of a bridge entry on a port of `master`: the bridge's, or on the single
        bridge the VLAN's ((port, VLAN) -> VNI)."""
        vni = self.by_bridge.get(master)
        if vni is not None or not self.single_bridge or master != self.single_bridge:
            return vni
        return self.by_vlan.get(vlan) if vlan else None
