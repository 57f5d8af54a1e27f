"""The configuration: pydantic models loaded from YAML.

Errors name the file, the field path and the reason, because operators edit these files by hand.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    IPvAnyInterface,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from evpnd import vxlan_mode
from evpnd.core import (
    CoreSettings,
    DadSettings,
    L2VniSettings,
    L3VniSettings,
    PeerLimitSettings,
)
from evpnd.policy import schema as policy_schema
from evpnd.routes.communities import normalize_route_target
from evpnd.routes.rd import RDError, auto_rd, normalize_rd, stable_rd_indexes
from evpnd.static_tunnels import StaticTunnelConfig, tunnel_problems

VNI_MAX = 16_777_215
ASN_MAX = 4_294_967_295
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")
_PASSWORD_UNSAFE = re.compile(r'["\\;{}\s]')

# strict: YAML's `true` would otherwise be taken as VNI/AS 1
Vni = Annotated[
    int, Field(strict=True, ge=1, le=VNI_MAX, description="24-bit VXLAN network identifier")
]
Asn = Annotated[int, Field(strict=True, ge=1, le=ASN_MAX)]
IfName = Annotated[str, Field(pattern=_IFNAME_RE.pattern, description="Linux interface name")]


class ConfigError(Exception):
    """A configuration that cannot be used. `problems` holds (field path, reason) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(
            f"{self.file}: {field}: {reason}" if field else f"{self.file}: {reason}"
            for field, reason in self.problems
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _mac(value: str | None) -> str | None:
    if value is None:
        return None
    if not _MAC_RE.match(value):
        raise ValueError(f"not a MAC address (aa:bb:cc:dd:ee:ff): {value!r}")
    return value.lower()


def _rts(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    try:
        return [normalize_route_target(v) for v in values]
    except RDError as exc:
        raise ValueError(str(exc)) from exc


class PeerConfig(_Strict):
    address: IPvAnyAddress
    remote_as: Asn
    local_address: IPvAnyAddress | None = None
    password: str | None = Field(default=None, description="TCP MD5 (RFC 2385)")
    hold_time: Annotated[int, Field(ge=0, le=65535)] = 90
    ttl_security: Annotated[int, Field(ge=1, le=254)] | None = Field(
        default=None, description="GTSM (RFC 5082): accept only peers this many hops away"
    )
    passive: bool = False
    description: str = ""
    # FRR's `neighbor X maximum-prefix N [warning-only] [restart M]`
    max_routes: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="routes held from the peer before the session is ended"
    )
    max_routes_warning_only: bool = False
    max_routes_restart: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=0, description="minutes until the peer may come back; 0: until `clear peer`"
    )

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        # It goes into ExaBGP's configuration inside quotes; Linux keys are at most 80 bytes
        # (TCP_MD5SIG_MAXKEYLEN).
        if v is not None and (_PASSWORD_UNSAFE.search(v) or not 1 <= len(v.encode()) <= 80):
            raise ValueError(
                "1 to 80 bytes without quotes, backslashes, ';', braces or white space"
            )
        return v

    @field_validator("hold_time")
    @classmethod
    def _hold(cls, v: int) -> int:
        if 0 < v < 3:
            raise ValueError("hold time must be 0 or at least 3 seconds (RFC 4271 section 4.2)")
        return v


class L2VniConfig(_Strict):
    vni: Vni
    bridge: IfName
    vxlan_device: IfName | None = None
    rd: str | None = None
    import_rts: list[str] | None = None
    export_rts: list[str] | None = None
    access_ports: list[IfName] = []
    sticky_macs: list[str] = Field(default=[], description="MACs advertised sticky (static)")
    svi_address: IPvAnyInterface | None = Field(
        default=None, description="address for the bridge (SVI), e.g. 10.1.0.1/24"
    )
    max_local_macs: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="local MACs advertised at most; further ones are counted"
    )
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = Field(
        default=None, description="vxlan_mode: single: the VNI's VLAN on the one bridge"
    )

    _n_rd = field_validator("rd")(lambda v: None if v is None else _norm_rd(v))
    _n_rts = field_validator("import_rts", "export_rts")(lambda v: _rts(v))

    @field_validator("svi_address", mode="before")
    @classmethod
    def _svi_text(cls, v: object) -> object:
        if v is not None and not isinstance(v, str):
            raise ValueError("give the address as text with its length, e.g. 10.1.0.1/24")
        return v

    @field_validator("sticky_macs")
    @classmethod
    def _sticky(cls, v: list[str]) -> list[str]:
        return [m for m in (_mac(x) for x in v) if m]

    @property
    def device(self) -> str:
        return self.vxlan_device or f"vx{self.vni}"


