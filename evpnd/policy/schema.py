"""The `policy:` section of the configuration file (pydantic), and its cross-field checks.

Errors name the field (`policy.rules[2].from`) like every other configuration error. The
checks that need the rest of the file (is the group's VNI configured) are in `problems()`,
called by evpnd.config.cross_check.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator

from evpnd.policy.model import GroupSpec, PolicySpec, RuleSpec

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
PORT_PROTOS = ("tcp", "udp")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GroupConfig(_Strict):
    vni: Annotated[int, Field(strict=True, ge=1, le=16_777_215)]
    prefixes: list[IPvAnyNetwork] = Field(
        default=[], description="static members; learned hosts inside them join too"
    )
    macs: list[str] = Field(default=[], description="static members by MAC")

    @field_validator("macs")
    @classmethod
    def _macs(cls, v: list[str]) -> list[str]:
        out = []
        for mac in v:
            m = mac.lower().replace("-", ":")
            if not _MAC_RE.match(m):
                raise ValueError(f"not a MAC address: {mac!r}")
            out.append(m)
        return out


class RuleConfig(_Strict):
    name: str
    from_: str = Field(default="any", alias="from")
    to: str = "any"
    proto: Literal["tcp", "udp", "icmp", "icmpv6"] | None = None
    ports: list[Port] = []
    action: Literal["allow", "deny"]
    log: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("a rule name is 1-32 of a-z, 0-9, '_', '-', starting with a letter")
        return v


class PolicyConfig(_Strict):
    groups: dict[str, GroupConfig] = {}
    rules: list[RuleConfig] = []
    default: Literal["allow", "deny"] = "allow"


def set_base(name: str) -> str:
    """The nftables name stem of a group's sets (nft identifiers: no '-')."""
    return name.replace("-", "_")


def problems(policy: PolicyConfig, l2vnis: set[int]) -> list[tuple[str, str]]:
    """Checks across the policy and the rest of the file; each names the wrong field."""
    out: list[tuple[str, str]] = []
    stems: dict[str, str] = {}
    for name, group in policy.groups.items():
        here = f"policy.groups.{name}"
        if name == "any":
            out.append((here, "'any' is reserved (it means every endpoint)"))
        elif not _NAME_RE.match(name):
            out.append((here, "a group name is 1-32 of a-z, 0-9, '_', '-', starting with a letter"))
        stem = set_base(name)
        if stem in stems:
            out.append((here, f"overlaps group {stems[stem]!r} (same name in nftables)"))
        stems.setdefault(stem, name)
        if group.vni not in l2vnis:
            out.append((f"{here}.vni", f"l2vni {group.vni} is not configured"))
    seen: dict[str, int] = {}
    for i, rule in enumerate(policy.rules):
        here = f"policy.rules[{i}]"
        if rule.name in seen:
            out.append(
                (f"{here}.name", f"duplicate rule name (also policy.rules[{seen[rule.name]}])")
            )
        seen.setdefault(rule.name, i)
        if rule.name in policy.groups:
            out.append((f"{here}.name", "overlaps the group of the same name"))
        for side in ("from", "to"):
            value = rule.from_ if side == "from" else rule.to
            if value != "any" and value not in policy.groups:
                out.append((f"{here}.{side}", f"unknown group {value!r}"))
        if rule.ports and rule.proto not in PORT_PROTOS:
            out.append((f"{here}.ports", "ports need proto: tcp or udp"))
        if len(set(rule.ports)) != len(rule.ports):
            out.append((f"{here}.ports", "a port is listed twice"))
    return out


def policy_spec(
    policy: PolicyConfig | None, bridges: dict[int, str], l3_bridges: tuple[str, ...] = ()
) -> PolicySpec | None:
    """The validated section as the compiler's plain data (None: no policy configured)."""
    if policy is None:
        return None
    groups = tuple(
        GroupSpec(
            name=name,
            vni=g.vni,
            prefixes=tuple(str(p) for p in g.prefixes),
            macs=tuple(g.macs),
        )
        for name, g in policy.groups.items()
    )
    rules = tuple(
        RuleSpec(
            name=r.name,
            src=r.from_,
            dst=r.to,
            proto=r.proto,
            ports=tuple(r.ports),
            action=r.action,
            log=r.log,
        )
        for r in policy.rules
    )
    return PolicySpec(
        groups=groups,
        rules=rules,
        default=policy.default,
        bridges=dict(bridges),
        l3_bridges=tuple(l3_bridges),
    )


def dump(policy: PolicyConfig) -> dict[str, Any]:
    return policy.model_dump(by_alias=True, mode="json")
