"""The Speaker against FRR 8.4 (advertise-all-vni, a real bridge + vxlan in FRR's namespace).

FRR's own type-2/type-3 must arrive as decoded events; what the Speaker announces (types 2, 3,
5 with RTs, router MAC, mobility, L3VNI) must show in FRR's table with those attributes and be
programmed by FRR into its kernel FDB.
"""

from __future__ import annotations

import asyncio

import pytest

from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from tests.netns.speaker_lab import (
    Recorder,
    add_vni,
    frr_evpn_routes,
    frr_peer,
    make_speaker,
    pair,
    peer,
    speaker_config,
    until,
)

pytestmark = [pytest.mark.netns, pytest.mark.frr]

FRR_MAC = "02:bb:00:00:00:01"
RMAC = "02:00:00:00:ee:01"
L2 = Attributes(route_targets=("65001:100",), encap=8)
MOVED = Attributes(route_targets=("65001:100", "65001:5000"), encap=8, mobility_seq=2,
                   has_mobility=True, router_mac=RMAC)  # fmt: skip
PATHS = [
    Path(
        MacIpKey("192.0.2.1:1", 0, "02:00:00:00:aa:01", None),
        LOCAL_PEER,
        "192.0.2.1",
        100,
        attrs=L2,
    ),  # fmt: skip
    Path(
        MacIpKey("192.0.2.1:1", 0, "02:00:00:00:aa:02", "10.100.0.2"),
        LOCAL_PEER,
        "192.0.2.1",
        100,
        5000,
        attrs=MOVED,
    ),  # fmt: skip
    Path(
        ImetKey("192.0.2.1:1", 0, "192.0.2.1"),
        LOCAL_PEER,
        "192.0.2.1",
        100,
        attrs=L2._replace(pmsi=Pmsi(6, 100, "192.0.2.1")),
    ),  # fmt: skip
    Path(
        PrefixKey("192.0.2.1:2", 0, "10.201.0.0/24"),
        LOCAL_PEER,
        "192.0.2.1",
        5000,
        attrs=Attributes(route_targets=("65001:5000",), encap=8, router_mac=RMAC),
    ),  # fmt: skip
]


def _fdb(ns) -> str:
    return ns.run("bridge fdb show dev vx100")


