"""Text rendering of the API's replies for evpnctl: aligned tables in FRR's style.

Pure functions from a reply model to a string; column widths follow the content, so the usual
IPv4 fabric fits in 80 columns. Routes are grouped under their RD, as FRR prints them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import groupby

from evpnd.api.models import (
    ClearDupReply,
    ClearPeerReply,
    ExplainReply,
    KernelDiffReply,
    MacsReply,
    MtuReply,
    PeersReply,
    RouteEntry,
    RoutesReply,
    StatusReply,
    VniEntry,
    VnisReply,
)

_FLAG_CHARS = {"best": ">", "stale": "s", "frozen": "f", "sticky": "k", "local": "l"}
ROUTE_LEGEND = "Flags: > best, s stale, f frozen, k sticky, l local (originated by evpnd)"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], right: set[int] = frozenset()):
    """Columns separated by two spaces; columns in `right` are right-aligned (numbers)."""
    cells = [list(map(str, header))] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for row in cells:
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def duration(seconds: float | None) -> str:
    """FRR's uptime format: hh:mm:ss under a day, then 1d02h03m, then 1w2d03h."""
    if seconds is None:
        return "never"
    s = int(max(seconds, 0))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d == 0:
        return f"{h:02d}:{m:02d}:{sec:02d}"
    if d < 7:
        return f"{d}d{h:02d}h{m:02d}m"
    return f"{d // 7}w{d % 7}d{h:02d}h"


def route_what(r: RouteEntry) -> str:
    if r.type == 2:
        return f"{r.mac} {r.ip}" if r.ip else str(r.mac)
    if r.type == 3:
        return str(r.origin)
    return str(r.ip)


def flags(r: RouteEntry) -> str:
    return "".join(_FLAG_CHARS[f] for f in _FLAG_CHARS if f in r.flags)


def render_routes(reply: RoutesReply) -> str:
    if not reply.routes:
        return "No EVPN routes."
    lines = [ROUTE_LEGEND, ""]
    routes = sorted(reply.routes, key=lambda r: (r.rd, r.type, route_what(r), r.peer))
    for rd, group in groupby(routes, key=lambda r: r.rd):
        lines.append(f"Route Distinguisher: {rd}")
        rows = [(r.type, route_what(r), r.vni, r.next_hop, r.seq, flags(r), r.peer) for r in group]
        header = ("T", "MAC/IP or prefix", "VNI", "Next hop", "Seq", "Flags", "Peer")
        lines += ["  " + ln for ln in table(header, rows, right={2, 4}).splitlines()]
        lines.append("")
    n = len(reply.routes)
    best = sum(1 for r in reply.routes if "best" in r.flags)
    lines.append(f"Displayed {n} paths, {best} best")
    return "\n".join(lines)


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def render_peers(reply: PeersReply) -> str:
    exa = f"ExaBGP pid {reply.exabgp_pid}" if reply.exabgp_pid else "ExaBGP not running"
    head = (
        f"Router ID {reply.router_id}, AS {reply.asn}, up {duration(reply.uptime)}, "
        f"{exa} ({reply.exabgp_restarts} restarts)"
    )
    if not reply.peers:
        return head + "\nNo peers configured."
    rows = [
        (
            p.address,
            p.remote_as,
            p.state,
            duration(p.uptime) if p.state == "up" else "-",
            p.received,
            p.accepted,
            p.rejected,
            p.advertised,
        )
        for p in reply.peers
    ]
    header = ("Peer", "AS", "State", "Up", "Rcvd", "Accepted", "Rejected", "Adv")
    lines = [head, "", table(header, rows, right={1, 4, 5, 6, 7})]
    errors = [(p.address, p.last_error) for p in reply.peers if p.last_error]
    lines += [f"{addr}: last error: {err}" for addr, err in errors]
    for p in reply.peers:
        if p.rejects:
            lines.append(f"{p.address}: rejected: {_counted(p.rejects)}")
        if p.decode_errors:
            lines.append(f"{p.address}: UPDATE errors (RFC 7606): {_counted(p.decode_errors)}")
        if p.limit_state == "max-routes":
            until = "until `evpnctl clear peer`" if p.limit_until is None else (
                f"for {duration(max(0.0, p.limit_until - time.time()))} (or `clear peer`)"
            )  # fmt: skip
            lines.append(f"{p.address}: over max_routes {p.max_routes}: held down {until}")
        elif p.limit_state == "warning":
            lines.append(f"{p.address}: over max_routes {p.max_routes} (warning only)")
    up = sum(1 for p in reply.peers if p.state == "up")
    lines.append(f"\nTotal peers {len(reply.peers)}, established {up}")
    return "\n".join(lines)


