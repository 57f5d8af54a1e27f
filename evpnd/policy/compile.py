"""The policy compiler: (PolicySpec, endpoints EVPN knows, kernel capabilities) -> Ruleset.

Pure and deterministic: the same inputs give the same Ruleset, so a restart with an unchanged
policy and unchanged EVPN state finds the kernel already as wanted and changes nothing.

Layout:
  table bridge evpnd: chain forward (base, hook forward, policy accept) jumps to `vni_<N>` for
      frames entering from a port of L2VNI N's bridge (the set `ports_<N>`, kept from sysfs:
      `meta ibrname` is not in every kernel); everything else (a user's bridges) is never
      evaluated. chain vni_<N>: the rules that can match in VNI N.
  table inet evpnd: chain forward returns bridged IP (br_netfilter: in and out through the
      same bridge) and jumps to `routed` for traffic from an SVI, an L3VNI's bridge or VRF.
  Each policy chain: [ct state established,related accept] (where conntrack exists), ARP and
      IPv6 neighbour discovery accept (a deny default must not break address resolution), the
      rules in order (first match wins), then the default with its own counter.
A group is three sets: `<group>_mac` (ether_addr; bridge only), `<group>_ip4` / `<group>_ip6`
(intervals). A rule between two groups is one kernel rule per address kind (MAC-MAC,
IPv4-IPv4, IPv6-IPv6), each with a counter; `show policy` sums them. Routed rules (inet) match
by IP only. (`policy` is a keyword of the nft language: no chain is named so.)
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from evpnd.policy.model import (
    BRIDGE,
    INET,
    Capabilities,
    Endpoints,
    GroupSpec,
    NftChain,
    NftRule,
    NftSet,
    NftTable,
    PolicySpec,
    Problem,
    Ruleset,
    RuleSpec,
)

IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
ND_TYPES = ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"]


@dataclass
class Members:
    """A group's members as the kernel sets hold them."""

    macs: set[str] = field(default_factory=set)
    ip4: list[IpNet] = field(default_factory=list)
    ip6: list[IpNet] = field(default_factory=list)
    static: int = 0
    learned: int = 0

    def has(self, addr: str) -> bool:
        if ":" in addr and len(addr) == 17 and addr.count(":") == 5:
            return addr.lower() in self.macs
        ip = ipaddress.ip_address(addr)
        return any(ip in net for net in (self.ip4 if ip.version == 4 else self.ip6))


def set_stem(name: str) -> str:
    return name.replace("-", "_")


