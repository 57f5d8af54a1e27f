"""The control API's queries: read the core's state (never mutate it) and build reply models.

They run in the daemon's event loop, between two turns of the owner task, so they see a
consistent state without locks (DESIGN rule 2). Each is a single pass over what it needs.
Mutations (clear dup-addr) are handed to the owner task through ApiContext.clear_duplicates.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from evpnd.api import protocol as p
from evpnd.api.models import (
    ClearDupReply,
    ClearPeerReply,
    ExplainReply,
    ExplainVni,
    HostRoute,
    KernelDiffEntry,
    KernelDiffReply,
    LocalMacInfo,
    MacsReply,
    MtuReply,
    PeerEntry,
    PeersReply,
    PolicyReply,
    PolicyVerdict,
    RouteEntry,
    RoutesReply,
    StatusReply,
    VniEntry,
    VnisReply,
    VniTunnel,
)
from evpnd.config import L2VniConfig, tunnel_table
from evpnd.core import Candidate, RouteNextHop
from evpnd.routes.evpn import ImetKey, MacIpKey, Path, PrefixKey, describe

if TYPE_CHECKING:
    from evpnd.api import ApiContext


class QueryError(Exception):
    """A request that is well formed but cannot be answered (unknown VNI, bad address)."""


AUTO_IMPORT = "auto (*:VNI)"


# -- helpers ---------------------------------------------------------------------------------


def _check_vni(ctx: ApiContext, vni: int | None) -> None:
    if vni is not None and vni not in {v.vni for v in ctx.cfg.all_vnis()}:
        raise QueryError(f"unknown VNI {vni}")


@dataclass(frozen=True, slots=True)
class Raw:
    """A reply already in its JSON form, for lists that may hold 100k entries: building a
    pydantic model per entry would block the event loop for seconds. Tests check that `data`
    equals `model.model_validate(data).model_dump(mode="json")`."""

    model: type[BaseModel]
    data: dict[str, Any]


def route_dict(path: Path, flags: list[str]) -> dict[str, Any]:
    """One path as RouteEntry's JSON (every field, in the model's order)."""
    key = path.key
    attrs = path.attrs
    return {
        "type": key.route_type,
        "rd": key.rd,
        "prefix": describe(key),
        "mac": key.mac if isinstance(key, MacIpKey) else None,
        "ip": key.ip
        if isinstance(key, MacIpKey)
        else (key.prefix if isinstance(key, PrefixKey) else None),
        "origin": key.origin if isinstance(key, ImetKey) else None,
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


def candidate_entry(candidate: Candidate) -> RouteEntry:
    """A path with its flags (decided by the core's one rule, CoreViews.flags)."""
    return route_entry(candidate.path, candidate.flags.names())


# -- show routes ------------------------------------------------------------------------------


def show_routes(ctx: ApiContext, args: p.RoutesArgs) -> Raw:
    _check_vni(ctx, args.vni)
    rd = None
    if args.rd is not None:
        from evpnd.routes.rd import RDError, normalize_rd

        try:
            rd = normalize_rd(args.rd)
        except RDError as exc:
            raise QueryError(f"bad RD: {exc}") from None
    out = []
    for row in ctx.core.views.routes():
        path = row.path
        key = path.key
        if args.type is not None and key.route_type != args.type:
            continue
        if rd is not None and key.rd != rd:
            continue
        # Where the best path is imported; other paths by their label.
        if args.vni is not None and args.vni not in {*row.l2vnis, *row.l3vnis, path.vni}:
            continue
        out.append(route_dict(path, row.flags.names()))
    return Raw(RoutesReply, {"routes": out})


# -- show peers -------------------------------------------------------------------------------


def _speaker_peers(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Speaker.status()'s per-peer part, keyed by address, whatever container it uses."""
    peers = status.get("peers") or {}
    if isinstance(peers, list):
        return {str(item.get("address") or item.get("peer")): item for item in peers}
    return {str(k): v for k, v in peers.items() if isinstance(v, dict)}


def speaker_status(ctx: ApiContext) -> dict[str, Any]:
    try:
        status = ctx.speaker_status()
    except Exception:  # the speaker restarting must not break `show peers`
        return {}
    return status if isinstance(status, dict) else {}


def _counts(value: object) -> dict[str, int]:
    """A {name: count} from the speaker's status, whatever else it holds."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and v}


def show_peers(ctx: ApiContext, args: p.PeersArgs) -> PeersReply:
    now = time.time()
    status = speaker_status(ctx)
    speaker = _speaker_peers(status)
    core_stats = ctx.core.views.peers()
    advertised = len(ctx.core.views.advertised())
    entries = []
    for peer in ctx.cfg.peers:
        addr = str(peer.address)
        stats = core_stats.get(addr)
        sp = speaker.get(addr, {})
        state = (stats.state if stats else None) or sp.get("state") or "idle"
        since = (stats.since if stats else None) or sp.get("since")
        up = state == "up"
        entries.append(
            PeerEntry(
                address=addr,
                remote_as=peer.remote_as,
                description=peer.description,
                state=state,
                uptime=(now - since) if up and since else None,
                received=stats.received if stats else 0,
                accepted=stats.accepted if stats else 0,
                rejected=stats.rejected if stats else 0,
                advertised=advertised if up else 0,
                last_error=str((stats.reason if stats else "") or sp.get("last_reason") or ""),
                rejects=dict(stats.rejects) if stats else {},
                decode_errors=_counts(sp.get("decode_errors")),
                max_routes=peer.max_routes,
                limit_state=stats.limit_state if stats else "",
                limit_until=stats.limit_until if stats else None,
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
    def order(ip: str) -> tuple[int, int, str]:
        try:
            a = ipaddress.ip_address(ip)
            return (a.version, int(a), ip)
        except ValueError:
            return (9, 0, ip)

    return sorted(values, key=order)


def vni_entry(ctx: ApiContext, vni: int, local_counts: dict[int, int] | None = None) -> VniEntry:
    cfg = ctx.cfg
    item = cfg.vni(vni)
    state = ctx.core.views.vni_state(vni, local_counts)
    imports = cfg.import_rts_for(vni)
    import_rts = imports if imports is not None else [AUTO_IMPORT]
    if isinstance(item, L2VniConfig):
        l3 = cfg.l3vni_of(vni)
        return VniEntry(
            vni=vni,
            vxlan_device=cfg.l2_device(item),
            rd=cfg.rd_for(vni),
            import_rts=import_rts,
            export_rts=cfg.export_rts_for(vni),
            kind="l2",
            bridge=item.bridge,
            local_macs=state.local_macs,
            remote_macs=state.remote_macs,
            remote_vteps=_sorted_ips(state.flood_vteps),
            l3vni=l3.vni if l3 else None,
        )
    return VniEntry(
        vni=vni,
        vxlan_device=item.device,
        rd=cfg.rd_for(vni),
        import_rts=import_rts,
        export_rts=cfg.export_rts_for(vni),
        kind="l3",
        bridge=item.bridge_name,
        table=item.table,
        l2vnis=list(item.l2vnis),
        prefixes=state.prefixes,
        remote_vteps=_sorted_ips(state.rmac_vteps),
    )


def show_vni(ctx: ApiContext, args: p.VniArgs) -> VnisReply:
    _check_vni(ctx, args.vni)
    vnis = [args.vni] if args.vni is not None else [v.vni for v in ctx.cfg.all_vnis()]
    counts = ctx.core.views.local_mac_counts() if args.vni is None else None
    entries = [vni_entry(ctx, v, counts) for v in vnis]
    if ctx.cfg.static_tunnels:  # (the dataplane is asked only when there are tunnels)
        tunnels = vni_tunnels(ctx)
        for entry in entries:
            entry.tunnels = tunnels.get(entry.vni, [])
    return VnisReply(vnis=entries)


def vni_tunnels(ctx: ApiContext) -> dict[int, list[VniTunnel]]:
    """VNI -> its static tunnels with the dataplane's status of each (`show mtu`'s rows): an L2
    tunnel belongs to the L2VNI whose bridge it joins, a GRE one to the L3VNI of its table."""
    cfg = ctx.cfg
    rows = ((ctx.dataplane_stats() or {}).get("mtu") or {}).get("devices", [])
    status = {r.get("device"): str(r.get("status") or "ok") for r in rows}
    by_bridge = {v.bridge: v.vni for v in cfg.l2vnis}
    by_table = {tunnel_table(v): v.vni for v in cfg.l3vnis}
    out: dict[int, list[VniTunnel]] = {}
    for t in cfg.static_tunnels:
        vni = by_bridge.get(t.bridge or "") if t.l2 else by_table.get(t.table or 0)
        if vni is None:
            continue
        state = status.get(t.name, "not set up (yet)")
        out.setdefault(vni, []).append(
            VniTunnel(name=t.name, type=t.type, remote=str(t.remote), status=state)
        )
    return out


# -- show macs --------------------------------------------------------------------------------


def show_macs(ctx: ApiContext, args: p.MacsArgs) -> Raw:
    """FRR's `show evpn mac vni all`: per (VNI, MAC) one entry, local or remote."""
    _check_vni(ctx, args.vni)
    out = []
    for row in ctx.core.views.mac_table(args.vni):
        if args.duplicate and not row.duplicate:
            continue
        out.append(
            {
                "vni": row.vni,
                "mac": row.mac,
                "type": row.type,
                "vtep": row.vtep,
                "ips": list(row.ips),
                "local_seq": row.local_seq,
                "remote_seq": row.remote_seq,
                "sticky": row.sticky,
                "duplicate": row.duplicate,
                "frozen": row.frozen,
                "moves": row.moves,
                "paths": row.paths,
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


def _first(item: dict[str, Any], *names: str) -> Any:
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


def show_kernel_diff(ctx: ApiContext, args: p.KernelDiffArgs) -> KernelDiffReply:
    diff = ctx.kernel_diff() or {}
    entries: list[KernelDiffEntry] = []
    for name, items in diff.items():
        if name in _PROBLEMS and isinstance(items, list):
            entries += [_diff_entry(name, e) for e in items]
    entries.sort(key=lambda e: (e.vni, e.kind, e.key, e.problem))
    return KernelDiffReply(converged=not entries, entries=entries)


# -- clear dup-addr ---------------------------------------------------------------------------


async def clear_dup(ctx: ApiContext, args: p.ClearDupArgs) -> ClearDupReply:
    _check_vni(ctx, args.vni)
    before = len(ctx.core.views.duplicates(args.vni, args.mac))
    await ctx.clear_duplicates(args.vni, args.mac)
    after = len(ctx.core.views.duplicates(args.vni, args.mac))
    return ClearDupReply(vni=args.vni, mac=args.mac, cleared=before - after)


# -- clear peer -------------------------------------------------------------------------------


async def clear_peer(ctx: ApiContext, args: p.ClearPeerArgs) -> ClearPeerReply:
    address = None if args.address is None else str(args.address)
    if address is not None and address not in {str(x.address) for x in ctx.cfg.peers}:
        raise QueryError(f"no peer {address} is configured")
    released = await ctx.clear_peer(address)
    return ClearPeerReply(address=address, released=released)


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


def explain(ctx: ApiContext, args: p.ExplainArgs) -> ExplainReply:
    _check_vni(ctx, args.vni)
    query = _normalize_target(args.target)
    found = ctx.core.views.explain(query, args.vni)
    vnis = []
    for v in found.vnis:
        local = v.local
        vnis.append(
            ExplainVni(
                vni=v.vni,
                kernel=v.kernel,
                winner=candidate_entry(v.winner) if v.winner is not None else None,
                reason=v.reason,
                why_not=v.why_not,
                note=v.note,
                duplicate=v.duplicate,
                local=LocalMacInfo(
                    present=local.present,
                    ips=list(local.ips),
                    seq=local.seq,
                    sticky=local.sticky,
                    advertised=local.advertised,
                )
                if local is not None
                else None,
                candidates=[candidate_entry(c) for c in v.candidates],
            )
        )
    routes = [
        HostRoute(vni=r.vni, prefix=r.prefix, kernel=_route_text(r.kernel)) for r in found.routes
    ]
    if found.kind == "ip":
        routes += _covering_routes(ctx, query, {(r.vni, r.prefix) for r in routes})
    return ExplainReply(
        query=found.query,
        kind="ip" if found.kind == "ip" else "mac",
        vnis=vnis,
        routes=routes,
        why_not=found.why_not,
        policy=_verdict(ctx, query, args),
    )


def _verdict(ctx: ApiContext, query: str, args: p.ExplainArgs) -> PolicyVerdict | None:
    if args.to is None:
        return None
    to = _normalize_target(args.to)
    proto = args.proto or ("tcp" if args.port is not None else None)
    found = ctx.policy_verdict(query, to, proto, args.port)
    if found is None:
        raise QueryError("no policy configured (policy: in the configuration file)")
    return PolicyVerdict(to=to, proto=proto, port=args.port, **found)


# -- show policy ------------------------------------------------------------------------------


def show_policy(ctx: ApiContext, args: p.PolicyArgs) -> PolicyReply:
    return PolicyReply.model_validate(ctx.policy_status())


def _covering_routes(ctx: ApiContext, ip: str, seen: set[tuple[int, str]]) -> list[HostRoute]:
    """Type-5 routes in the L3VNI tables that cover the IP, longest prefix first (the one the
    kernel uses for it comes first)."""
    addr = ipaddress.ip_address(ip)
    found = []
    for route in ctx.core.views.kernel_routes():
        if (route.vni, route.prefix) in seen:
            continue
        try:
            net = ipaddress.ip_network(route.prefix, strict=False)
        except ValueError:
            continue
        if net.version == addr.version and addr in net:
            found.append((net.prefixlen, route.vni, route.prefix, route.kernel))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return [HostRoute(vni=v, prefix=pfx, kernel=_route_text(nh)) for _, v, pfx, nh in found]


def _route_text(value: RouteNextHop | None) -> str | None:
    if value is None:
        return None
    return f"via {value.vtep}" + (f" rmac {value.router_mac}" if value.router_mac else "")


# -- show status ------------------------------------------------------------------------------


def show_status(ctx: ApiContext, args: p.StatusArgs) -> StatusReply:
    stats = ctx.core.views.peers()
    return StatusReply(
        version=_version(),
        router_id=str(ctx.cfg.router_id),
        asn=ctx.cfg.asn,
        uptime=time.time() - ctx.started_at,
        vnis=len(ctx.cfg.all_vnis()),
        peers_up=sum(1 for s in stats.values() if s.state == "up"),
        peers=len(ctx.cfg.peers),
        routes=ctx.core.views.path_count(),
        reloads=int(getattr(ctx, "reloads", 0)),
        **_dataplane_status(ctx),
    )


def _dataplane_status(ctx: ApiContext) -> dict[str, Any]:
    dp = ctx.dataplane_stats() or {}
    return {
        "full_pass_cpu_seconds": float(
            dp.get("last_periodic_cpu_seconds") or dp.get("last_full_cpu_seconds") or 0.0
        ),
        "full_pass_seconds": float(dp.get("last_full_seconds") or 0.0),
        "full_passes": int(dp.get("full_passes") or 0),
        "kernel_writes": int(dp.get("messages_sent") or 0) + int(dp.get("device_writes") or 0),
        "device_problems": [str(p) for p in dp.get("device_problems") or []],
        "monitor_filter": str(dp.get("monitor_filter") or ""),
    }


def _version() -> str:
    # read once at import (evpnd/__init__.py): importlib.metadata scans site-packages per call,
    # and `show status` is what monitoring polls, also during a flood
    from evpnd import __version__

    return __version__


# -- show mtu (issue 9) -------------------------------------------------------------------------


def show_mtu(ctx: ApiContext, args: p.MtuArgs) -> MtuReply:
    found = (ctx.dataplane_stats() or {}).get("mtu") or {}
    return MtuReply.model_validate(
        {"devices": found.get("devices", []), "warnings": found.get("warnings", [])}
    )


_SYNC: dict[str, Callable[[ApiContext, Any], BaseModel | Raw]] = {
    "show routes": show_routes,
    "show peers": show_peers,
    "show vni": show_vni,
    "show macs": show_macs,
    "show kernel diff": show_kernel_diff,
    "explain": explain,
    "show status": show_status,
    "show policy": show_policy,
    "show mtu": show_mtu,
}


async def run_query(ctx: ApiContext, cmd: str, args: p._Args) -> BaseModel | Raw:
    if cmd == "clear dup-addr" and isinstance(args, p.ClearDupArgs):
        return await clear_dup(ctx, args)
    if cmd == "clear peer" and isinstance(args, p.ClearPeerArgs):
        return await clear_peer(ctx, args)
    return _SYNC[cmd](ctx, args)