def _rts(values: list[str]) -> str:
    return ", ".join(values) if values else "-"


def render_vni_detail(v: VniEntry) -> str:
    lines = [f"VNI: {v.vni} ({'L2' if v.kind == 'l2' else 'L3'})"]
    if v.bridge:
        lines.append(f"  Bridge: {v.bridge}")
    lines.append(f"  VxLAN interface: {v.vxlan_device}")
    if v.table is not None:
        lines.append(f"  Routing table: {v.table}")
    if v.l3vni is not None:
        lines.append(f"  L3VNI: {v.l3vni}")
    if v.l2vnis:
        lines.append(f"  L2VNIs: {', '.join(map(str, v.l2vnis))}")
    lines.append(f"  RD: {v.rd}")
    lines.append(f"  Import RTs: {_rts(v.import_rts)}")
    lines.append(f"  Export RTs: {_rts(v.export_rts)}")
    if v.kind == "l2":
        lines.append(f"  Local MACs: {v.local_macs}")
        lines.append(f"  Remote MACs: {v.remote_macs}")
    else:
        lines.append(f"  Prefixes: {v.prefixes}")
    lines.append(f"  Remote VTEPs: {len(v.remote_vteps)}")
    lines += [f"    {vtep}" for vtep in v.remote_vteps]
    if v.tunnels:
        lines.append(f"  Static tunnels: {len(v.tunnels)}")
        lines += [f"    {t.name} ({t.type} to {t.remote}): {t.status}" for t in v.tunnels]
    return "\n".join(lines)


def render_vnis(reply: VnisReply, detail: bool = False) -> str:
    if not reply.vnis:
        return "No VNIs configured."
    if detail:
        return "\n\n".join(render_vni_detail(v) for v in reply.vnis)
    rows = [
        (
            v.vni,
            v.kind.upper(),
            v.bridge,
            v.vxlan_device,
            v.rd,
            _rts(v.export_rts),
            v.local_macs if v.kind == "l2" else v.prefixes,
            v.remote_macs if v.kind == "l2" else "-",
            len(v.remote_vteps),
        )
        for v in reply.vnis
    ]
    header = ("VNI", "Type", "Bridge", "VxLAN", "RD", "Export RT", "Local", "Remote", "VTEPs")
    note = "Local/Remote: MACs (L2), prefixes installed (L3)"
    out = table(header, rows, right={0, 6, 7, 8}) + "\n" + note
    tunnels = [(v.vni, t.name, t.type, t.remote, t.status) for v in reply.vnis for t in v.tunnels]
    if tunnels:  # a tunnel with a problem is seen where its VNI is
        out += "\n\nStatic tunnels:\n" + table(
            ("VNI", "Tunnel", "Type", "Remote", "Status"), tunnels, right={0}
        )
    return out


def render_macs(reply: MacsReply) -> str:
    if not reply.macs:
        return "No MACs."
    lines = ["Flags: K sticky, D duplicate, F frozen", ""]
    macs = sorted(reply.macs, key=lambda m: (m.vni, m.mac))
    for vni, group in groupby(macs, key=lambda m: m.vni):
        entries = list(group)
        lines.append(f"VNI {vni} #MACs (local and remote) {len(entries)}")
        rows = []
        for m in entries:
            f = ("K" if m.sticky else "") + ("D" if m.duplicate else "") + ("F" if m.frozen else "")
            rows.append(
                (m.mac, m.type, f, m.vtep, f"{m.local_seq}/{m.remote_seq}", " ".join(m.ips))
            )
        header = ("MAC", "Type", "Flags", "Remote VTEP", "Seq #'s", "IPs")
        lines += ["  " + ln for ln in table(header, rows).splitlines()]
        lines.append("")
    return "\n".join(lines).rstrip()


