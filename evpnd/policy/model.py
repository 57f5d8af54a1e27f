"""The policy as plain data: what the configuration says (PolicySpec) and what the kernel
should hold (Ruleset: per family one `evpnd` table with its sets, chains and rules).

Pure: no I/O, no pydantic. A Ruleset compares equal when the kernel holds the same structure
(set names and types, chains, the rules' identities) and the same set elements; counters and
handles are not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TABLE = "evpnd"
BRIDGE = "bridge"
INET = "inet"
FAMILIES = (BRIDGE, INET)


@dataclass(frozen=True)
class GroupSpec:
    name: str
    vni: int
    prefixes: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()

    @property
    def dynamic_only(self) -> bool:
        """No static selector: every endpoint EVPN knows in the VNI is a member."""
        return not self.prefixes and not self.macs


@dataclass(frozen=True)
class RuleSpec:
    name: str
    src: str  # a group name or "any"
    dst: str
    proto: str | None
    ports: tuple[int, ...]
    action: str  # allow | deny
    log: bool = False


@dataclass(frozen=True)
class PolicySpec:
    groups: tuple[GroupSpec, ...]
    rules: tuple[RuleSpec, ...]
    default: str  # allow | deny
    bridges: dict[int, str] = field(default_factory=dict)  # L2VNI -> its bridge device
    l3_bridges: tuple[str, ...] = ()  # the L3VNIs' bridges (routed traffic enters there too)

    def group(self, name: str) -> GroupSpec | None:
        for g in self.groups:
            if g.name == name:
                return g
        return None


# Endpoints EVPN knows, per L2VNI: MAC -> its IPs (local and remote alike).
Endpoints = dict[int, dict[str, frozenset[str]]]


@dataclass(frozen=True)
class Capabilities:
    """What this kernel can enforce (probed by nft.py with a dry-run transaction)."""

    bridge_conntrack: bool = True
    inet_conntrack: bool = True


@dataclass(frozen=True)
class NftSet:
    name: str
    type: str  # ether_addr | ipv4_addr | ipv6_addr
    interval: bool
    elements: frozenset[str]  # MACs lower case; networks as ip_network strings ("10.0.0.5/32")


@dataclass(frozen=True)
class NftRule:
    """One kernel rule. `comment` is its identity (it carries a digest of `expr`), so the
    kernel's rule list is compared by comments: a hand-edited or deleted rule shows."""

    comment: str
    expr: tuple[Any, ...] = ()  # libnftables JSON statements (desired side only)
    rule: str = ""  # the policy rule it enforces ("" for evpnd's own plumbing)


@dataclass(frozen=True)
class NftChain:
    name: str
    rules: tuple[NftRule, ...]
    hook: str | None = None  # base chains: "forward"
    priority: int = 0

    def shape(self) -> tuple[str, str | None, int, tuple[str, ...]]:
        return (self.name, self.hook, self.priority, tuple(r.comment for r in self.rules))


@dataclass(frozen=True)
class NftTable:
    family: str
    chains: tuple[NftChain, ...]
    sets: tuple[NftSet, ...]

    def shape(self) -> tuple[Any, ...]:
        """Everything but set elements: a difference here rebuilds the table's contents."""
        return (
            tuple(sorted((s.name, s.type, s.interval) for s in self.sets)),
            tuple(sorted(c.shape() for c in self.chains)),
        )

    def elements(self) -> dict[str, frozenset[str]]:
        return {s.name: s.elements for s in self.sets}


Ruleset = dict[str, NftTable]  # family -> evpnd's table in it


@dataclass
class Problem:
    """A part of the policy that is not enforced as configured, and why."""

    where: str  # "policy.rules[3]" / "bridge" / a rule name
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}
