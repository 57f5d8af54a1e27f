"""The control API's replies as pydantic models: the JSON `evpnctl --json` prints.

These models are the contract with scripts; their JSON schemas are published in docs/schema/
(regenerate with `python -m evpnd.api.schema`; a test fails when they are stale). Add fields,
never rename or remove them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


RouteFlag = Literal["best", "stale", "frozen", "sticky", "local"]


class RouteEntry(_Reply):
    """One path of one EVPN route (a route may have several paths, one per peer)."""

    type: Literal[2, 3, 5] = Field(description="EVPN route type")
    rd: str = Field(description="route distinguisher")
    prefix: str = Field(description="FRR-like NLRI text, e.g. [2]:[0]:[48]:[mac]:[32]:[ip]")
    mac: str | None = None
    ip: str | None = Field(default=None, description="type 2: IP; type 5: the prefix (net/len)")
    origin: str | None = Field(default=None, description="type 3: originating router (VTEP)")
    etag: int = 0
    vni: int = Field(description="label 1: L2VNI (type 2/3) or L3VNI (type 5)")
    l3vni: int = Field(default=0, description="type 2 label 2 (symmetric IRB), 0 when absent")
    next_hop: str
    seq: int = Field(default=0, description="MAC mobility sequence number (RFC 7432 7.7)")
    flags: list[RouteFlag] = []
    peer: str = Field(description="the peer that sent it, or 'local' for evpnd's own")
    esi: str = "00:00:00:00:00:00:00:00:00:00"
    route_targets: list[str] = []
    router_mac: str | None = None
    gateway: str | None = None
    as_path: list[int] = []
    originator_id: str | None = Field(default=None, description="set by route reflectors")


class RoutesReply(_Reply):
    routes: list[RouteEntry]


class PeerEntry(_Reply):
    address: str
    remote_as: int | None = None
    description: str = ""
    state: str = Field(description="idle, connected, up (Established) or down")
    uptime: float | None = Field(default=None, description="seconds in the current state 'up'")
    received: int = Field(default=0, description="paths received (announcements)")
    accepted: int = Field(default=0, description="paths received and imported")
    rejected: int = Field(default=0, description="paths received and not imported")
    advertised: int = Field(default=0, description="local paths announced to this peer")
    last_error: str = ""
    rejects: dict[str, int] = Field(
        default={}, description="paths rejected by import validation and loop checks, per reason"
    )
    decode_errors: dict[str, int] = Field(
        default={}, description="RFC 7606 error handling of the peer's UPDATEs, per case"
    )
    max_routes: int | None = Field(default=None, description="the peer's route limit, if any")
    limit_state: str = Field(
        default="",
        description="'' within its limit, 'warning' (warning-only) or 'max-routes' "
        "(session ended and held down until restart time or `clear peer`)",
    )
    limit_until: float | None = Field(
        default=None, description="max-routes: unix time the peer may come back (None: cleared)"
    )


class PeersReply(_Reply):
    router_id: str
    asn: int
    uptime: float = Field(description="seconds since evpnd started")
    exabgp_pid: int | None = None
    exabgp_restarts: int = 0
    peers: list[PeerEntry]


class VniTunnel(_Reply):
    """A static tunnel (issue 9) of a VNI: an L2 one is a port of the L2VNI's bridge, a GRE one
    routes its prefixes in the L3VNI's table."""

    name: str
    type: str
    remote: str
    status: str = Field(description="ok, or its problem (e.g. 'remote unreachable (no route)')")


class VniEntry(_Reply):
    vni: int
    kind: Literal["l2", "l3"]
    bridge: str | None = None
    vxlan_device: str
    rd: str
    import_rts: list[str] = Field(description="configured import RTs, or ['auto (*:VNI)']")
    export_rts: list[str]
    local_macs: int = 0
    remote_macs: int = 0
    remote_vteps: list[str] = []
    l3vni: int | None = Field(default=None, description="L2VNI: the L3VNI it routes through")
    l2vnis: list[int] = Field(default=[], description="L3VNI: its L2VNIs")
    table: int | None = Field(default=None, description="L3VNI: the tenant's routing table")
    prefixes: int = Field(default=0, description="L3VNI: type-5 prefixes installed")
    tunnels: list[VniTunnel] = Field(default=[], description="static tunnels joined to it")


class VnisReply(_Reply):
    vnis: list[VniEntry]


class MacEntry(_Reply):
    """A MAC of one VNI, as FRR's `show evpn mac vni all` lists it."""

    vni: int
    mac: str
    type: Literal["local", "remote"]
    vtep: str | None = Field(default=None, description="remote: the VTEP it lives behind")
    ips: list[str] = []
    local_seq: int = 0
    remote_seq: int = 0
    sticky: bool = False
    duplicate: bool = Field(default=False, description="flagged by duplicate-address detection")
    frozen: bool = Field(default=False, description="duplicate, and its route is held")
    moves: int = Field(default=0, description="moves counted in the current DAD window")
    paths: int = Field(default=0, description="candidate type-2 paths carrying this MAC")


class MacsReply(_Reply):
    macs: list[MacEntry]


class KernelDiffEntry(_Reply):
    """One kernel object that is not what it should be."""

    kind: str = Field(description="fdb, bridge_fdb, flood, neigh, route, rmac, rmac_fdb")
    vni: int
    key: str = Field(description="MAC, VTEP, IP or prefix")
    problem: Literal["missing", "extra", "different", "conflict"] = Field(
        description="missing: wanted, not in the kernel; extra: owned, not wanted; different: "
        "another value; conflict: wanted, but an entry evpnd does not own is in the way"
    )
    wanted: str | None = None
    kernel: str | None = None