def render_kernel_diff(reply: KernelDiffReply) -> str:
    if reply.converged and not reply.entries:
        return "Kernel matches the wanted state (converged)."
    rows = [(e.problem, e.kind, e.vni, e.key, e.wanted, e.kernel) for e in reply.entries]
    header = ("Problem", "Kind", "VNI", "Key", "Wanted", "Kernel")
    return table(header, rows, right={2}) + f"\n{len(reply.entries)} differences"


def render_clear_peer(reply: ClearPeerReply) -> str:
    scope = f"peer {reply.address}" if reply.address else "all peers"
    if not reply.released:
        return f"No max_routes hold on {scope}."
    return f"Released {', '.join(reply.released)} (max_routes): the next session may stay up."


def render_clear(reply: ClearDupReply) -> str:
    scope = []
    if reply.mac:
        scope.append(f"MAC {reply.mac}")
    scope.append(f"VNI {reply.vni}" if reply.vni is not None else "all VNIs")
    count = "" if reply.cleared is None else f" ({reply.cleared} MACs released)"
    return f"Cleared duplicate-address state for {' in '.join(scope)}{count}."


def _path_line(r: RouteEntry) -> str:
    seq = f" seq {r.seq}" if r.type == 2 else ""
    sticky = " sticky" if "sticky" in r.flags else ""
    stale = " stale" if "stale" in r.flags else ""
    source = "local (evpnd)" if r.peer == "local" else f"peer {r.peer}"
    # a MAC's MAC/IP routes carry the same RD and next hop as its MAC-only one: the IP tells
    # them apart
    ip = f", IP {r.ip}" if r.type == 2 and r.ip else ""
    return f"{source}, RD {r.rd}{ip}, next hop {r.next_hop}{seq}{sticky}{stale}"


def _origin(r: RouteEntry) -> str:
    if r.peer == "local":
        return "originated here"
    parts = [f"originator VTEP {r.next_hop}"]
    if r.originator_id:
        parts.append(f"originator-id {r.originator_id} (reflected)")
    if r.as_path:
        parts.append(f"AS path {' '.join(map(str, r.as_path))}")
    return ", ".join(parts)


def render_explain(reply: ExplainReply) -> str:
    lines = [f"{reply.query} ({reply.kind.upper()})"]
    if not reply.vnis and not reply.routes:
        lines.append(f"  nothing installed: {reply.why_not or 'unknown'}")
    for v in reply.vnis:
        kind = "fdb" if reply.kind == "mac" else "neigh"
        lines.append(f"VNI {v.vni}:")
        installed = f"{kind} {reply.query} -> {v.kernel}" if v.kernel else "nothing installed"
        lines.append(f"  kernel:  {installed}")
        if v.winner is not None:
            lines.append(f"  winner:  {v.winner.prefix}")
            lines.append(f"           {_path_line(v.winner)}")
            lines.append(f"           {_origin(v.winner)}")
        if v.reason:
            lines.append(f"  why:     {v.reason}")
        if v.why_not:
            lines.append(f"  why not: {v.why_not}")
        if v.note:
            lines.append(f"  note:    {v.note}")
        if v.local is not None:
            lc = v.local
            state = "present" if lc.present else "not present (IPs only)"
            adv = "advertised" if lc.advertised else "not advertised"
            ips = f", IPs {' '.join(lc.ips)}" if lc.ips else ""
            sticky = ", sticky" if lc.sticky else ""
            lines.append(f"  local:   {state}, seq {lc.seq}{sticky}, {adv}{ips}")
        if len(v.candidates) > 1:
            lines.append(f"  paths:   {len(v.candidates)} (winner first)")
            lines += [f"    {_path_line(c)}" for c in v.candidates]
    for r in reply.routes:
        lines.append(f"L3VNI {r.vni}: route {r.prefix} -> {r.kernel or 'not installed'}")
    if reply.policy is not None:
        v = reply.policy
        flow = f"{reply.query} -> {v.to}" + (f" {v.proto}" if v.proto else "")
        flow += f"/{v.port}" if v.port else ""
        by = f"rule {v.rule}" if v.rule else "the default"
        groups = f" (from {','.join(v.src_groups) or '-'} to {','.join(v.dst_groups) or '-'})"
        lines.append(f"policy:  {flow}: {v.action.upper()} by {by}{groups}")
    return "\n".join(lines)