def _nets(values: list[str] | tuple[str, ...]) -> list[IpNet]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def _ranges(values: list[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Addresses and prefixes as integer ranges [lo, hi], IPv4 and IPv6 apart."""
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for value in values:
        addr, _, plen = value.partition("/")
        if ":" in addr:
            n, bits, out = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr)), 128, v6
        else:
            n, bits, out = int.from_bytes(socket.inet_pton(socket.AF_INET, addr)), 32, v4
        size = 1 << (bits - int(plen)) if plen else 1
        lo = n & ~(size - 1)
        out.append((lo, lo + size - 1))
    return v4, v6


def _cidrs(ranges: list[tuple[int, int]], bits: int) -> list[IpNet]:
    """The fewest prefixes covering the union of the ranges (collapse_addresses, in integers:
    10,000 hosts in ~20 ms instead of ~600 ms)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    make = ipaddress.IPv4Network if bits == 32 else ipaddress.IPv6Network
    out: list[IpNet] = []
    for lo, hi in merged:
        while lo <= hi:
            size = lo & -lo if lo else 1 << bits
            while lo + size - 1 > hi:
                size >>= 1
            out.append(make((lo, bits - size.bit_length() + 1)))
            lo += size
    return out


def group_members(group: GroupSpec, endpoints: Endpoints) -> Members:
    """Static selectors plus what EVPN knows in the group's VNI: every endpoint for a group
    without selectors, else the endpoints whose MAC is listed or one of whose IPs is inside
    a listed prefix (their other addresses join with them)."""
    known = endpoints.get(group.vni, {})
    if group.dynamic_only:
        learned = known
    else:
        nets = _nets(group.prefixes)
        macs = set(group.macs)
        learned = {}
        for mac, ips in known.items():
            if mac in macs or any(
                addr in net
                for addr in map(ipaddress.ip_address, ips)
                for net in nets
                if net.version == addr.version
            ):
                learned[mac] = ips
    out = Members(macs=set(group.macs) | set(learned), static=len(group.prefixes) + len(group.macs))
    out.learned = len(learned)
    v4, v6 = _ranges([*group.prefixes, *(ip for ips in learned.values() for ip in ips)])
    out.ip4, out.ip6 = _cidrs(v4, 32), _cidrs(v6, 128)
    return out


def members(spec: PolicySpec, endpoints: Endpoints) -> dict[str, Members]:
    return {g.name: group_members(g, endpoints) for g in spec.groups}


# -- expressions (libnftables JSON) ------------------------------------------------------------


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, fld: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": fld}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


_SADDR = {"mac": ("ether", "saddr"), "ip4": ("ip", "saddr"), "ip6": ("ip6", "saddr")}
_DADDR = {"mac": ("ether", "daddr"), "ip4": ("ip", "daddr"), "ip6": ("ip6", "daddr")}
_KINDS = {BRIDGE: ("mac", "ip4", "ip6"), INET: ("ip4", "ip6")}


def _comment(rule: str, chain: str, variant: str, expr: list[Any]) -> str:
    digest = hashlib.sha256(json.dumps(expr, sort_keys=True).encode()).hexdigest()[:10]
    return f"evpnd:{rule}:{chain}:{variant}:{digest}"


def rule_of(comment: str) -> str:
    """The policy rule a kernel rule's comment names ("" if not one of evpnd's)."""
    parts = comment.split(":")
    return parts[1] if len(parts) == 5 and parts[0] == "evpnd" else ""


def _own(name: str, chain: str, expr: list[Any]) -> NftRule:
    return NftRule(_comment(name, chain, "-", expr), tuple(expr), rule="")


def _variants(src: GroupSpec | None, dst: GroupSpec | None, family: str, proto: str | None):
    kinds = [
        k
        for k in _KINDS[family]
        if not (proto == "icmp" and k == "ip6") and not (proto == "icmpv6" and k == "ip4")
    ]
    if src and dst:
        return [(k, k) for k in kinds]
    if src:
        return [(k, None) for k in kinds]
    if dst:
        return [(None, k) for k in kinds]
    return [(None, None)]


def rule_vnis(spec: PolicySpec, rule: RuleSpec) -> set[int] | None:
    """The L2VNIs whose bridged traffic a rule can match (None: every one)."""
    vnis = {g.vni for g in (spec.group(rule.src), spec.group(rule.dst)) if g is not None}
    return vnis or None


def _rule_exprs(spec: PolicySpec, rule: RuleSpec, family: str) -> list[tuple[str, list[Any]]]:
    """The kernel rules for one policy rule in one family: (variant name, expr)."""
    src = spec.group(rule.src) if rule.src != "any" else None
    dst = spec.group(rule.dst) if rule.dst != "any" else None
    proto: list[Any] = []
    if rule.proto is not None:
        proto.append(_match(_meta("l4proto"), rule.proto))
    if rule.ports:
        ports: Any = rule.ports[0] if len(rule.ports) == 1 else {"set": list(rule.ports)}
        proto.append(_match(_payload("th", "dport"), ports))
    tail: list[Any] = [{"counter": None}]
    if rule.log:
        tail.append({"log": {"prefix": f"evpnd {rule.name} "}})
    tail.append({"accept": None} if rule.action == "allow" else {"drop": None})
    out = []
    for s, d in _variants(src, dst, family, rule.proto):
        # protocol and port first: a compare fails faster than a set lookup, and a packet
        # walks every rule before the one that matches (1,000 rules: see README)
        expr: list[Any] = list(proto)
        if s is not None and src is not None:
            expr.append(_match(_payload(*_SADDR[s]), f"@{set_stem(src.name)}_{s}"))
        if d is not None and dst is not None:
            expr.append(_match(_payload(*_DADDR[d]), f"@{set_stem(dst.name)}_{d}"))
        expr += tail
        out.append((f"{s or 'any'}-{d or 'any'}", expr))
    return out


def _elements(nets: list[IpNet]) -> frozenset[str]:
    return frozenset(str(n) for n in nets)


def _policy_chain(
    spec: PolicySpec,
    family: str,
    chain: str,
    vni: int | None,
    ct: bool,
    skip: frozenset[str],
    problems: list[Problem],
) -> NftChain:
    rules: list[NftRule] = []
    if ct:
        ct_expr = [_match({"ct": {"key": "state"}}, ["established", "related"], "in")]
        rules.append(_own("established", chain, [*ct_expr, {"accept": None}]))
    if family == BRIDGE:
        arp = [_match(_payload("ether", "type"), "arp"), {"accept": None}]
        rules.append(_own("arp", chain, arp))
    nd = [_match(_payload("icmpv6", "type"), {"set": ND_TYPES}), {"accept": None}]
    rules.append(_own("nd", chain, nd))
    for i, rule in enumerate(spec.rules):
        if vni is not None:
            scope = rule_vnis(spec, rule)
            if scope is not None and scope != {vni}:
                continue  # another VNI's rule, or two VNIs: only routed traffic can match
        for variant, expr in _rule_exprs(spec, rule, family):
            comment = _comment(rule.name, chain, variant, expr)
            if comment in skip:
                problems.append(
                    Problem(
                        f"policy.rules[{i}]",
                        f"{rule.name} ({family} {chain} {variant}) refused by the kernel: "
                        "not enforced; the rest of the policy is",
                    )
                )
                continue
            rules.append(NftRule(comment, tuple(expr), rule=rule.name))
    default = [{"counter": None}, {"accept": None} if spec.default == "allow" else {"drop": None}]
    rules.append(NftRule(_comment("default", chain, "-", default), tuple(default), "default"))
    return NftChain(chain, tuple(rules))


def compile_ruleset(
    spec: PolicySpec | None,
    endpoints: Endpoints,
    caps: Capabilities,
    ports: dict[int, frozenset[str]] | None = None,
    skip: frozenset[str] = frozenset(),
) -> tuple[Ruleset, list[Problem], dict[str, Members]]:
    """The desired tables, the parts not enforced (and why), and each group's members.

    `ports`: the interfaces enslaved to each L2VNI's bridge (bridged traffic is told apart by
    its input port: `meta ibrname` is not in every kernel). `skip`: comments of kernel rules
    the kernel refused (found by the edge with a dry run); they are left out and reported."""
    if spec is None:
        return {}, [], {}
    ports = ports or {}
    problems: list[Problem] = []
    mem = members(spec, endpoints)
    sets: list[NftSet] = []
    for g in spec.groups:
        m, stem = mem[g.name], set_stem(g.name)
        sets.append(NftSet(f"{stem}_mac", "ether_addr", False, frozenset(m.macs)))
        sets.append(NftSet(f"{stem}_ip4", "ipv4_addr", True, _elements(m.ip4)))
        sets.append(NftSet(f"{stem}_ip6", "ipv6_addr", True, _elements(m.ip6)))
    if not caps.bridge_conntrack and (
        spec.default == "deny" or any(r.action == "deny" for r in spec.rules)
    ):
        problems.append(
            Problem(
                "bridge",
                "no bridge conntrack (nf_conntrack_bridge) in this kernel: return traffic of "
                "allowed flows is not admitted on bridged paths; stateless rules apply",
            )
        )
    out: Ruleset = {}
    # bridge: per L2VNI a set of its bridge's ports and a chain of the rules that concern it
    vnis = sorted(spec.bridges)
    forward: list[NftRule] = []
    chains: list[NftChain] = []
    bridge_sets = list(sets)
    for vni in vnis:
        name = f"vni_{vni}"
        bridge_sets.append(NftSet(f"ports_{vni}", "ifname", False, ports.get(vni, frozenset())))
        jump = [_match(_meta("iifname"), f"@ports_{vni}"), {"jump": {"target": name}}]
        forward.append(_own("jump", "forward", jump))
        chains.append(_policy_chain(spec, BRIDGE, name, vni, caps.bridge_conntrack, skip, problems))
    out[BRIDGE] = NftTable(
        BRIDGE,
        (NftChain("forward", tuple(forward), hook="forward"), *chains),
        tuple(bridge_sets),
    )
    # inet: routed traffic enters from an SVI (an L2VNI's bridge) or an L3VNI's bridge
    names = sorted(set(spec.bridges.values()) | set(spec.l3_bridges))
    fwd: list[NftRule] = []
    # With br_netfilter (bridge-nf-call-iptables, on by default where the module is loaded)
    # bridged IP packets pass the inet forward hook too, in and out through the same bridge:
    # the bridge table has judged those already.
    for bridge in sorted(set(spec.bridges.values())):
        same = [_match(_meta("iifname"), bridge), _match(_meta("oifname"), bridge)]
        fwd.append(_own("bridged", "forward", [*same, {"return": None}]))
    if names:
        jump = [_match(_meta("iifname"), {"set": names}), {"jump": {"target": "routed"}}]
        fwd.append(_own("jump", "forward", jump))
    routed = _policy_chain(spec, INET, "routed", None, caps.inet_conntrack, skip, problems)
    ip_sets = tuple(s for s in sets if s.type != "ether_addr")  # routed: matched by IP only
    out[INET] = NftTable(INET, (NftChain("forward", tuple(fwd), hook="forward"), routed), ip_sets)
    return out, problems, mem


# -- the verdict for one flow (evpnctl explain) -------------------------------------------------


def verdict(
    spec: PolicySpec,
    mem: dict[str, Members],
    src: str,
    dst: str,
    proto: str | None,
    port: int | None,
) -> dict[str, Any]:
    """What the policy does with a packet from src to dst: the first matching rule, else the
    default. Groups are matched with the members the kernel sets hold now."""

    def groups_of(addr: str) -> list[str]:
        return [name for name, m in mem.items() if m.has(addr)]

    src_groups, dst_groups = groups_of(src), groups_of(dst)
    for rule in spec.rules:
        if rule.src != "any" and rule.src not in src_groups:
            continue
        if rule.dst != "any" and rule.dst not in dst_groups:
            continue
        if rule.proto is not None and proto != rule.proto:
            continue
        if rule.ports and port not in rule.ports:
            continue
        return {
            "action": rule.action,
            "rule": rule.name,
            "src_groups": src_groups,
            "dst_groups": dst_groups,
        }
    return {
        "action": spec.default,
        "rule": None,
        "src_groups": src_groups,
        "dst_groups": dst_groups,
    }