class L3VniConfig(_Strict):
    vni: Vni
    table: Annotated[int, Field(ge=1, le=4_294_967_295)] | None = None
    vrf: IfName | None = None
    router_mac: str | None = None
    advertise_prefixes: list[IPvAnyNetwork] = []
    l2vnis: list[Vni] = []
    rd: str | None = None
    import_rts: list[str] | None = None
    export_rts: list[str] | None = None
    vxlan_device: IfName | None = None
    bridge: IfName | None = None

    _n_rd = field_validator("rd")(lambda v: None if v is None else _norm_rd(v))
    _n_rts = field_validator("import_rts", "export_rts")(lambda v: _rts(v))
    _n_mac = field_validator("router_mac")(lambda v: _mac(v))

    @model_validator(mode="after")
    def _table_or_vrf(self) -> L3VniConfig:
        if self.table is None and self.vrf is None:
            raise ValueError("give the tenant's routing table (table: N) or a VRF (vrf: NAME)")
        return self

    @property
    def device(self) -> str:
        return self.vxlan_device or f"vx{self.vni}"

    @property
    def bridge_name(self) -> str:
        return self.bridge or f"br{self.vni}"


class ApiConfig(_Strict):
    socket: Path = Path("/run/evpnd/evpnd.sock")
    group: str | None = None
    mode: Annotated[int, Field(ge=0, le=0o777)] = 0o660


class MetricsConfig(_Strict):
    enabled: bool = False
    address: IPvAnyAddress = ipaddress.IPv4Address("127.0.0.1")
    port: Annotated[int, Field(ge=1, le=65535)] = 9617


class DuplicateDetectionConfig(_Strict):
    """FRR's `dup-addr-detection max-moves N time S` and freeze."""

    enabled: bool = True
    max_moves: Annotated[int, Field(ge=2, le=1000)] = 5
    time: Annotated[int, Field(ge=2, le=1800)] = 180


class ExabgpConfig(_Strict):
    listen: bool = Field(default=True, description="accept incoming sessions on :179 (like FRR)")
    graceful_restart: Annotated[int, Field(ge=0, le=4095)] = 0
    respawn_max_backoff: Annotated[float, Field(gt=0)] = 30.0
    liveness_timeout: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description="seconds ExaBGP may leave a ping unanswered before it is "
        "killed and restarted (frozen); 0 disables the check",
    )


