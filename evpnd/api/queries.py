"""The control API's queries: read the core's state (never mutate it) and build reply models.

They run in the daemon's event loop, between two turns of the owner task, so they see a
consistent state without locks (DESIGN rule 2). Each is a single pass over what it needs.
Mutations (clear dup-addr) are handed to the owner task through ApiContext.clear_duplicates.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from evpnd.api import protocol as p
from evpnd.api.models import (
    ClearDupReply,
    ExplainReply,
    ExplainVni,
    HostRoute,
    KernelDiffEntry,
    KernelDiffReply,
    LocalMacInfo,
    MacsReply,
    PeerEntry,
    PeersReply,
    RouteEntry,
    RoutesReply,
    StatusReply,
    VniEntry,
    VnisReply,
)
from evpnd.routes.evpn import ImetKey, MacIpKey, Path, PrefixKey, describe


class QueryError(Exception):
    """A request that is well formed but cannot be answered (unknown VNI, bad address)."""


AUTO_IMPORT = "auto (*:VNI)"


# -- helpers ---------------------------------------------------------------------------------


def _check_vni(ctx, vni: int | None) -> None:
    if vni is not None and vni not in {v.vni for v in ctx.cfg.all_vnis()}:
        raise QueryError(f"unknown VNI {vni}")


@dataclass(frozen=True, slots=True)
class Raw:
    """A reply already in its JSON form, for lists that may hold 100k entries: building a
    pydantic model per entry would block the event loop for seconds. Tests check that `data`
    equals `model.model_validate(data).model_dump(mode="json")`."""

    model: type[BaseModel]
    data: dict


def route_dict(path: Path, flags: list[str]) -> dict[str, Any]:
    """One path as RouteEntry's JSON (every field, in the model's order)."""
    key = path.key
    attrs = path.attrs
    kind = type(key)
    return {
        "type": key.route_type,
        "rd": key.rd,
        "prefix": describe(key),
        "mac": key.mac if kind is MacIpKey else None,  # type: ignore[union-attr]
        "ip": key.ip if kind is MacIpKey else (key.prefix if kind is PrefixKey else None),  # type: ignore[union-attr]
        "origin": key.origin if kind is ImetKey else None,  # type: ignore[union-attr]
        "etag": key.etag,
        "vni": path.vni,
        "l3vni": path.l3vni,
        "next_hop": path.next_hop,
        "seq": attrs.mobility_seq,
        "flags": flags,
        "peer": path.peer,
        "esi": path.esi,
        "route_targets": list(attrs.route_targets),
        "router_mac": attrs.router_mac,
        "gateway": path.gateway,
        "as_path": list(attrs.as_path),
        "originator_id": attrs.originator_id,
    }


def route_entry(path: Path, flags: list[str]) -> RouteEntry:
    return RouteEntry.model_validate(route_dict(path, flags))


def _flags(item: dict) -> list[str]:
    """Core.iter_paths() booleans -> flag names ('duplicate' is shown as 'frozen')."""
    names = (("best", "best"), ("stale", "stale"), ("duplicate", "frozen"))
    names += (("sticky", "sticky"), ("local", "local"))
    return [name for field, name in names if item.get(field)]


def path_flags(ctx, path: Path) -> list[str]:
    rib = ctx.core.rib
    flags = []
    if rib.best.get(path.key) is path:
        flags.append("best")
    if rib.is_stale(path):
        flags.append("stale")
    if type(path.key) is MacIpKey and ctx.core.mobility.is_frozen(path.vni, path.key.mac):
        flags.append("frozen")
    if path.attrs.sticky:
        flags.append("sticky")
    if path.is_local:
        flags.append("local")
    return flags


# -- show routes ------------------------------------------------------------------------------


def show_routes(ctx, args: p.RoutesArgs) -> Raw:
    _check_vni(ctx, args.vni)
    rd = None
    if args.rd is not None:
        from evpnd.routes.rd import RDError, normalize_rd

        try:
            rd = normalize_rd(args.rd)
        except RDError as exc:
            raise QueryError(f"bad RD: {exc}") from None
    out = []
    for item in ctx.core.iter_paths():
        path: Path = item["path"]
        key = path.key
        if args.type is not None and key.route_type != args.type:
            continue
        if rd is not None and key.rd != rd:
            continue
        if args.vni is not None:
            # Where the best path is imported; other paths by their label.
            vnis = {*item.get("l2vnis", ()), *item.get("l3vnis", ()), path.vni}
            if args.vni not in vnis:
                continue
        out.append(route_dict(path, _flags(item)))
    return Raw(RoutesReply, {"routes": out})


# -- show peers -------------------------------------------------------------------------------


def _speaker_peers(status: dict) -> dict[str, dict]:
    """Speaker.status()'s per-peer part, keyed by address, whatever container it uses."""
    peers = status.get("peers") or {}
    if isinstance(peers, list):
        return {str(item.get("address") or item.get("peer")): item for item in peers}
    return {str(k): v for k, v in peers.items() if isinstance(v, dict)}


