"""Read views of the core for the control API and the metrics: routes, peers, MACs, explain.

Plain functions of a Core: they only read its state (DESIGN: the API never mutates the core).
`Core.iter_paths()`, `Core.peer_stats()`, `Core.mac_table()` and `Core.explain()` call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from evpnd.core.local_macs import remote_best
from evpnd.core.mobility import rank, why_wins
from evpnd.core.path_groups import group_paths
from evpnd.core.rib import path_targets
from evpnd.routes.evpn import LOCAL_PEER, MacIpKey, Path, describe

if TYPE_CHECKING:
    from evpnd.core.core import Core


def iter_paths(core: Core) -> Iterator[dict]:
    """Every path of every peer (local ones too) with its flags, for `show routes`.

    Each item: {"path": Path, "best": bool, "stale": bool, "local": bool, "sticky": bool,
    "duplicate": bool (type-2 of a frozen MAC), "l2vnis": [...], "l3vnis": [...]}.
    `l2vnis`/`l3vnis` are where the best path is imported (empty for non-best paths).
    """
    rib = core.rib
    for peer, table in rib.adj_in.items():
        stale = rib.stale.get(peer, ())
        for key, path in table.items():
            best = rib.best.get(key) is path
            l2, l3 = path_targets(path, core._view.imports) if best else ((), ())
            duplicate = type(key) is MacIpKey and any(
                core.mobility.is_frozen(v, key.mac) for v in (l2 or (path.vni,))
            )
            yield {
                "path": path,
                "best": best,
                "stale": key in stale,
                "local": peer == LOCAL_PEER,
                "sticky": path.attrs.sticky,
                "duplicate": duplicate,
                "l2vnis": list(l2),
                "l3vnis": list(l3),
            }


def peer_stats(core: Core) -> dict[str, dict]:
    """Per peer: state, established-since time (None when not up), NLRIs received /
    withdrawn / accepted / rejected, paths held now and how many of them are stale."""
    out = {}
    for peer, stats in core.rib.peers.items():
        out[peer] = {
            "state": stats.state,
            "since": stats.since,
            "reason": stats.reason,
            "received": stats.received,
            "withdrawn": stats.withdrawn,
            "accepted": stats.accepted,
            "rejected": stats.rejected,
            "paths": len(core.rib.adj_in.get(peer, ())),
            "stale": len(core.rib.stale.get(peer, ())),
        }
    return out


def mac_table(core: Core, vni: int | None = None) -> list[dict]:
    """FRR's `show evpn mac vni all`: one row per (L2VNI, MAC) known locally or remotely.

    Row: vni, mac, type ("local" or "remote": who wins), vtep (remote winner's VTEP, None if
    local), local_seq, remote_seq (highest seen), sticky, duplicate, moves (DAD count),
    ips (IPs known with it), paths (number of candidate paths).
    """
    keys = set(core._macs) | set(core.mobility.local) | set(core.mobility.frozen_fdb)
    rows = []
    for v, mac in sorted(keys):
        if vni is not None and v != vni:
            continue
        group = list(group_paths(core._macs.get((v, mac))))
        st = core.mobility.local.get((v, mac))
        remote, top = remote_best(core._macs.get((v, mac)))
        winner = max(group, key=rank) if group else None
        is_local = (winner is not None and winner.peer == LOCAL_PEER) or (
            winner is None and st is not None
        )
        dad = core.mobility.dad.get((v, mac))
        ips = {p.key.ip for p in group if p.key.ip is not None}  # type: ignore[union-attr]
        if st is not None:
            ips |= st.ips
        rows.append(
            {
                "vni": v,
                "mac": mac,
                "type": "local" if is_local else "remote",
                "vtep": None if is_local or remote is None else remote.next_hop,
                "local_seq": st.seq if st is not None else 0,
                "remote_seq": max(top, 0),
                "sticky": bool((winner and winner.attrs.sticky) or (st and st.sticky)),
                "duplicate": bool(dad and dad.duplicate),
                "moves": dad.count if dad else 0,
                "ips": sorted(ips),
                "paths": len(group),
                "fdb": core.desired.fdb.get(v, {}).get(mac),
            }
        )
    return rows


def explain(core: Core, mac_or_ip: str, vni: int | None = None) -> dict:
    """Why the kernel holds (or does not hold) an entry for a MAC or an IP.

    Returns {"query", "kind": "mac"|"ip", "vnis": [per-VNI dict]} where each per-VNI dict
    has: vni, candidates (paths: peer, rd, next hop, seq, sticky, stale, local), winner
    (path or None), reason (higher sequence / sticky / lowest VTEP tie-break / only path /
    local), kernel (the desired FDB/neighbour/route value, or None) and, when nothing is
    installed, why_not (local, duplicate-frozen, rejected: REASON, no VNI imports it).
    """
    query = mac_or_ip.strip().lower()
    is_mac = query.count(":") == 5 and len(query) == 17 and "." not in query
    groups = core._macs if is_mac else core._ips
    vnis = sorted({v for (v, k) in groups if k == query} | _frozen_vnis(core, query, is_mac))
    if is_mac:
        vnis = sorted(set(vnis) | {v for (v, m) in core.mobility.local if m == query})
    if vni is not None:
        vnis = [v for v in vnis if v == vni] or [vni]
    out = {"query": query, "kind": "mac" if is_mac else "ip", "vnis": []}
    for v in vnis:
        out["vnis"].append(_explain_one(core, query, v, is_mac))
    if not vnis:
        out["why_not"] = _why_unknown(core, query, is_mac)
    # Host routes in L3VNIs for an IP.
    if not is_mac:
        out["routes"] = [
            {"vni": v, "prefix": p, "kernel": core.desired.routes.get(v, {}).get(p)}
            for (v, p) in core._prefixes
            if p.split("/")[0] == query
        ]
    return out


def _frozen_vnis(core: Core, query: str, is_mac: bool) -> set[int]:
    if is_mac:
        return {v for (v, m) in core.mobility.frozen_fdb if m == query}
    return {v for (v, ip) in core.mobility.frozen_neigh if ip == query}


def _describe_path(core: Core, path: Path) -> dict:
    return {
        "peer": path.peer,
        "rd": path.key.rd,
        "key": path.key,  # the RouteKey (rib.get(peer, key) finds the Path)
        "route": describe(path.key),
        "next_hop": path.next_hop,
        "seq": path.attrs.mobility_seq,
        "sticky": path.attrs.sticky,
        "stale": core.rib.is_stale(path),
        "local": path.peer == LOCAL_PEER,
    }


def _explain_one(core: Core, query: str, vni: int, is_mac: bool) -> dict:
    group = (core._macs if is_mac else core._ips).get((vni, query))
    paths = sorted(group_paths(group), key=rank, reverse=True)
    kernel = (core.desired.fdb if is_mac else core.desired.neigh).get(vni, {}).get(query)
    item: dict = {
        "vni": vni,
        "candidates": [_describe_path(core, p) for p in paths],
        "winner": None,
        "reason": None,
        "kernel": kernel,
    }
    mac = query if is_mac else (paths[0].key.mac if paths else None)  # type: ignore
    st = core.mobility.local.get((vni, mac)) if mac else None
    frozen = mac is not None and core.mobility.is_frozen(vni, mac)
    if paths:
        winner = paths[0]
        item["winner"] = _describe_path(core, winner)
        if len(paths) == 1:
            item["reason"] = "only path" + (" (local)" if winner.peer == LOCAL_PEER else "")
        else:
            item["reason"] = why_wins(winner, paths[1])
            if winner.peer == LOCAL_PEER:
                item["reason"] = f"local: {item['reason']}"
    if st is not None:
        item["local"] = {
            "present": st.present,
            "ips": sorted(st.ips),
            "seq": st.seq,
            "sticky": st.sticky,
            "advertised": st.advertised,
        }
    if frozen:
        item["duplicate"] = True
        item["why_not" if kernel is None else "note"] = (
            "duplicate: frozen after too many moves; `clear duplicates` thaws it"
        )
    elif kernel is None:
        if paths and paths[0].peer == LOCAL_PEER:
            item["why_not"] = "local: the MAC is on this VTEP, no remote entry needed"
        elif st is not None and not paths:
            item["why_not"] = "local: learned here"
        else:
            item["why_not"] = _why_unknown(core, query, is_mac, vni)
    return item


def _why_unknown(core: Core, query: str, is_mac: bool, vni: int | None = None) -> str:
    for peer, table in core.rib.adj_in.items():
        for key, path in table.items():
            if type(key) is MacIpKey and (key.mac if is_mac else key.ip) == query:
                l2, _ = path_targets(path, core._view.imports)
                if vni is None or vni not in l2:
                    return f"received from {peer} but no VNI imports it (route targets)"
    for key, (peer, reason, when) in reversed(core.rejections.items()):
        if type(key) is MacIpKey and (key.mac if is_mac else key.ip) == query:
            return f"rejected from {peer}: {reason.removeprefix('rejected_')} at {when}"
    return "no route for it"
