"""The difference between the desired Ruleset and the kernel's evpnd tables, as one libnftables
JSON transaction. Pure.

Only `table <family> evpnd` is ever named, so nothing another program or a person put in the
kernel can be touched. A table whose structure differs (a rule deleted or edited by hand, a
changed policy) is deleted and built again inside the same transaction (atomic: no packet
sees a half-built table; conntrack entries are not touched, so established flows go on); set
members alone are added and deleted in place.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from evpnd.policy.model import TABLE, NftSet, NftTable, Ruleset


def _elem(value: str, set_type: str) -> Any:
    if set_type in ("ether_addr", "ifname"):
        return value
    net = ipaddress.ip_network(value)
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _set_cmd(family: str, s: NftSet, with_elements: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"family": family, "table": TABLE, "name": s.name, "type": s.type}
    if s.interval:
        body["flags"] = ["interval"]
    if with_elements and s.elements:
        body["elem"] = [_elem(e, s.type) for e in sorted(s.elements)]
    return {"add": {"set": body}}


def build(table: NftTable) -> list[dict[str, Any]]:
    """Every command that creates the table as desired."""
    family = table.family
    cmds: list[dict[str, Any]] = [{"add": {"table": {"family": family, "name": TABLE}}}]
    cmds += [_set_cmd(family, s) for s in table.sets]
    for chain in table.chains:
        body: dict[str, Any] = {"family": family, "table": TABLE, "name": chain.name}
        if chain.hook is not None:
            body |= {"type": "filter", "hook": chain.hook, "prio": chain.priority}
            body["policy"] = "accept"
        cmds.append({"add": {"chain": body}})
    for chain in table.chains:
        for rule in chain.rules:
            cmds.append(
                {
                    "add": {
                        "rule": {
                            "family": family,
                            "table": TABLE,
                            "chain": chain.name,
                            "expr": list(rule.expr),
                            "comment": rule.comment,
                        }
                    }
                }
            )
    return cmds


def _element_cmd(op: str, family: str, s: NftSet, values: set[str]) -> dict[str, Any]:
    elems = [_elem(v, s.type) for v in sorted(values)]
    return {op: {"element": {"family": family, "table": TABLE, "name": s.name, "elem": elems}}}


def diff_table(family: str, desired: NftTable | None, kernel: NftTable | None) -> list[Any]:
    if desired is None:
        return [] if kernel is None else [{"delete": {"table": {"family": family, "name": TABLE}}}]
    if kernel is None:
        return build(desired)
    if desired.shape() != kernel.shape():
        return [{"delete": {"table": {"family": family, "name": TABLE}}}, *build(desired)]
    cmds: list[Any] = []
    have = kernel.elements()
    for s in desired.sets:
        now = have.get(s.name, frozenset())
        gone = set(now - s.elements)
        new = set(s.elements - now)
        if gone:  # deletions first: an interval set refuses an overlapping add
            cmds.append(_element_cmd("delete", family, s, gone))
        if new:
            cmds.append(_element_cmd("add", family, s, new))
    return cmds


def keep_elements(desired: Ruleset, kernel: Ruleset) -> Ruleset:
    """The desired tables with every member the kernel's same sets hold kept: for the hold
    time after a start, while the core relearns what EVPN knows (routes come back over BGP
    within seconds), so a restart does not drop members only to add them again."""
    out: Ruleset = {}
    for family, table in desired.items():
        have = kernel.get(family)
        if have is None:
            out[family] = table
            continue
        old = {s.name: s for s in have.sets}
        sets = tuple(
            replace(s, elements=s.elements | old[s.name].elements)
            if s.name in old and old[s.name].type == s.type
            else s
            for s in table.sets
        )
        out[family] = replace(table, sets=sets)
    return out


def diff(desired: Ruleset, kernel: Ruleset, families: tuple[str, ...]) -> list[Any]:
    """One transaction bringing every family's evpnd table to the desired state ([] if it is)."""
    cmds: list[Any] = []
    for family in families:
        cmds += diff_table(family, desired.get(family), kernel.get(family))
    return cmds
