"""Two Speakers (two ExaBGPs with evpnd's extension) in two namespaces exchange routes."""

from __future__ import annotations

import pytest

from evpnd.routes.evpn import LOCAL_PEER, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from tests.netns.speaker_lab import (
    Recorder,
    mac_paths,
    make_speaker,
    pair,
    peer,
    speaker_config,
    until,
)

pytestmark = pytest.mark.netns


async def test_two_speakers_exchange_routes(lab, tmp_path):
    p = pair(lab)
    rec_a, rec_b = Recorder(), Recorder()
    cfg_a = speaker_config(tmp_path / "a", peers=[peer("10.0.1.2", 65002, "10.0.1.1")],
                           exabgp={"graceful_restart": 60})  # fmt: skip
    cfg_b = speaker_config(tmp_path / "b", router_id="192.0.2.2", asn=65002,
                           peers=[peer("10.0.1.1", 65001, "10.0.1.2")],
                           exabgp={"graceful_restart": 60})  # fmt: skip
    a = make_speaker(cfg_a, p.a, rec_a)
    b = make_speaker(cfg_b, p.b, rec_b)
    macs_a = mac_paths(1000)
    imet_b = mac_paths(1, rd="192.0.2.2:1", nh="192.0.2.2")[0]
    imet_b = Path(ImetKey("192.0.2.2:1", 0, "192.0.2.2"), LOCAL_PEER, "192.0.2.2", 100,
                  attrs=imet_b.attrs._replace(pmsi=Pmsi(6, 100, "192.0.2.2")))  # fmt: skip
    a.set_resync(lambda: macs_a)
    b.set_resync(lambda: [imet_b])
    await a.start()
    await b.start()
    try:
        await until(lambda: rec_a.state("10.0.1.2") == "up" and rec_b.state("10.0.1.1") == "up",
                    30, what="both sessions up")  # fmt: skip
        await until(lambda: len(rec_b.from_peer("10.0.1.1")) == 1000, 30, what="1000 MACs on b")
        got = {p.key: p for p in rec_b.from_peer("10.0.1.1")}
        first = got[macs_a[0].key]
        assert first.vni == 100 and first.next_hop == "192.0.2.1"
        assert first.attrs.route_targets == ("65001:100",) and first.attrs.encap == 8
        assert first.attrs.as_path == (65001,)
        await until(lambda: rec_a.from_peer("10.0.1.2"), 30, what="b's type-3 on a")
        (imet,) = rec_a.from_peer("10.0.1.2")
        assert imet.key == imet_b.key and imet.attrs.pmsi == Pmsi(6, 100, "192.0.2.2")
        # graceful restart: each side sends End-of-RIB after its replay (manual-eor)
        await until(lambda: b.status()["peers"]["10.0.1.1"]["end_of_rib"], 10, what="EoR on b")
        # routes came raw through b's own UpdateDecoder; state, OPEN and End-of-RIB as JSON
        decode = b.status()["decode"]
        assert decode["raw"]["updates"] >= 1, decode
        assert decode["raw"]["malformed_nlri"] == decode["raw"]["malformed_attributes"] == 0
        assert decode["json"]["lines"] >= 3 and decode["json"]["json_routes_ignored"] == 0
        assert decode["json"]["malformed_lines"] == 0, decode
        # incremental changes: a withdraw, a new type-5, a MAC move (sequence 1)
        prefix = Path(PrefixKey("192.0.2.1:2", 0, "10.201.0.0/24"), LOCAL_PEER, "192.0.2.1",
                      5000, attrs=macs_a[0].attrs)  # fmt: skip
        moved = macs_a[1]._replace(attrs=macs_a[1].attrs._replace(mobility_seq=1,
                                                                  has_mobility=True))  # fmt: skip
        a.withdraw([macs_a[0]])
        a.announce([prefix, moved])

        def changed():
            got = {p.key: p for p in rec_b.from_peer("10.0.1.1")}
            return (
                macs_a[0].key not in got
                and prefix.key in got
                and got[moved.key].attrs.mobility_seq == 1
            )

        await until(changed, 30, what="changes on b")
        assert len(rec_b.from_peer("10.0.1.1")) == 1000
        assert isinstance(moved.key, MacIpKey)
    finally:
        await a.stop()
        await b.stop()