class Config(_Strict):
    router_id: ipaddress.IPv4Address
    asn: Asn
    vtep: IPvAnyAddress
    peers: list[PeerConfig] = []
    l2vnis: list[L2VniConfig] = []
    l3vnis: list[L3VniConfig] = []
    static_tunnels: list[StaticTunnelConfig] = []
    api: ApiConfig = ApiConfig()
    metrics: MetricsConfig = MetricsConfig()
    runtime_dir: Path = Path("/run/evpnd")
    duplicate_detection: DuplicateDetectionConfig = DuplicateDetectionConfig()
    exabgp: ExabgpConfig = ExabgpConfig()
    underlay_mtu: Annotated[int, Field(ge=1280, le=65535)] | None = Field(
        default=None, description="override; default: the MTU of the route's egress interface"
    )
    sweep_hold_time: Annotated[float, Field(ge=0)] = Field(
        default=30.0, description="seconds before stale kernel entries are swept after a start"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    vxlan_mode: Literal["per-vni", "single"] = Field(
        default="per-vni", description="single: one VXLAN device (vnifilter) for every L2VNI"
    )
    policy: policy_schema.PolicyConfig | None = Field(
        default=None, description="network policy enforced with nftables (README: Network policy)"
    )

    # Auto-RD index per VNI once a reload has fixed them (keep_rd_indexes); else positional.
    _rd_indexes: dict[int, int] = PrivateAttr(default_factory=dict)

    # FRR's auto-derivation (DESIGN rule 6): RD router-id:index, RT ASN:VNI.
    def rd_for(self, vni: int) -> str:
        item = self.vni(vni)
        return item.rd or auto_rd(str(self.router_id), self.rd_index(vni))

    def rd_index(self, vni: int) -> int:
        """At start the VNI's position in the file (l2vnis then l3vnis, from 1); after a reload
        the index it had before (a new VNI takes the lowest free one), see keep_rd_indexes."""
        if vni in self._rd_indexes:
            return self._rd_indexes[vni]
        return _vni_index(self)[vni][0]  # KeyError for an unknown VNI, as before

    def keep_rd_indexes(self, previous: Config) -> None:
        """Reload: every VNI still configured keeps the auto-RD index it had in `previous`."""
        before = {item.vni: previous.rd_index(item.vni) for item in previous.all_vnis()}
        self._rd_indexes = stable_rd_indexes(before, [item.vni for item in self.all_vnis()])

    def export_rts_for(self, vni: int) -> list[str]:
        item = self.vni(vni)
        return item.export_rts if item.export_rts is not None else [self.auto_rt(vni)]

    def import_rts_for(self, vni: int) -> list[str] | None:
        """Explicit import RTs, or None meaning 'auto: match any RT whose number is the VNI'."""
        return self.vni(vni).import_rts

    def auto_rt(self, vni: int) -> str:
        # FRR (bgpd/bgp_evpn.c form_auto_rt) takes the low 16 bits of the AS, also of a 4-byte AS
        return f"{self.asn & 0xFFFF}:{vni}"

    def all_vnis(self) -> list[L2VniConfig | L3VniConfig]:
        return [*self.l2vnis, *self.l3vnis]

    def vni(self, vni: int) -> L2VniConfig | L3VniConfig:
        return _vni_index(self)[vni][1]

    def l2_device(self, item: L2VniConfig) -> str:
        """An L2VNI's VXLAN device: its own, or in vxlan_mode single the shared one."""
        return vxlan_mode.single_names(self)[1] if self.vxlan_mode == "single" else item.device

    def l3vni_of(self, l2vni: int) -> L3VniConfig | None:
        return _l3_index(self).get(l2vni)


_INDEX: list = [None, None, None, -1, {}]  # config, l2vnis, l3vnis, count, the index


def _vni_index(cfg: Config) -> dict[int, tuple[int, L2VniConfig | L3VniConfig]]:
    """VNI -> (1-based position, item) of the last Config asked about: the API and the core
    look VNIs up one at a time, and a scan per lookup made `show vni` N x N (issue 17). Rebuilt
    for another Config (a reload) or changed VNI lists; the first of a duplicated VNI wins, as
    with the scan."""
    c, l2, l3, count, index = _INDEX
    if c is not cfg or l2 is not cfg.l2vnis or l3 is not cfg.l3vnis or count != len(l2) + len(l3):
        index = {}
        for position, item in enumerate(cfg.all_vnis(), start=1):
            index.setdefault(item.vni, (position, item))
        _INDEX[:] = [cfg, cfg.l2vnis, cfg.l3vnis, len(cfg.l2vnis) + len(cfg.l3vnis), index]
    return index


_L3_INDEX: list = [None, None, -1, {}]  # config, l3vnis, count, the index


def _l3_index(cfg: Config) -> dict[int, L3VniConfig]:
    """L2VNI -> the L3VNI listing it, for the last Config asked about: the core and `show vni`
    ask per L2VNI, and a scan of every L3VNI's list per call made that L2 x L3 x members
    (issue 17). A Config is not changed in place (a reload builds a new one); rebuilt for
    another Config or l3vnis list. The first L3VNI listing an L2VNI wins, as with the scan."""
    c, l3, count, index = _L3_INDEX
    if c is not cfg or l3 is not cfg.l3vnis or count != len(l3):
        index = {}
        for item in cfg.l3vnis:
            for l2vni in item.l2vnis:
                index.setdefault(l2vni, item)
        _L3_INDEX[:] = [cfg, cfg.l3vnis, len(cfg.l3vnis), index]
    return index


def cross_check(cfg: Config) -> list[tuple[str, str]]:
    """Checks that span fields; each problem names the field that is wrong."""
    problems: list[tuple[str, str]] = []
    seen: dict[int, str] = {}
    for where, items in (("l2vnis", cfg.l2vnis), ("l3vnis", cfg.l3vnis)):
        for i, item in enumerate(items):
            here = f"{where}[{i}].vni"
            if item.vni in seen:
                problems.append((here, f"duplicate VNI {item.vni} (also {seen[item.vni]})"))
            else:
                seen[item.vni] = here
    peers: dict[str, int] = {}
    for i, peer in enumerate(cfg.peers):
        addr = str(peer.address)
        if addr in peers:
            problems.append(
                (f"peers[{i}].address", f"duplicate peer {addr} (also peers[{peers[addr]}])")
            )
        peers.setdefault(addr, i)
    devices: dict[str, str] = {}
    owners = [(f"l2vnis[{i}]", v.vni, (v.bridge, v.device)) for i, v in enumerate(cfg.l2vnis)]
    owners += [(f"l3vnis[{i}]", v.vni, (v.device,)) for i, v in enumerate(cfg.l3vnis)]
    owners = vxlan_mode.owners(cfg, owners)  # single mode: one bridge + VXLAN device for all
    for where, _vni, names in owners:
        for name in names:
            if name in devices and devices[name] != where:
                problems.append((where, f"interface {name} is also used by {devices[name]}"))
            devices.setdefault(name, where)
    problems += vtep_family_problems(cfg)
    l2set = {v.vni for v in cfg.l2vnis}
    for i, l3 in enumerate(cfg.l3vnis):
        for j, v in enumerate(l3.l2vnis):
            if v not in l2set:
                problems.append((f"l3vnis[{i}].l2vnis[{j}]", f"l2vni {v} is not configured"))
    if cfg.policy is not None:
        problems += policy_schema.problems(cfg.policy, l2set)
    problems += _tunnel_problems(cfg, devices)
    problems += vxlan_mode.problems(cfg)
    return problems


V6_ZERO96 = bytes(12)  # ::/96: IPv4-compatible IPv6 (RFC 4291 2.5.5.1, deprecated)


def vtep_family_problems(cfg: Config) -> list[tuple[str, str]]:
    """A VTEP address that VXLAN cannot use, or whose family the rest of the file rules out
    (issue 16). What only the host can tell (is the address on an interface) is checked at
    start by evpnd.dataplane.vtep_host."""
    vtep = cfg.vtep
    kind = next(
        (name for name, bad in (
            ("unspecified", vtep.is_unspecified), ("multicast", vtep.is_multicast),
            ("loopback", vtep.is_loopback), ("link-local", vtep.is_link_local),
        ) if bad),
        None,
    )  # fmt: skip
    if kind is not None:
        return [("vtep", f"{vtep} is a {kind} address; a VTEP needs a routable unicast one")]
    if isinstance(vtep, ipaddress.IPv6Address) and (
        vtep.ipv4_mapped or vtep.packed[:12] == V6_ZERO96
    ):
        # Also the one family of spellings where the kernel's and BGP's text (inet_ntop:
        # ::ffff:10.0.0.1) differs from ipaddress's (::ffff:a00:1), which evpnd compares in.
        return [("vtep", f"{vtep} is an IPv4 address in IPv6 form: write the IPv4 address")]
    if vtep.version != 6:
        return []
    problems: list[tuple[str, str]] = []
    locals_ = [p.local_address for p in cfg.peers]
    if locals_ and all(a is not None and a.version == 4 for a in locals_):
        problems.append((
            "vtep", f"{vtep} is IPv6 but every peer's local_address is IPv4: an IPv6 VTEP needs "
            "an IPv6 underlay (give an IPv4 vtep, or IPv6 sessions)",
        ))  # fmt: skip
    for i, l3 in enumerate(cfg.l3vnis):
        if l3.vrf is None:
            # Type-5 routes go `via VTEP onlink dev <L3 bridge>`; the kernel checks an onlink
            # IPv6 gateway against the device's l3mdev table, else main (net/ipv6/route.c,
            # ip6_route_check_nh_onlink), finds the underlay route to the VTEP on another
            # device there and refuses the route (EINVAL). In a VRF that lookup finds nothing.
            problems.append((
                f"l3vnis[{i}].vrf", "an IPv6 VTEP needs the L3VNI in a VRF (vrf: NAME): "
                "without one the kernel refuses routes via an IPv6 VTEP",
            ))  # fmt: skip
    return problems


def _tunnel_problems(cfg: Config, devices: dict[str, str]) -> list[tuple[str, str]]:
    managed = dict(devices)
    for i, l3 in enumerate(cfg.l3vnis):
        managed.setdefault(l3.bridge_name, f"l3vnis[{i}]")
        if l3.vrf:
            managed.setdefault(l3.vrf, f"l3vnis[{i}]")
    for i, l2 in enumerate(cfg.l2vnis):
        for port in l2.access_ports:
            managed.setdefault(port, f"l2vnis[{i}].access_ports")
    return tunnel_problems(
        cfg.static_tunnels,
        str(cfg.vtep),
        {v.bridge: v.vni for v in cfg.l2vnis},
        {tunnel_table(v): v.vni for v in cfg.l3vnis},
        managed,
        [v.vni for v in cfg.all_vnis()],
    )


def tunnel_table(l3: L3VniConfig) -> int:
    """The table a static GRE tunnel names for this L3VNI: its `table`, else (a VRF without
    one) the VNI, which is the table evpnd gives a VRF it creates."""
    return l3.table if l3.table is not None else l3.vni


def _norm_rd(value: str) -> str:
    try:
        return normalize_rd(value)
    except RDError as exc:
        raise ValueError(str(exc)) from exc


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"int", "str", "list[str]"}:
            continue  # pydantic's internal validator names; not a field of the user's file
        else:
            out += f".{part}" if out else part
    return out


