"""evpnctl's text tables for every reply: content, alignment and width."""

from __future__ import annotations

import pytest

from evpnd.api.models import KernelDiffEntry, KernelDiffReply
from evpnd.cli import tables
from evpnd.core.events import RouteUpdate
from tests.unit.test_api_queries import ask
from tests.unit.test_api_world import (
    MAC_DUP,
    MAC_LOCAL,
    MAC_MOVED,
    MAC_REMOTE,
    B,
    C,
    make_world,
    type2,
)


def assert_fits(text: str, width: int = 80) -> None:
    wide = [line for line in text.splitlines() if len(line) > width]
    assert not wide, f"lines wider than {width}: {wide}"


def column_of(header: str, name: str) -> int:
    return header.index(name)


async def test_routes_table_grouped_by_rd_and_aligned():
    text = tables.render_routes(await ask(make_world(), "show routes"))
    assert_fits(text)
    lines = text.splitlines()
    assert lines[0] == tables.ROUTE_LEGEND
    assert f"Route Distinguisher: {B}:1" in lines
    header = next(line for line in lines if line.strip().startswith("T  MAC/IP"))
    flags_col = column_of(header, "Flags")
    row = next(line for line in lines if MAC_MOVED in line and "local" in line)
    assert row[flags_col : flags_col + 2] == ">l"
    assert " 4 " in row  # our sequence
    stale = next(line for line in lines if C in line and "02:aa:00:00:03:01" in line)
    assert "s" in stale.split()[-2]
    assert lines[-1].startswith("Displayed ") and "best" in lines[-1]


async def test_routes_table_empty():
    w = make_world()
    assert tables.render_routes(await ask(w, "show routes", rd="192.0.2.99:1")) == "No EVPN routes."


async def test_peers_table():
    text = tables.render_peers(await ask(make_world(), "show peers"))
    assert_fits(text)
    lines = text.splitlines()
    assert lines[0].startswith("Router ID 10.0.0.1, AS 65001, up 01:02:0")
    assert "ExaBGP pid 4242 (1 restarts)" in lines[0]
    header = lines[2]
    assert header.split() == ["Peer", "AS", "State", "Up", "Rcvd", "Accepted", "Rejected", "Adv"]
    row_b = next(line for line in lines if line.startswith(B))
    assert row_b.split()[:3] == [B, "65002", "up"]
    assert row_b.split()[4:7] == ["8", "7", "1"]
    # right-aligned numbers end under their header
    assert row_b.rindex("1", 0, header.index("Rejected") + 8) == header.index("Rejected") + 7
    row_c = next(line for line in lines if line.startswith(C))
    assert row_c.split()[2:4] == ["down", "-"]
    assert lines[-1] == "Total peers 2, established 1"
    assert f"{B}: rejected: no_vni 1" in lines  # per reason, per peer


async def test_peers_table_shows_rejections_and_update_errors_per_peer():
    w = make_world()
    w.status = {**w.status, "peers": {B: {"state": "up", "decode_errors": {
        "treat_as_withdraw": 2, "attribute_discard": 1, "session_reset": 0}}}}  # fmt: skip
    hostile = type2(B, f"{B}:1", "02:bb:00:00:09:01")._replace(next_hop="127.0.0.1")
    w.apply(RouteUpdate(B, [hostile]))
    reply = await ask(w, "show peers")
    text = tables.render_peers(reply)
    assert f"{B}: rejected: nexthop_martian 1, no_vni 1" in text.splitlines()
    assert f"{B}: UPDATE errors (RFC 7606): attribute_discard 1, treat_as_withdraw 2" in text
    (entry,) = [p for p in reply.peers if p.address == B]
    assert entry.rejects == {"no_vni": 1, "nexthop_martian": 1}
    assert entry.decode_errors == {"treat_as_withdraw": 2, "attribute_discard": 1}


async def test_vni_table_and_detail():
    w = make_world()
    text = tables.render_vnis(await ask(w, "show vni"))
    assert_fits(text)
    lines = text.splitlines()
    assert lines[0].split() == ["VNI", "Type", "Bridge", "VxLAN", "RD", "Export", "RT", "Local",
                                "Remote", "VTEPs"]  # fmt: skip
    assert lines[1].split() == ["100", "L2", "br100", "vx100", "10.0.0.1:1", "65001:100", "3",
                                "2", "1"]  # fmt: skip
    assert lines[3].split()[:2] == ["5000", "L3"]
    detail = tables.render_vnis(await ask(w, "show vni", vni=100), detail=True)
    assert "  Import RTs: auto (*:VNI)" in detail.splitlines()
    assert detail.splitlines()[-1] == f"    {B}"