def speaker_status(ctx) -> dict:
    try:
        status = ctx.speaker_status()
    except Exception:  # the speaker restarting must not break `show peers`
        return {}
    return status if isinstance(status, dict) else {}


def show_peers(ctx, args: p.PeersArgs) -> PeersReply:
    now = time.time()
    status = speaker_status(ctx)
    speaker = _speaker_peers(status)
    core_stats = ctx.core.peer_stats()
    advertised = len(ctx.core.advertised())
    entries = []
    for peer in ctx.cfg.peers:
        addr = str(peer.address)
        stats = core_stats.get(addr, {})
        sp = speaker.get(addr, {})
        state = stats.get("state") or sp.get("state") or "idle"
        since = stats.get("since") or sp.get("since")
        up = state == "up"
        entries.append(
            PeerEntry(
                address=addr,
                remote_as=peer.remote_as,
                description=peer.description,
                state=state,
                uptime=(now - since) if up and since else None,
                received=stats.get("received", 0),
                accepted=stats.get("accepted", 0),
                rejected=stats.get("rejected", 0),
                advertised=advertised if up else 0,
                last_error=str(stats.get("reason") or sp.get("last_reason") or ""),
            )
        )
    pid = status.get("exabgp_pid", status.get("pid"))
    return PeersReply(
        router_id=str(ctx.cfg.router_id),
        asn=ctx.cfg.asn,
        uptime=now - ctx.started_at,
        exabgp_pid=pid if isinstance(pid, int) else None,
        exabgp_restarts=int(status.get("restarts") or 0),
        peers=entries,
    )


# -- show vni ---------------------------------------------------------------------------------


def _sorted_ips(values: Iterable[str]) -> list[str]:
    def order(ip: str):
        try:
            a = ipaddress.ip_address(ip)
            return (a.version, int(a), ip)
        except ValueError:
            return (9, 0, ip)

    return sorted(values, key=order)


def vni_entry(ctx, vni: int, local_macs: dict[int, int]) -> VniEntry:
    cfg = ctx.cfg
    item = cfg.vni(vni)
    desired = ctx.core.desired
    imports = cfg.import_rts_for(vni)
    common = {
        "vni": vni,
        "vxlan_device": item.device,
        "rd": cfg.rd_for(vni),
        "import_rts": imports if imports is not None else [AUTO_IMPORT],
        "export_rts": cfg.export_rts_for(vni),
    }
    if any(v.vni == vni for v in cfg.l2vnis):
        l3 = cfg.l3vni_of(vni)
        return VniEntry(
            **common,
            kind="l2",
            bridge=item.bridge,
            local_macs=local_macs.get(vni, 0),
            remote_macs=len(desired.fdb.get(vni, {})),
            remote_vteps=_sorted_ips(desired.flood.get(vni, ())),
            l3vni=l3.vni if l3 else None,
        )
    return VniEntry(
        **common,
        kind="l3",
        bridge=item.bridge_name,
        table=item.table,
        l2vnis=list(item.l2vnis),
        prefixes=len(desired.routes.get(vni, {})),
        remote_vteps=_sorted_ips(desired.rmacs.get(vni, {})),
    )