def render_policy(reply) -> str:
    if not reply.enabled:
        return "no policy configured"
    ct = (
        "yes"
        if reply.bridge_conntrack
        else "NO (nf_conntrack_bridge missing: bridged rules stateless)"
    )
    lines = [f"default {reply.default} ({reply.default_packets} packets), bridge conntrack: {ct}"]
    lines.append("groups:")
    lines.append(
        f"  {'NAME':<16} {'VNI':>8} {'STATIC':>7} {'LEARNED':>8} {'MACS':>6} {'IP4':>6} {'IP6':>6}"
    )
    for g in reply.groups:
        lines.append(
            f"  {g.name:<16} {g.vni:>8} {g.static:>7} {g.learned:>8} "
            f"{g.macs:>6} {g.ip4:>6} {g.ip6:>6}"
        )
    lines.append("rules (first match wins):")
    for r in reply.rules:
        what = (r.proto or "any") + (f"/{','.join(map(str, r.ports))}" if r.ports else "")
        lines.append(
            f"  {r.name:<16} {r.from_} -> {r.to} {what} {r.action.upper()}"
            f"  {r.packets} packets {r.bytes} bytes"
        )
    for p in reply.problems:
        lines.append(f"problem: {p.where}: {p.reason}")
    return "\n".join(lines)


def render_status(reply: StatusReply) -> str:
    return (
        f"evpnd {reply.version}, router ID {reply.router_id}, AS {reply.asn}, "
        f"up {duration(reply.uptime)}\n"
        f"{reply.vnis} VNIs, {reply.peers_up}/{reply.peers} peers established, "
        f"{reply.routes} paths, {reply.reloads} reloads\n"
        f"full pass: {reply.full_pass_cpu_seconds:.3f} s CPU, "
        f"{reply.full_pass_seconds:.3f} s, {reply.full_passes} passes; "
        f"{reply.kernel_writes} kernel writes"
        + (f"; monitor filter {reply.monitor_filter}" if reply.monitor_filter else "")
        + "".join(f"\ndevice problem: {p}" for p in reply.device_problems)
    )


def render_mtu(reply: MtuReply) -> str:
    """One row per owned overlay device: the overhead broken down, the MTU and its source."""
    rows = []
    for d in reply.devices:
        o = d.overhead
        parts = "-" if o is None else (
            f"ip {o.outer_ip} + udp {o.udp} + {o.type} {o.header} + eth {o.inner_ethernet}"
            + (f" + key {o.key}" if o.key else "") + (f" + opt {o.options}" if o.options else "")
            + f" = {o.total}"
        )  # fmt: skip
        under = f"{d.underlay_interface or '(no route)'} {d.underlay_mtu or '-'}"
        rows.append((d.device, d.type, d.remote or "(VTEPs)", under, parts,
                     d.overlay_mtu if d.overlay_mtu is not None else "-", d.source or "-",
                     d.status))  # fmt: skip
    header = ("Device", "Type", "Remote", "Underlay MTU", "Overhead", "Overlay MTU", "Source",
              "Status")  # fmt: skip
    out = table(header, rows, right={5}) if rows else "No overlay devices."
    return out + "".join(f"\nwarning: {w}" for w in reply.warnings)


def render_mtu_probe(rows: list[dict]) -> str:
    if not rows:
        return "No remotes to probe."
    lines = []
    for r in rows:
        via = ", ".join(r["devices"])
        if r.get("no_route"):
            lines.append((r["remote"], via, r["size"], "NO ROUTE (not probed)", "-"))
        elif r["passed"]:
            lines.append((r["remote"], via, r["size"], "ok", r["size"]))
        else:
            passes = r["path_mtu"] if r["path_mtu"] is not None else "nothing"
            lines.append((r["remote"], via, r["size"], "BLACK HOLE", passes))
    return table(("Remote", "Devices", "Full size (DF)", "Result", "Largest passing"), lines,
                 right={2, 4})  # fmt: skip