class KernelDiffReply(_Reply):
    converged: bool
    entries: list[KernelDiffEntry]


class ClearPeerReply(_Reply):
    address: str | None = None
    released: list[str] = Field(default=[], description="peers no longer held down")


class ClearDupReply(_Reply):
    vni: int | None = None
    mac: str | None = None
    cleared: int | None = Field(default=None, description="MACs released, when the core says")


class LocalMacInfo(_Reply):
    present: bool = Field(description="the MAC itself is learned on a local port")
    ips: list[str] = []
    seq: int = 0
    sticky: bool = False
    advertised: bool = Field(description="evpnd advertises it (it wins against remote paths)")


class ExplainVni(_Reply):
    """The chain for one VNI: kernel entry <- winning path <- peer and originator, and why."""

    vni: int
    kernel: str | None = Field(description="the wanted kernel value (VTEP or MAC), None: none")
    winner: RouteEntry | None = None
    reason: str | None = Field(default=None, description="why the winner won")
    why_not: str | None = Field(default=None, description="why nothing is installed")
    note: str | None = None
    duplicate: bool = False
    local: LocalMacInfo | None = None
    candidates: list[RouteEntry] = Field(default=[], description="every path, winner first")


class HostRoute(_Reply):
    vni: int
    prefix: str
    kernel: str | None = None


class PolicyVerdict(_Reply):
    to: str
    proto: str | None = None
    port: int | None = None
    action: Literal["allow", "deny"]
    rule: str | None = Field(default=None, description="the first matching rule; None: default")
    src_groups: list[str] = []
    dst_groups: list[str] = []


class ExplainReply(_Reply):
    query: str
    kind: Literal["mac", "ip"]
    vnis: list[ExplainVni]
    routes: list[HostRoute] = Field(default=[], description="IP: routes in L3VNI tables")
    why_not: str | None = Field(default=None, description="when no VNI knows the MAC or IP")
    policy: PolicyVerdict | None = Field(default=None, description="with --to: the verdict")


class PolicyGroup(_Reply):
    name: str
    vni: int
    static: int = Field(description="configured prefixes and MACs")
    learned: int = Field(description="endpoints EVPN knows (local and remote) that are members")
    macs: int
    ip4: int
    ip6: int


class PolicyRule(_Reply):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)

    name: str
    from_: str = Field(alias="from")
    to: str
    proto: str | None = None
    ports: list[int] = []
    action: Literal["allow", "deny"]
    log: bool = False
    packets: int
    bytes: int


class PolicyProblem(_Reply):
    where: str
    reason: str


class PolicyChange(_Reply):
    at: float
    commands: int
    seconds: float
    error: str | None = None


class PolicyReply(_Reply):
    enabled: bool
    default: Literal["allow", "deny"] | None = None
    default_packets: int = 0
    default_bytes: int = 0
    bridge_conntrack: bool
    inet_conntrack: bool
    groups: list[PolicyGroup] = []
    rules: list[PolicyRule] = []
    problems: list[PolicyProblem] = []
    passes: int = 0
    changes: int = 0
    repairs: int = Field(default=0, description="passes that repaired evpnd's tables (drift)")
    last_change: PolicyChange | None = None


class StatusReply(_Reply):
    version: str
    router_id: str
    asn: int
    uptime: float
    vnis: int
    peers_up: int
    peers: int
    routes: int
    reloads: int = 0
    # The dataplane at scale (issue 17): what the periodic full pass costs, what it wrote, and
    # the VNIs whose devices could not be made (by config field path).
    full_pass_cpu_seconds: float = Field(default=0.0, description="CPU of the last full pass")
    full_pass_seconds: float = Field(default=0.0, description="duration of the last full pass")
    full_passes: int = 0
    kernel_writes: int = Field(default=0, description="netlink writes since start")
    device_problems: list[str] = []
    monitor_filter: str = Field(
        default="",
        description="the netlink monitor's in-kernel filter: ebpf-tid or ebpf-task (the echo of "
        "evpnd's own adds and deletes dropped), classic (own adds only: without CAP_BPF)",
    )


# Every command's reply model: the schema files and the client's decoder use this table.
class MtuOverhead(_Reply):
    """The bytes an encapsulation adds (evpnd/dataplane/mtu.py)."""

    type: str
    family: int
    outer_ip: int
    udp: int
    header: int = Field(description="VXLAN/GENEVE/GRE header without options or key")
    inner_ethernet: int
    key: int
    options: int
    total: int


class MtuDevice(_Reply):
    device: str
    type: str
    vni: int | None = None
    remote: str | None = Field(default=None, description="a static tunnel's remote")
    local: str | None = None
    underlay_interface: str | None = Field(
        default=None, description="egress interface of the route to the remote; None: no route"
    )
    underlay_mtu: int | None = None
    overhead: MtuOverhead | None = None
    overlay_mtu: int | None = None
    source: str | None = Field(default=None, description="derived | set | underlay_mtu")
    ownership: str | None = Field(default=None, description="created | owned | adopted")
    status: str = "ok"


class MtuReply(_Reply):
    devices: list[MtuDevice]
    warnings: list[str]


REPLIES: dict[str, type[BaseModel]] = {
    "show routes": RoutesReply,
    "show peers": PeersReply,
    "show vni": VnisReply,
    "show macs": MacsReply,
    "show kernel diff": KernelDiffReply,
    "clear dup-addr": ClearDupReply,
    "clear peer": ClearPeerReply,
    "explain": ExplainReply,
    "show status": StatusReply,
    "show policy": PolicyReply,
    "show mtu": MtuReply,
}