def parse_config(data: object, file: str = "<config>") -> Config:
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ConfigError(file, [("", f"expected a mapping of settings at the top, got {kind}")])
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            problems.append((_field_path(err["loc"]), msg.removeprefix("Value error, ")))
        raise ConfigError(file, problems) from None
    problems = cross_check(cfg)
    if problems:
        raise ConfigError(file, problems)
    return cfg


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [("", f"not UTF-8 text (byte {exc.start})")]) from None
    except FileNotFoundError:
        raise ConfigError(str(path), [("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [("", f"cannot read: {exc.strerror}")]) from None
    try:
        # libyaml's parser when PyYAML has it: the pure-Python one took ~1 s of every start
        # and restart for a 4,100-VNI file (issue 17); the same safe constructors either way
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [("", f"invalid YAML: {where}{problem}")]) from None
    except RecursionError:
        raise ConfigError(str(path), [("", "invalid YAML: nested too deeply")]) from None
    return parse_config(data, str(path))


def core_settings(cfg: Config) -> CoreSettings:
    """What the core needs from a validated Config, as the core's own plain values.

    Lives here, outside evpnd.core, so that the core never imports pydantic or this module.
    """

    def l3_of(vni: int) -> int | None:
        l3 = cfg.l3vni_of(vni)
        return None if l3 is None else l3.vni

    def rts(values: list[str] | None) -> tuple[str, ...] | None:
        return None if values is None else tuple(values)

    dad = cfg.duplicate_detection
    return CoreSettings(
        router_id=str(cfg.router_id),
        asn=cfg.asn,
        vtep=str(cfg.vtep),
        l2vnis=tuple(
            L2VniSettings(
                vni=item.vni,
                rd=cfg.rd_for(item.vni),
                export_rts=tuple(cfg.export_rts_for(item.vni)),
                import_rts=rts(item.import_rts),
                sticky_macs=frozenset(item.sticky_macs),
                l3vni=l3_of(item.vni),
                max_local_macs=item.max_local_macs,
            )
            for item in cfg.l2vnis
        ),
        l3vnis=tuple(
            L3VniSettings(
                vni=item.vni,
                rd=cfg.rd_for(item.vni),
                export_rts=tuple(cfg.export_rts_for(item.vni)),
                import_rts=rts(item.import_rts),
                router_mac=item.router_mac,
                advertise_prefixes=tuple(str(net) for net in item.advertise_prefixes)
                + _advertised_tunnel_prefixes(cfg, item),
            )
            for item in cfg.l3vnis
        ),
        duplicate_detection=DadSettings(dad.enabled, dad.max_moves, float(dad.time)),
        graceful_restart=cfg.exabgp.graceful_restart,
        peer_limits=tuple(
            PeerLimitSettings(
                str(p.address), p.max_routes, p.max_routes_warning_only, p.max_routes_restart
            )
            for p in cfg.peers
            if p.max_routes is not None
        ),
    )


def _advertised_tunnel_prefixes(cfg: Config, l3: L3VniConfig) -> tuple[str, ...]:
    """Static GRE tunnels with `advertise: true`: their prefixes are type-5 routes of the L3VNI
    that owns their table, so the other leaves route to the site through this one."""
    return tuple(
        str(net)
        for t in cfg.static_tunnels
        if t.advertise and t.type == "gre" and t.table == tunnel_table(l3)
        for net in t.prefixes
        if str(net) not in {str(p) for p in l3.advertise_prefixes}
    )