def show_vni(ctx, args: p.VniArgs) -> VnisReply:
    _check_vni(ctx, args.vni)
    vnis = [args.vni] if args.vni is not None else [v.vni for v in ctx.cfg.all_vnis()]
    local: dict[int, int] = {}
    for (v, _mac), st in ctx.core.mobility.local.items():
        if st.present:
            local[v] = local.get(v, 0) + 1
    return VnisReply(vnis=[vni_entry(ctx, v, local) for v in vnis])


# -- show macs --------------------------------------------------------------------------------


def show_macs(ctx, args: p.MacsArgs) -> Raw:
    """FRR's `show evpn mac vni all`: per (VNI, MAC) one entry, local or remote."""
    _check_vni(ctx, args.vni)
    is_frozen = ctx.core.mobility.is_frozen
    out = []
    for row in ctx.core.mac_table(args.vni):
        if args.duplicate and not row.get("duplicate"):
            continue
        vni, mac = row["vni"], row["mac"]
        out.append(
            {
                "vni": vni,
                "mac": mac,
                "type": row["type"],
                "vtep": row.get("vtep"),
                "ips": list(row.get("ips", ())),
                "local_seq": row.get("local_seq", 0),
                "remote_seq": row.get("remote_seq", 0),
                "sticky": bool(row.get("sticky")),
                "duplicate": bool(row.get("duplicate")),
                "frozen": is_frozen(vni, mac),
                "moves": row.get("moves", 0),
                "paths": row.get("paths", 0),
            }
        )
    return Raw(MacsReply, {"macs": out})


# -- show kernel diff -------------------------------------------------------------------------

