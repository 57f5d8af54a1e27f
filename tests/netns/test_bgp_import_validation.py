"""Hostile routes through real ExaBGP into evpnd (issue 10 item 1).

A test-controlled Speaker (evpnd's own ExaBGP driver, in the peer's namespace) announces routes
whose next hop, PMSI endpoint, PMSI tunnel type, encapsulation or MAC no VXLAN FDB may hold,
next to valid ones (the valid MACs share an UPDATE with the bad MACs). evpnd's kernel FDB must
hold the valid routes only, and `show peers` must count each rejection by reason.
"""

from __future__ import annotations

import pytest

from evpnd.bgp import wire
from evpnd.bgp.batch import pack_attributes, pack_path_nlri
from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, Pmsi
from tests.netns.fabric import add_host, evpnd_config, start_evpnd, two_leaves
from tests.netns.speaker_lab import Recorder, make_speaker, peer, speaker_config, until

pytestmark = pytest.mark.netns

L2 = Attributes(route_targets=("65002:100",), encap=8)
GOOD_MACS = ("02:bb:00:00:00:01", "02:bb:00:00:00:02")


def _mac(mac: str, nh: str, attrs: Attributes = L2, rd: str = "10.0.0.2:100") -> Path:
    return Path(MacIpKey(rd, 0, mac, None), LOCAL_PEER, nh, 100, attrs=attrs)


def _imet(origin: str, pmsi: Pmsi) -> Path:
    return Path(ImetKey(f"{origin}:100", 0, origin), LOCAL_PEER, "10.0.0.2", 100,
                attrs=L2._replace(pmsi=pmsi))  # fmt: skip


# next hop -> the reason evpnd gives (one MAC each; a next hop is per UPDATE)
BAD_NEXT_HOPS = {
    "0.0.0.0": "nexthop_martian",
    "127.0.0.1": "nexthop_martian",
    "224.0.0.5": "nexthop_martian",
    "255.255.255.255": "nexthop_martian",
    "fe80::1": "nexthop_martian",
    "::ffff:10.0.0.1": "own_vtep",  # evpnd's VTEP, IPv4-mapped
    "2001:db8::9": "nexthop_family",  # an IPv6 VTEP for an IPv4 VXLAN device
}


async def test_hostile_routes_never_reach_the_kernel(lab, tmp_path):
    a, b = two_leaves(lab)
    add_host(lab, a, "h1", "p1", "10.100.0.1", "02:aa:00:00:01:01")
    node = start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100",
                                                      "access_ports": ["p1"]}]))  # fmt: skip
    rec = Recorder()
    cfg = speaker_config(tmp_path, router_id=b.vtep, asn=65002,
                         peers=[peer(a.vtep, 65001, b.vtep)])  # fmt: skip
    speaker = make_speaker(cfg, b.ns, rec)
    await speaker.start()
    try:
        await until(lambda: rec.state(a.vtep) == "up", 60, what="session up")
        # One UPDATE: two valid MACs, a multicast MAC and the all-zero MAC
        same_update = [_mac(m, b.vtep) for m in GOOD_MACS]
        same_update += [_mac("01:00:5e:00:00:05", b.vtep), _mac("00:00:00:00:00:00", b.vtep)]
        hostile = [
            _mac(f"02:bb:00:00:01:{i:02x}", nh) for i, nh in enumerate(BAD_NEXT_HOPS, start=1)
        ]
        hostile.append(_mac("02:bb:00:00:02:01", b.vtep, L2._replace(encap=10)))  # not VXLAN
        hostile.append(_imet("10.0.0.3", Pmsi(6, 100, "127.0.0.1")))  # flood to loopback
        valid_flood = _imet(b.vtep, Pmsi(6, 100, b.vtep))
        speaker.announce([*same_update, *hostile, valid_flood])
        await speaker.sync()
        # a PMSI that is not ingress replication (3: PIM-SSM tree), packed by hand: evpnd's
        # own encoder refuses to announce one
        imet = _imet("10.0.0.4", Pmsi(6, 100, "10.0.0.4"))
        attrs = bytes.fromhex(pack_attributes(L2))
        label = wire.label_bytes(100)
        attrs += wire.pack_attribute(wire.PMSI_TUNNEL, wire.FLAG_OPTIONAL | wire.FLAG_TRANSITIVE,
                                     bytes((0, 3)) + label + bytes([10, 0, 0, 4]))  # fmt: skip
        ok, errors, first = await speaker._command(
            f"evpnd routes {{ticket}} * ; A {b.vtep} {attrs.hex()} {pack_path_nlri(imet).hex()}"
        )
        assert errors == 0, first

        expected = {"mac": 2, "nexthop_martian": 5, "own_vtep": 1, "nexthop_family": 1,
                    "encap": 1, "pmsi_martian": 1, "pmsi_type": 1}  # fmt: skip

        def counted():
            (p,) = node.data("show peers")["peers"]
            return p if p["rejects"] == expected else None

        entry = await until(counted, 30, 0.2, "rejections counted per reason")
        assert entry["accepted"] == 3 and entry["rejected"] == sum(expected.values())

        # the kernel: the valid MACs and the valid flood entry only
        await until(lambda: a.remote_macs("vx100") == dict.fromkeys(GOOD_MACS, b.vtep), 30,
                    0.2, "the valid MACs in the kernel FDB")  # fmt: skip
        assert a.flood("vx100") == {b.vtep}
        fdb = "\n".join(a.fdb("vx100"))
        for bad in ("127.0.0.1", "0.0.0.0", "224.0.0.5", "255.255.255.255", "fe80::1",
                    "2001:db8::9", "10.0.0.3", "10.0.0.4", "01:00:5e:00:00:05",
                    "02:bb:00:00:01", "02:bb:00:00:02"):  # fmt: skip
            assert bad not in fdb, fdb
        # nothing is retried: a full pass later still has nothing to add
        diff = node.data("show kernel diff")
        assert not diff.get("entries"), diff
        log = node.log()
        assert "paths_rejected" in log and "Traceback" not in log
    finally:
        await speaker.stop()