async def test_speaker_with_frr(lab, tmp_path):
    p = pair(lab)
    add_vni(p.b, 100, "192.0.2.2")
    # a local MAC behind an access port of FRR's bridge: zebra learns it, bgpd advertises it
    p.b.ip("link", "add", "p1", "type", "veth", "peer", "name", "p1h")
    p.b.ip("link", "set", "p1", "master", "br100")
    p.b.ip("link", "set", "p1", "up")
    p.b.ip("link", "set", "p1h", "up")
    p.b.run(["bridge", "fdb", "add", FRR_MAC, "dev", "p1", "master", "static"])
    frr = frr_peer(lab, p.b, [("10.0.1.1", 65001)])
    rec = Recorder()
    cfg = speaker_config(tmp_path, peers=[peer("10.0.1.2", 65002, "10.0.1.1")])
    speaker = make_speaker(cfg, p.a, rec)
    speaker.set_resync(lambda: PATHS)
    await speaker.start()
    try:
        await until(lambda: rec.state("10.0.1.2") == "up", 30, what="session up")

        # FRR's routes arrive decoded
        def frr_routes():
            got = {p.key: p for p in rec.from_peer("10.0.1.2")}
            # (FRR also reflects our own routes back: AS path [65002, 65001])
            imet = [p for k, p in got.items() if isinstance(k, ImetKey) and k.origin == "192.0.2.2"]
            macs = [p for k, p in got.items() if isinstance(k, MacIpKey) and k.mac == FRR_MAC]
            return (imet, macs) if imet and macs else None

        imet, macs = await until(frr_routes, 30, what="FRR's type-2 and type-3")
        assert imet[0].vni == 100 and imet[0].attrs.as_path == (65002,)
        assert imet[0].attrs.pmsi == Pmsi(6, 100, "192.0.2.2")
        assert macs[0].vni == 100 and macs[0].next_hop == "192.0.2.2"
        assert "65002:100" in macs[0].attrs.route_targets and macs[0].attrs.encap == 8

        # our routes are in FRR's table with their attributes
        def ours():
            routes = frr_evpn_routes(frr)
            wanted = [
                ("192.0.2.1:1", "[2]:[0]:[48]:[02:00:00:00:aa:01]"),
                ("192.0.2.1:1", "[2]:[0]:[48]:[02:00:00:00:aa:02]:[32]:[10.100.0.2]"),
                ("192.0.2.1:1", "[3]:[0]:[32]:[192.0.2.1]"),
                ("192.0.2.1:2", "[5]:[0]:[24]:[10.201.0.0]"),
            ]
            return routes if all(w in routes for w in wanted) else None

        routes = await until(ours, 30, 0.2, "our routes in FRR")
        (moved,) = routes[("192.0.2.1:1", "[2]:[0]:[48]:[02:00:00:00:aa:02]:[32]:[10.100.0.2]")]
        communities = moved["extendedCommunity"]["string"].split()
        assert {"RT:65001:100", "RT:65001:5000", "ET:8", "MM:2", f"Rmac:{RMAC}"} <= set(communities)
        assert moved["nexthops"][0]["ip"] == "192.0.2.1"
        (prefix,) = routes[("192.0.2.1:2", "[5]:[0]:[24]:[10.201.0.0]")]
        assert {"RT:65001:5000", "ET:8", f"Rmac:{RMAC}"} <= set(
            prefix["extendedCommunity"]["string"].split()
        )

        # FRR programs its kernel: MACs towards our VTEP and a head-end replication entry
        def fdb_has_ours():
            text = _fdb(p.b)
            return all(
                line in text
                for line in (
                    "02:00:00:00:aa:01 dst 192.0.2.1",
                    "02:00:00:00:aa:02 dst 192.0.2.1",
                    "00:00:00:00:00:00 dst 192.0.2.1",
                )
            )

        await until(fdb_has_ours, 30, 0.2, "FRR's FDB")

        # a withdraw removes the MAC from FRR's kernel
        speaker.withdraw([PATHS[0]])
        await until(lambda: "02:00:00:00:aa:01" not in _fdb(p.b), 30, 0.2, "FDB withdraw")
        assert "02:00:00:00:aa:02 dst 192.0.2.1" in _fdb(p.b)

        status = speaker.status()
        assert status["peers"]["10.0.1.2"]["state"] == "up"
        assert status["peers"]["10.0.1.2"]["routes_received"] >= 2
        assert status["exabgp_pid"] and status["acks"]["errors"] == 0
    finally:
        await speaker.stop()
    await asyncio.sleep(0)
    assert rec.state("10.0.1.2") == "down"


async def test_ipv6_session_with_frr(lab, tmp_path):
    """An IPv6 BGP session (both ExaBGP listening sockets) carrying IPv4-VTEP EVPN routes."""
    p = pair(lab)
    for ns, addr in ((p.a, "2001:db8:1::1/64"), (p.b, "2001:db8:1::2/64")):
        ns.ip("addr", "add", addr, "dev", "eth0", "nodad")
    add_vni(p.b, 100, "192.0.2.2")
    frr = frr_peer(lab, p.b, [("2001:db8:1::1", 65001)])
    rec = Recorder()
    cfg = speaker_config(tmp_path, peers=[peer("2001:db8:1::2", 65002, "2001:db8:1::1")])
    speaker = make_speaker(cfg, p.a, rec)
    speaker.set_resync(lambda: PATHS[:1])
    await speaker.start()
    try:
        await until(lambda: rec.state("2001:db8:1::2") == "up", 30, what="IPv6 session up")
        await until(
            lambda: ("192.0.2.1:1", "[2]:[0]:[48]:[02:00:00:00:aa:01]") in frr_evpn_routes(frr),
            30, 0.2, "our MAC in FRR",
        )  # fmt: skip
        imet = await until(
            lambda: [p for p in rec.from_peer("2001:db8:1::2") if isinstance(p.key, ImetKey)
                     and p.key.origin == "192.0.2.2"],
            30, what="FRR's type-3",
        )  # fmt: skip
        assert imet[0].vni == 100
    finally:
        await speaker.stop()