_PROBLEMS = {"missing": "missing", "extra": "extra", "different": "different"}
_PROBLEMS |= {"conflicts": "conflict", "conflict": "conflict", "changed": "different"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return " ".join(str(x) for x in value if x is not None) or None
    return str(value)


def _first(item: dict, *names: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def _diff_entry(problem: str, item: Any) -> KernelDiffEntry:
    """Dataplane.kernel_diff()'s entries: {"kind", "vni", "key", "want", "have"}."""
    if not isinstance(item, dict):
        kind, vni, key, want, have = [*item, None, None][:5]
        item = {"kind": kind, "vni": vni, "key": key, "want": want, "have": have}
    return KernelDiffEntry(
        kind=str(item.get("kind", "?")),
        vni=int(item.get("vni") or 0),
        key=str(item.get("key", "?")),
        problem=_PROBLEMS.get(str(item.get("problem", problem)), "different"),  # type: ignore
        wanted=_text(_first(item, "want", "wanted")),
        kernel=_text(_first(item, "have", "kernel")),
    )


def show_kernel_diff(ctx, args: p.KernelDiffArgs) -> KernelDiffReply:
    diff = ctx.kernel_diff() or {}
    entries: list[KernelDiffEntry] = []
    for name, items in diff.items():
        if name in _PROBLEMS and isinstance(items, list):
            entries += [_diff_entry(name, e) for e in items]
    entries.sort(key=lambda e: (e.vni, e.kind, e.key, e.problem))
    return KernelDiffReply(converged=not entries, entries=entries)


# -- clear dup-addr ---------------------------------------------------------------------------


async def clear_dup(ctx, args: p.ClearDupArgs) -> ClearDupReply:
    _check_vni(ctx, args.vni)
    before = len(ctx.core.mobility.duplicates(args.vni, args.mac))
    await ctx.clear_duplicates(args.vni, args.mac)
    after = len(ctx.core.mobility.duplicates(args.vni, args.mac))
    return ClearDupReply(vni=args.vni, mac=args.mac, cleared=before - after)


# -- explain ----------------------------------------------------------------------------------


def _normalize_target(text: str) -> str:
    t = text.strip().lower()
    try:
        return str(ipaddress.ip_address(t))
    except ValueError:
        pass
    try:
        return p._mac(t) or t
    except ValueError:
        raise QueryError(f"not a MAC or IP address: {text!r}") from None


def _type2_key(rd: str, text: str) -> MacIpKey | None:
    """describe()'s '[2]:[0]:[48]:[mac]' or '[2]:[0]:[48]:[mac]:[32]:[ip]' back to the key."""
    parts = [x.strip("[]") for x in text.split("]:[")]
    if len(parts) not in (4, 6) or parts[0] != "2" or not parts[1].isdigit():
        return None
    return MacIpKey(rd, int(parts[1]), parts[3], parts[5] if len(parts) == 6 else None)


def _explained_path(ctx, d: dict | None) -> RouteEntry | None:
    """Core.explain()'s path description -> the full route (looked up in the RIB)."""
    if not d:
        return None
    key = d.get("key") or _type2_key(d.get("rd", ""), str(d.get("route", "")))
    path = ctx.core.rib.get(d.get("peer"), key) if key is not None else None
    if path is None:  # cannot happen within one loop turn, unless the core's format changed
        return None
    return route_entry(path, path_flags(ctx, path))


def explain(ctx, args: p.ExplainArgs) -> ExplainReply:
    _check_vni(ctx, args.vni)
    query = _normalize_target(args.target)
    raw = ctx.core.explain(query, args.vni)
    vnis = []
    for v in raw.get("vnis", []):
        local = v.get("local")
        candidates = [_explained_path(ctx, c) for c in v.get("candidates", [])]
        vnis.append(
            ExplainVni(
                vni=v["vni"],
                kernel=_text(v.get("kernel")),
                winner=_explained_path(ctx, v.get("winner")),
                reason=v.get("reason"),
                why_not=v.get("why_not"),
                note=v.get("note"),
                duplicate=bool(v.get("duplicate")),
                local=LocalMacInfo(**local) if local else None,
                candidates=[c for c in candidates if c is not None],
            )
        )
    routes = [
        HostRoute(vni=r["vni"], prefix=r["prefix"], kernel=_route_text(r.get("kernel")))
        for r in raw.get("routes", [])
    ]
    if raw.get("kind") == "ip":
        routes += _covering_routes(ctx, query, {(r.vni, r.prefix) for r in routes})
    return ExplainReply(
        query=raw.get("query", query),
        kind=raw.get("kind", "mac"),
        vnis=vnis,
        routes=routes,
        why_not=raw.get("why_not"),
    )


def _covering_routes(ctx, ip: str, seen: set[tuple[int, str]]) -> list[HostRoute]:
    """Type-5 routes in the L3VNI tables that cover the IP, longest prefix first (the one the
    kernel uses for it comes first)."""
    addr = ipaddress.ip_address(ip)
    found = []
    for vni, table in ctx.core.desired.routes.items():
        for prefix, nexthop in table.items():
            if (vni, prefix) in seen:
                continue
            try:
                net = ipaddress.ip_network(prefix, strict=False)
            except ValueError:
                continue
            if net.version == addr.version and addr in net:
                found.append((net.prefixlen, vni, prefix, nexthop))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return [HostRoute(vni=v, prefix=pfx, kernel=_route_text(nh)) for _, v, pfx, nh in found]


def _route_text(value: Any) -> str | None:
    if value is None:
        return None
    vtep = getattr(value, "vtep", None)
    if vtep is not None:
        rmac = getattr(value, "router_mac", None)
        return f"via {vtep}" + (f" rmac {rmac}" if rmac else "")
    return str(value)


# -- show status ------------------------------------------------------------------------------


def show_status(ctx, args: p.StatusArgs) -> StatusReply:
    stats = ctx.core.peer_stats()
    return StatusReply(
        version=_version(),
        router_id=str(ctx.cfg.router_id),
        asn=ctx.cfg.asn,
        uptime=time.time() - ctx.started_at,
        vnis=len(ctx.cfg.all_vnis()),
        peers_up=sum(1 for s in stats.values() if s.get("state") == "up"),
        peers=len(ctx.cfg.peers),
        routes=sum(len(t) for t in ctx.core.rib.adj_in.values()),
        reloads=int(getattr(ctx, "reloads", 0)),
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evpnd")
    except PackageNotFoundError:
        return "unknown"


_SYNC = {
    "show routes": show_routes,
    "show peers": show_peers,
    "show vni": show_vni,
    "show macs": show_macs,
    "show kernel diff": show_kernel_diff,
    "explain": explain,
    "show status": show_status,
}


async def run_query(ctx, cmd: str, args: p._Args) -> BaseModel | Raw:
    if cmd == "clear dup-addr":
        return await clear_dup(ctx, args)  # type: ignore[arg-type]
    return _SYNC[cmd](ctx, args)
