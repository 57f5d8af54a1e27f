"""`static_tunnels:` — static GENEVE/GRE/gretap/VXLAN peering with sites that do not speak EVPN.

The entry's model and the checks that span its fields and the rest of the configuration. Kept
apart from config.py (which re-exports the model) so the file contract of one feature reads in
one place. Each problem names the field that is wrong, as (field path, reason).

Pure: pydantic and the standard library only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, IPvAnyNetwork

TUNNEL_TYPES = ("geneve", "gretap", "gre", "vxlan")
L2_TYPES = frozenset({"geneve", "gretap", "vxlan"})  # Ethernet inside: a bridge port
VNI_TYPES = frozenset({"geneve", "vxlan"})  # a 24-bit VNI in the header
KEY_TYPES = frozenset({"gre", "gretap"})  # an optional 32-bit GRE key (RFC 2890)

_IFNAME = r"^[A-Za-z0-9_.\-]{1,15}$"


class StaticTunnelConfig(BaseModel):
    """One static tunnel. The field names are the interface (issue 9); keep them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=_IFNAME, description="the device evpnd creates/adopts")]
    type: Literal["geneve", "gretap", "gre", "vxlan"]
    remote: IPvAnyAddress
    local: IPvAnyAddress | None = Field(default=None, description="default: the vtep")
    vni: Annotated[int, Field(strict=True, ge=1, le=16_777_215)] | None = None
    key: Annotated[int, Field(strict=True, ge=0, le=4_294_967_295)] | None = None
    bridge: Annotated[str, Field(pattern=_IFNAME)] | None = None
    prefixes: list[IPvAnyNetwork] = []
    table: Annotated[int, Field(strict=True, ge=1, le=4_294_967_295)] | None = None
    advertise: bool = False
    mtu: Annotated[int, Field(strict=True, ge=68, le=65535)] | None = None

    @property
    def l2(self) -> bool:
        return self.type in L2_TYPES


def tunnel_problems(
    tunnels: list[StaticTunnelConfig],
    vtep: str,
    bridges: Mapping[str, int],
    tables: Mapping[int, int],
    managed: Mapping[str, str],
    vnis: Iterable[int],
) -> list[tuple[str, str]]:
    """Cross-field checks of `static_tunnels`.

    bridges: L2VNI bridge name -> VNI; tables: L3VNI table -> VNI; managed: every other device
    name evpnd manages -> where it is configured; vnis: every configured EVPN VNI.
    """
    problems: list[tuple[str, str]] = []
    own = ipaddress.ip_address(vtep)
    evpn_vnis = set(vnis)
    names: dict[str, str] = {}
    endpoints: dict[tuple[object, ...], str] = {}
    for i, t in enumerate(tunnels):
        at = f"static_tunnels[{i}]"

        def bad(field: str, reason: str, at: str = at) -> None:
            problems.append((f"{at}.{field}", reason))

        if t.name in managed:
            bad("name", f"interface {t.name} is also used by {managed[t.name]}")
        elif t.name in names:
            bad("name", f"interface {t.name} is also used by {names[t.name]}")
        names.setdefault(t.name, at)
        local = t.local if t.local is not None else own
        if t.remote == own or t.remote == local:
            bad("remote", f"{t.remote} is our own VTEP/local address, not a remote site")
        if t.remote.version != local.version:
            where = "local" if t.local is not None else "remote"
            bad(where, f"remote {t.remote} and local {local} are not of one address family")
        if t.type in VNI_TYPES:
            if t.vni is None:
                bad("vni", f"required for type {t.type}")
            elif t.type == "vxlan" and t.vni in evpn_vnis:
                # the kernel keeps one VXLAN device per (VNI, local address, UDP port)
                bad("vni", f"VNI {t.vni} is an EVPN VNI of this VTEP; use another VNI")
        elif t.vni is not None:
            bad("vni", f"not allowed for type {t.type} (GRE has a key, not a VNI)")
        if t.key is not None and t.type not in KEY_TYPES:
            bad("key", f"not allowed for type {t.type} (only gre and gretap have a GRE key)")
        if t.l2:
            if t.prefixes:
                bad("prefixes", f"an L3 field, not allowed for the L2 type {t.type}")
            if t.table is not None:
                bad("table", f"an L3 field, not allowed for the L2 type {t.type}")
            if t.bridge is None:
                bad("bridge", f"required for type {t.type}: the L2VNI bridge the tunnel joins")
            elif t.bridge not in bridges:
                bad("bridge", f"{t.bridge} is no L2VNI's bridge")
        else:
            if t.bridge is not None:
                bad("bridge", "an L2 field, not allowed for type gre (gretap carries Ethernet)")
            if t.table is None:
                bad("table", "required for type gre: the L3VNI table the prefixes go into")
            elif t.table not in tables:
                bad("table", f"table {t.table} belongs to no L3VNI")
            if not t.prefixes:
                bad("prefixes", "required for type gre: the site's networks")
        if t.type == "vxlan" and t.vni is not None and ("vxlan", t.vni) in endpoints:
            # the kernel keeps one VXLAN device per (VNI, local address, UDP port)
            bad("vni", f"VNI {t.vni} is also used by {endpoints['vxlan', t.vni]}")
        elif t.type == "vxlan" and t.vni is not None:
            endpoints[("vxlan", t.vni)] = at
        ident = (t.type, str(t.remote), t.vni, t.key)
        if ident in endpoints:
            bad("remote", f"same type, remote, vni and key as {endpoints[ident]}")
        endpoints.setdefault(ident, at)
    return problems