async def test_macs_table():
    text = tables.render_macs(await ask(make_world(), "show macs"))
    assert_fits(text)
    lines = text.splitlines()
    assert "VNI 100 #MACs (local and remote) 5" in lines
    header = next(line for line in lines if "Seq #'s" in line)
    seq_col = header.index("Seq #'s")
    moved = next(line for line in lines if MAC_MOVED in line)
    assert moved[seq_col:].startswith("4/3")
    dup = next(line for line in lines if MAC_DUP in line)
    assert dup[header.index("Flags") :].startswith("DF")
    local = next(line for line in lines if MAC_LOCAL in line)
    assert local.rstrip().endswith("10.1.0.11")
    remote = next(line for line in lines if MAC_REMOTE in line)
    assert remote[header.index("Remote VTEP") :].startswith(B)


def test_kernel_diff_rendering():
    assert tables.render_kernel_diff(KernelDiffReply(converged=True, entries=[])) == (
        "Kernel matches the wanted state (converged)."
    )
    e = KernelDiffEntry(kind="fdb", vni=100, key=MAC_REMOTE, problem="missing", wanted=B)
    text = tables.render_kernel_diff(KernelDiffReply(converged=False, entries=[e]))
    assert text.splitlines()[1].split() == ["missing", "fdb", "100", MAC_REMOTE, B, "-"]
    assert text.splitlines()[-1] == "1 differences"


async def test_clear_and_status_and_explain_rendering():
    w = make_world()
    text = tables.render_clear(await ask(w, "clear dup-addr", vni=100, mac=MAC_DUP))
    assert (
        text == f"Cleared duplicate-address state for MAC {MAC_DUP} in VNI 100 (1 MACs released)."
    )
    status = tables.render_status(await ask(w, "show status"))
    assert "1/2 peers established" in status
    explain = tables.render_explain(await ask(w, "explain", target=MAC_MOVED))
    assert_fits(explain, 100)
    lines = explain.splitlines()
    assert lines[0] == f"{MAC_MOVED} (MAC)" and lines[1] == "VNI 100:"
    assert "  kernel:  nothing installed" in lines
    assert any(line.startswith("  why:     local: higher sequence (4 > 3)") for line in lines)
    assert any(line.startswith("  paths:   2") for line in lines)
    remote = tables.render_explain(await ask(w, "explain", target=MAC_REMOTE))
    assert f"  kernel:  fdb {MAC_REMOTE} -> {B}" in remote.splitlines()
    assert f"originator VTEP {B}, AS path 65002" in remote


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (59, "00:00:59"),
        (3725, "01:02:05"),
        (90061, "1d01h01m"),
        (8 * 86400 + 3600, "1w1d01h"),
    ],  # fmt: skip
)
def test_duration(seconds, text):
    assert tables.duration(seconds) == text


async def test_explain_an_ip_routed_by_a_type5_prefix():
    text = tables.render_explain(await ask(make_world(), "explain", target="10.8.0.77"))
    assert text.splitlines() == [
        "10.8.0.77 (IP)",
        f"L3VNI 5000: route 10.8.0.0/24 -> via {B} rmac 02:00:00:00:00:02",
    ]


async def test_peers_table_shows_the_max_routes_state():
    from evpnd.config import core_settings, parse_config
    from evpnd.core import Core
    from tests.unit.test_api_world import CONFIG, World

    cfg = {**CONFIG, "peers": [{"address": B, "remote_as": 65002, "max_routes": 1},
                               {"address": C, "remote_as": 65003}]}  # fmt: skip
    parsed = parse_config(cfg)
    w = World(parsed, Core(core_settings(parsed)))
    w.core.start(0.0)
    w.apply(RouteUpdate(B, [type2(B, f"{B}:1", "02:bb:00:00:09:01"),
                            type2(B, f"{B}:1", "02:bb:00:00:09:02")]))  # fmt: skip
    reply = await ask(w, "show peers")
    text = tables.render_peers(reply)
    assert f"{B}: over max_routes 1: held down until `evpnctl clear peer`" in text
    (entry,) = [p for p in reply.peers if p.address == B]
    assert (entry.max_routes, entry.limit_state, entry.limit_until) == (1, "max-routes", None)
    cleared = await ask(w, "clear peer", address=B)
    assert cleared.released == [B]
    assert tables.render_clear_peer(cleared).startswith(f"Released {B}")
    (entry,) = [p for p in (await ask(w, "show peers")).peers if p.address == B]
    assert entry.limit_state == ""


async def test_explain_a_mac_with_an_ip_lists_its_two_routes_apart():
    """B advertises MAC_REMOTE alone and with 10.1.0.21: two routes, two different lines (they
    used to be the same line twice, under "why: same VTEP"), the MAC-only one first."""
    text = tables.render_explain(await ask(make_world(), "explain", target=MAC_REMOTE))
    lines = text.splitlines()
    assert f"  winner:  [2]:[0]:[48]:[{MAC_REMOTE}]" in lines, text
    assert f"  why:     only VTEP (2 routes from {B})" in lines, text
    paths = lines[lines.index("  paths:   2 (winner first)") + 1 :]
    assert paths == [
        f"    peer {B}, RD {B}:1, next hop {B} seq 0",
        f"    peer {B}, RD {B}:1, IP 10.1.0.21, next hop {B} seq 0",
    ], text
