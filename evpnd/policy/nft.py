"""The kernel edge of policy: libnftables (Debian's python3-nftables binding) in JSON mode.

Every change is one `{"nftables": [...]}` transaction (all or nothing in the kernel). Reads
list only evpnd's own tables. Not thread-safe: the enforcer uses it from one thread at a time.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from evpnd.policy.model import (
    BRIDGE,
    INET,
    TABLE,
    Capabilities,
    NftChain,
    NftRule,
    NftSet,
    NftTable,
)

Counters = dict[str, tuple[int, int]]  # rule comment -> (packets, bytes)


class NftError(Exception):
    pass


def _load() -> Any:
    try:
        import nftables
    except ImportError as exc:  # the venv links Debian's binding in (scripts/install.sh)
        raise NftError(
            "python3-nftables is not importable (apt-get install python3-nftables; "
            "scripts/install.sh links it into .venv)"
        ) from exc
    return nftables


class Nft:
    def __init__(self) -> None:
        self._nftables = _load()
        self.ctx = self._context()

    def _context(self) -> Any:
        ctx = self._nftables.Nftables()
        ctx.set_json_output(True)
        return ctx

    def apply(self, cmds: list[Any], dry_run: bool = False) -> str | None:
        """Run one transaction; None on success, else libnftables' error text.

        A fresh context each time: libnftables 1.0.6 keeps interval-set elements of an earlier
        (also a dry-run) transaction in its cache and then refuses them as conflicting."""
        if not cmds:
            return None
        ctx = self._context()
        ctx.set_dry_run(dry_run)
        rc, _out, err = ctx.json_cmd({"nftables": cmds})
        return None if rc == 0 else (err.strip() or f"libnftables error {rc}")

    def dump(self, family: str) -> tuple[NftTable | None, Counters]:
        """evpnd's table in one family as the kernel holds it (None: absent), with counters."""
        rc, out, err = self._context().cmd(f"list table {family} {TABLE}")
        if rc != 0:
            if "No such file or directory" in err or "does not exist" in err:
                return None, {}
            raise NftError(err.strip())
        return parse_table(family, json.loads(out))

    def probe(self) -> Capabilities:
        """Dry-run a ct-state rule in each family: nothing is created either way."""

        def ct_ok(family: str) -> bool:
            table = {"family": family, "name": "evpnd_probe"}
            chain = {"family": family, "table": "evpnd_probe", "name": "probe", "type": "filter",
                     "hook": "forward", "prio": 0, "policy": "accept"}  # fmt: skip
            match = {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                               "right": ["established"]}}  # fmt: skip
            rule = {"family": family, "table": "evpnd_probe", "chain": "probe",
                    "expr": [match, {"accept": None}]}  # fmt: skip
            cmds = [{"add": {"table": table}}, {"add": {"chain": chain}}, {"add": {"rule": rule}}]
            return self.apply(cmds, dry_run=True) is None

        return Capabilities(bridge_conntrack=ct_ok(BRIDGE), inet_conntrack=ct_ok(INET))


def _element(value: Any, set_type: str) -> list[str]:
    if isinstance(value, dict):
        if "elem" in value:
            return _element(value["elem"]["val"], set_type)
        if "prefix" in value:
            p = value["prefix"]
            return [str(ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False))]
        if "range" in value:
            lo, hi = (ipaddress.ip_address(v) for v in value["range"])
            return [str(n) for n in ipaddress.summarize_address_range(lo, hi)]  # type: ignore[type-var]
        raise NftError(f"unexpected set element {value!r}")
    if set_type in ("ether_addr", "ifname"):
        return [str(value).lower() if set_type == "ether_addr" else str(value)]
    return [str(ipaddress.ip_network(str(value)))]


def parse_table(family: str, doc: dict[str, Any]) -> tuple[NftTable, Counters]:
    sets: list[NftSet] = []
    chains: dict[str, dict[str, Any]] = {}
    rules: dict[str, list[NftRule]] = {}
    counters: Counters = {}
    for item in doc.get("nftables", []):
        if "set" in item:
            s = item["set"]
            elems = frozenset(e for v in s.get("elem", []) for e in _element(v, s["type"]))
            sets.append(NftSet(s["name"], s["type"], "interval" in s.get("flags", []), elems))
        elif "chain" in item:
            chains[item["chain"]["name"]] = item["chain"]
        elif "rule" in item:
            r = item["rule"]
            comment = r.get("comment", f"handle {r.get('handle')}")
            rules.setdefault(r["chain"], []).append(NftRule(comment))
            for stmt in r.get("expr", []):
                if "counter" in stmt and isinstance(stmt["counter"], dict):
                    c = stmt["counter"]
                    counters[comment] = (int(c.get("packets", 0)), int(c.get("bytes", 0)))
    out = tuple(
        NftChain(name, tuple(rules.get(name, ())), hook=c.get("hook"), priority=c.get("prio", 0))
        for name, c in chains.items()
    )
    return NftTable(family, out, tuple(sets)), counters
