"""evpnd.bgp.compact, evpnd's one decoder of EVPN routes and attributes: raw UPDATE bytes from
ExaBGP's own encoder, from evpnd's extension, and rebuilt from captured FRR/GoBGP UPDATEs
(tests/unit/rx_fixtures.py), plus hostile bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path as FsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evpnd.bgp import wire
from evpnd.bgp.compact import UpdateDecoder, _pmsi
from evpnd.core.events import CommandReply, EndOfRib, RouteUpdate
from evpnd.routes.evpn import (
    LOCAL_PEER,
    ZERO_ESI,
    Attributes,
    ImetKey,
    MacIpKey,
    Path,
    Pmsi,
    PrefixKey,
    RouteKey,
)
from tests.unit.exabgp_helpers import negotiated_and_neighbor, outgoing_rib, updates_for
from tests.unit.rx_fixtures import Receiver, raw_lines, update_bodies

ATTRS = Attributes(route_targets=("65000:100", "192.0.2.1:7", "4200000000:9"), encap=8)


def _paths() -> list[list[Path]]:
    """Groups of paths; each group shares attributes (one UPDATE)."""
    mob = ATTRS._replace(mobility_seq=7, has_mobility=True, sticky=True,
                         router_mac="02:00:00:00:ee:01", default_gw=True,
                         other_communities=(0x0001020304050607,))  # fmt: skip
    imet = ATTRS._replace(pmsi=Pmsi(6, 100, "192.0.2.1"))
    return [
        [
            Path(
                MacIpKey("192.0.2.1:10", 0, f"02:00:00:00:aa:{i:02x}", None),
                LOCAL_PEER,
                "192.0.2.1",
                100,
                attrs=ATTRS,
            )  # fmt: skip
            for i in range(50)
        ],
        [
            Path(
                MacIpKey("65000:10", 7, "02:00:00:00:bb:01", "10.0.0.1"),
                LOCAL_PEER,
                "192.0.2.1",
                100,
                5000,
                "00:11:22:33:44:55:66:77:88:99",
                attrs=mob,
            ),  # fmt: skip
            Path(
                MacIpKey("4200000000:10", 0, "02:00:00:00:bb:02", "2001:db8::2"),
                LOCAL_PEER,
                "192.0.2.1",
                100,
                0,
                attrs=mob,
            ),  # fmt: skip
        ],
        [Path(ImetKey("192.0.2.1:10", 0, "192.0.2.1"), LOCAL_PEER, "192.0.2.1", 100, attrs=imet)],
        [
            Path(
                PrefixKey("192.0.2.1:5", 0, "10.201.0.0/24"),
                LOCAL_PEER,
                "192.0.2.1",
                5000,
                gateway="10.201.0.1",
                attrs=ATTRS,
            ),  # fmt: skip
            Path(
                PrefixKey("192.0.2.1:5", 0, "2001:db8:201::/64"),
                LOCAL_PEER,
                "192.0.2.1",
                5000,
                attrs=ATTRS,
            ),  # fmt: skip
        ],
        [
            Path(
                MacIpKey("192.0.2.1:10", 0, "02:00:00:00:cc:01", None),
                LOCAL_PEER,
                "2001:db8::1",
                100,
                attrs=ATTRS,
            )
        ],  # fmt: skip
    ]


def _sent_as_received(paths: list[Path]) -> list[Path]:
    """What the receiver decodes for `paths` sent by an eBGP speaker in AS 65001: the peer is
    the session's, ExaBGP prepends its AS and adds ORIGIN igp."""
    return [
        p._replace(peer="10.0.1.2", attrs=p.attrs._replace(as_path=(65001,), origin="igp"))
        for p in paths
    ]


def _raw(message: bytes) -> str:
    return f"evpnd-rx 10.0.1.2 1 {message[19:].hex()}"


@pytest.fixture(scope="module")
def session():
    return negotiated_and_neighbor()


@pytest.fixture
def decoder() -> UpdateDecoder:
    return UpdateDecoder()


@pytest.mark.parametrize("group", range(5))
def test_announces_decode_to_the_paths_sent(session, decoder, group):
    negotiated, _ = session
    paths = _paths()[group]
    got = []
    for message in updates_for(paths, negotiated):
        (event,) = decoder.decode_line(_raw(message))
        assert isinstance(event, RouteUpdate) and event.withdrawn == []
        got += event.announced
    expected = _sent_as_received(paths)
    # type 5: an all-zero gateway is None; ExaBGP sends the NLRIs of one attribute set together
    assert sorted(got) == sorted(expected)
    assert decoder.stats()["malformed_nlri"] == 0


def test_label2_is_read_from_the_nlri(session, decoder):
    negotiated, _ = session
    (message,) = updates_for(_paths()[1], negotiated)
    (event,) = decoder.decode_line(_raw(message))
    assert [p.l3vni for p in event.announced] == [5000, 0]
    assert event.announced[0].attrs.as_path == (65001,)


def test_ipv6_next_hop(session, decoder):
    """ExaBGP's own decoder refuses an IPv6 next hop for l2vpn/evpn (NOTIFICATION); raw is fine."""
    negotiated, _ = session
    (message,) = updates_for(_paths()[4], negotiated)
    (event,) = decoder.decode_update("10.0.1.2", message[19:])
    assert event.announced[0].next_hop == "2001:db8::1"


@pytest.mark.parametrize("group", range(5))
def test_withdraws_decode_to_the_keys_sent(session, decoder, group):
    negotiated, _ = session
    rib = outgoing_rib()
    paths = _paths()[group]
    updates_for(paths, negotiated, rib=rib)
    withdrawn = []
    for message in updates_for(paths, negotiated, announce=False, rib=rib):
        (event,) = decoder.decode_line(_raw(message))
        assert event.withdrawn and not event.announced
        withdrawn += event.withdrawn
    assert sorted(withdrawn) == sorted(p.key for p in paths)


def test_end_of_rib(decoder):
    body = bytes.fromhex("00000006800f03001946")
    assert decoder.decode_update("10.0.1.2", body) == [EndOfRib("10.0.1.2")]
    extended = bytes.fromhex("00000007900f0003001946")  # FRR sets extended length
    assert decoder.decode_update("10.0.1.2", extended) == [EndOfRib("10.0.1.2")]


def test_two_byte_as_path(decoder):
    negotiated, _ = negotiated_and_neighbor(asn4=False)
    (message,) = updates_for(_paths()[2], negotiated)
    (event,) = decoder.decode_update("10.0.1.2", message[19:], asn4=False)
    assert event.announced[0].attrs.as_path == (65001,)


def test_counters_and_caches_belong_to_the_decoder(session):
    """Two Speakers, two decoders: nothing shared through module globals; caches are bounded."""
    negotiated, _ = session
    one, other = UpdateDecoder(cache_max=4), UpdateDecoder()
    for message in updates_for(_paths()[0], negotiated):
        one.decode_line(_raw(message))
    one.decode_line("garbage")
    assert one.stats()["updates"] >= 1 and one.stats()["malformed_updates"] == 1
    assert other.stats() == dict.fromkeys(UpdateDecoder.COUNTERS, 0)
    assert one.last_reject and not other.last_reject
    # 60 distinct RDs through a cache of 4: it is cleared, never grown past its bound
    for n in range(60):
        path = _paths()[0][0]._replace(key=_paths()[0][0].key._replace(rd=f"65000:{n}"))
        for message in updates_for([path], negotiated):
            (event,) = one.decode_line(_raw(message))
            assert event.announced[0].key.rd == f"65000:{n}"
        assert len(one._rd_cache) <= 4


# ----------------------------------------------------------------------------- captured UPDATEs

FIXTURES = FsPath(__file__).parent.parent / "fixtures" / "exabgp"
ESI = "00:11:22:33:44:55:66:77:88:99"
RMAC = "02:00:00:00:ee:01"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def only_update(line: str, receiver: Receiver | None = None) -> RouteUpdate:
    events = (receiver or Receiver()).decode(line)
    assert len(events) == 1 and isinstance(events[0], RouteUpdate), events
    return events[0]


def test_rebuilt_bytes_are_what_exabgp_captured(session):
    """The raw UPDATEs rebuilt from the captures (rx_fixtures) decode, through ExaBGP 5.0.15's
    own decoder and JSON encoder, back to exactly the captured UPDATE."""
    import orjson
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update import Update
    from exabgp.reactor.api.response import Response
    from exabgp.version import json as json_version

    negotiated, neighbor = session
    encoder = Response.JSON(json_version)
    checked = 0
    for name in sorted(p.name for p in FIXTURES.glob("*.jsonl")) + ["ack-ordering.txt"]:
        for line in lines(name):
            raw = raw_lines(line)
            if raw is None:
                continue
            (one,) = raw
            body = bytes.fromhex(one.split(" ", 3)[3])
            update = Update.unpack_message(body, Direction.IN, negotiated)
            again = orjson.loads(encoder.update(neighbor, "receive", update, None, "", ""))
            captured = orjson.loads(line)["neighbor"]["message"]["update"]
            assert again["neighbor"]["message"]["update"] == captured, name
            checked += 1
    assert checked == 18


def test_type2_mac_only_from_frr():
    update = only_update(lines("received-json-samples.jsonl")[2])
    assert update.peer == "10.0.1.2" and update.withdrawn == []
    (path,) = update.announced
    assert path.key == MacIpKey("192.0.2.2:100", 0, "3a:2c:a6:f7:ca:d5", None)
    assert (path.peer, path.next_hop, path.vni, path.l3vni) == ("10.0.1.2", "192.0.2.2", 100, 0)
    assert path.esi == ZERO_ESI and path.gateway is None
    attrs = path.attrs
    assert attrs.route_targets == ("65000:100",) and attrs.encap == 8
    assert attrs.as_path == (65002,) and attrs.origin == "igp"
    assert not attrs.has_mobility and attrs.router_mac is None and attrs.pmsi is None


def test_type3_pmsi_endpoint_and_vni():
    (path,) = only_update(lines("received-json-samples.jsonl")[3]).announced
    assert path.key == ImetKey("192.0.2.2:100", 0, "192.0.2.2")
    assert path.attrs.pmsi == Pmsi(Pmsi.INGRESS_REPLICATION, 100, "192.0.2.2")
    assert path.vni == 100  # a type-3 path carries its PMSI's VNI
    assert path.next_hop == "192.0.2.2"


def test_type5_from_gobgp_v4_and_v6_with_router_mac():
    samples = lines("received-json-samples.jsonl")
    (v4,) = only_update(samples[4]).announced
    (v6,) = only_update(samples[5]).announced
    assert v4.key == PrefixKey("192.0.2.3:5000", 0, "10.200.0.0/24")
    assert v6.key == PrefixKey("192.0.2.3:5000", 0, "2001:db8:200::/64")
    for path in (v4, v6):
        assert path.peer == "10.0.2.2" and path.next_hop == "192.0.2.3"
        assert path.vni == 5000 and path.gateway is None  # 0.0.0.0 and :: mean "no gateway"
        assert path.attrs.router_mac == "02:00:00:00:ee:03"
        assert path.attrs.route_targets == ("65000:5000",)
        assert path.attrs.origin == "incomplete" and path.attrs.as_path == (65003,)


def test_type2_default_gateway_and_esi_from_gobgp():
    (path,) = only_update(lines("received-json-samples.jsonl")[7]).announced
    assert path.key == MacIpKey("192.0.2.3:100", 0, "02:00:00:00:00:03", "2001:db8:100::33")
    assert path.esi == ESI
    assert path.attrs.default_gw is True and path.attrs.other_communities == ()


def test_withdraws_of_each_type():
    samples = lines("received-json-samples.jsonl")
    assert only_update(samples[8]).withdrawn == [
        MacIpKey("192.0.2.3:100", 0, "02:00:00:00:00:02", "10.100.0.22")
    ]
    assert only_update(samples[9]).withdrawn == [ImetKey("192.0.2.3:100", 0, "192.0.2.3")]
    assert only_update(samples[10]).withdrawn == [PrefixKey("192.0.2.3:5000", 0, "10.200.0.0/24")]
    assert only_update(samples[10]).announced == []


def test_frr_withdraw_with_label_zero():
    update = only_update(lines("frr-withdraw-after-exabgp-withdraw.jsonl")[3])
    assert update.announced == []
    assert update.withdrawn == [
        MacIpKey("192.0.2.1:100", 0, "02:00:00:00:aa:02", "10.100.0.102"),
        ImetKey("192.0.2.1:100", 0, "192.0.2.1"),
        PrefixKey("192.0.2.1:5000", 0, "10.201.0.0/24"),
    ]


def test_reflected_routes_l3vni_router_mac_mobility():
    samples = lines("frr-reflects-exabgp-announces.jsonl")
    receiver = Receiver()
    assert [receiver.decode(s) for s in samples[:6]] == [[CommandReply(True)]] * 6
    (p1,) = only_update(samples[6], receiver).announced
    assert p1.attrs.as_path == (65002, 65001)  # our own AS: the core drops these
    (p2,) = only_update(samples[7], receiver).announced
    assert p2.key.ip == "10.100.0.102" and p2.vni == 100
    assert p2.l3vni == 5000  # label 2, read from the NLRI
    assert p2.attrs.route_targets == ("65000:100", "65000:5000")
    assert p2.attrs.router_mac == RMAC  # 433192188181016065, whose string ExaBGP leaves empty
    assert (p2.attrs.has_mobility, p2.attrs.mobility_seq, p2.attrs.sticky) == (True, 2, False)
    (p3,) = only_update(samples[8], receiver).announced
    assert (p3.attrs.mobility_seq, p3.attrs.sticky, p3.esi) == (1, True, ESI)
    assert p3.seq == 1 and p3.sticky
    (p4,) = only_update(samples[9], receiver).announced
    assert p4.attrs.pmsi == Pmsi(6, 100, "192.0.2.1")
    v4, v6 = only_update(samples[10], receiver).announced  # two NLRIs, one shared Attributes
    assert v4.attrs is v6.attrs
    assert (v4.key.prefix, v6.key.prefix) == ("10.201.0.0/24", "2001:db8:201::/64")
    assert v4.vni == v6.vni == 5000 and v4.attrs.router_mac == RMAC


def test_mobility_move_sequence():
    (path,) = only_update(lines("frr-type2-mac-mobility-move.jsonl")[0]).announced
    assert path.key == MacIpKey("192.0.2.2:100", 0, "02:00:00:00:aa:01", None)
    assert path.next_hop == "192.0.2.2"
    assert (path.attrs.mobility_seq, path.attrs.sticky, path.attrs.has_mobility) == (1, False, True)


def test_equal_attributes_are_shared_across_updates():
    samples = lines("received-json-samples.jsonl")
    receiver = Receiver()
    (a,) = only_update(samples[4], receiver).announced
    (b,) = only_update(samples[4], receiver).announced
    (c,) = only_update(samples[5], receiver).announced  # another UPDATE, same attributes
    assert a.attrs is b.attrs is c.attrs


# ----------------------------------------------------------------------------- built UPDATEs


def update_line(announce=None, withdraw=None, attribute=None, peer="10.0.1.2") -> str:
    """An UPDATE as ExaBGP's JSON shows it; rx_fixtures packs it into the raw bytes."""
    update = {}
    if attribute is not None:
        update["attribute"] = attribute
    if announce is not None:
        update["announce"] = {"l2vpn evpn": announce}
    if withdraw is not None:
        update["withdraw"] = {"l2vpn evpn": withdraw}
    neighbor = {
        "address": {"local": "10.0.1.1", "peer": peer},
        "direction": "receive",
        "message": {"update": update},
    }
    return json.dumps({"exabgp": "5.0.0", "type": "update", "neighbor": neighbor})


def mac_nlri(mac="02:00:00:00:00:01", label=None, **extra) -> dict:
    nlri = {
        "code": 2,
        "rd": "192.0.2.9:100",
        "esi": "-",
        "ethernet-tag": 0,
        "mac": mac,
        "label": label if label is not None else [[6, 100]],
    }
    nlri.update(extra)
    return nlri


JSON_ATTRS = {"origin": "igp", "extended-community": [{"value": 842122827661412, "string": "x"}]}


def test_label2_is_the_l3vni_and_other_attributes():
    attribute = {
        "origin": "egp",
        "as-path": {
            "0": {"element": "as-sequence", "value": [65010, 65020]},
            "1": {"element": "as-set", "value": [65030, 65040]},
        },
        "local-preference": 200,
        "med": 7,
        "originator-id": "192.0.2.77",
        "cluster-list": ["192.0.2.200", "192.0.2.201"],
        "extended-community": [
            {"value": (0x0102 << 48) | (0xC0000201 << 16) | 42, "string": "target:192.0.2.1:42"},
            {"value": (0x0202 << 48) | (4200000000 << 16) | 7, "string": "target:4200000000:7"},
            {"value": 0x0601000000000001, "string": ""},  # ESI label: kept, not interpreted
        ],
    }
    nlri = mac_nlri(label=[[6, 100], [312, 5000]], ip="10.1.0.5")
    (path,) = only_update(update_line({"192.0.2.9": [nlri]}, attribute=attribute)).announced
    assert (path.vni, path.l3vni) == (100, 5000)
    attrs = path.attrs
    assert attrs.route_targets == ("192.0.2.1:42", "4200000000:7")
    assert attrs.other_communities == (0x0601000000000001,)
    assert attrs.as_path == (65010, 65020, 65030, 65040)
    assert (attrs.origin, attrs.local_pref, attrs.med) == ("egp", 200, 7)
    assert attrs.originator_id == "192.0.2.77"
    assert attrs.cluster_list == ("192.0.2.200", "192.0.2.201")


def test_mixed_announce_and_withdraw_in_one_update():
    line = update_line(
        {"192.0.2.9": [mac_nlri("AA:BB:CC:DD:EE:FF")]},
        withdraw=[mac_nlri("02:00:00:00:00:02", label=[[0]])],
        attribute=JSON_ATTRS,
    )
    update = only_update(line)
    assert update.announced[0].key.mac == "aa:bb:cc:dd:ee:ff"  # bytes print lower-case
    assert update.withdrawn == [MacIpKey("192.0.2.9:100", 0, "02:00:00:00:00:02", None)]


def test_type5_gateway_and_host_bits():
    nlri = {
        "code": 5,
        "rd": "65000:5000",
        "esi": "-",
        "ethernet-tag": 0,
        "label": [[312, 5000]],
        "ip": "10.9.8.7",
        "iplen": 16,
        "gateway": "10.9.0.1",
    }
    (path,) = only_update(update_line({"192.0.2.9": [nlri]}, attribute=JSON_ATTRS)).announced
    assert path.key == PrefixKey("65000:5000", 0, "10.9.0.0/16")
    assert path.gateway == "10.9.0.1"


def test_updates_of_exabgps_own_encoder(decoder):
    """An UPDATE with every attribute evpnd reads, packed by ExaBGP 5.0.15 itself (local-pref,
    MED, originator, cluster list, AS_SET, label 2), and its End-of-RIB."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import Attributes as XAttributes
    from exabgp.bgp.message.update.attribute.aspath import SEQUENCE, SET, ASPath
    from exabgp.bgp.message.update.attribute.clusterlist import ClusterList
    from exabgp.bgp.message.update.attribute.community.extended import (
        ExtendedCommunities,
        ExtendedCommunity,
    )
    from exabgp.bgp.message.update.attribute.localpref import LocalPreference
    from exabgp.bgp.message.update.attribute.med import MED
    from exabgp.bgp.message.update.attribute.origin import Origin
    from exabgp.bgp.message.update.attribute.originatorid import OriginatorID
    from exabgp.bgp.message.update.eor import EOR
    from exabgp.bgp.message.update.nlri.evpn.mac import MAC
    from exabgp.bgp.message.update.nlri.qualifier import ESI as XESI
    from exabgp.bgp.message.update.nlri.qualifier import MAC as XMAC
    from exabgp.bgp.message.update.nlri.qualifier import EthernetTag, Labels, RouteDistinguisher
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP

    negotiated, _ = negotiated_and_neighbor(local_as=65002)  # iBGP: LOCAL_PREF is sent
    attrs = XAttributes()
    attrs.add(Origin(Origin.EGP))
    attrs.add(ASPath([SEQUENCE([ASN(65002), ASN(65010)]), SET([ASN(65020), ASN(65030)])]))
    attrs.add(LocalPreference(250))
    attrs.add(MED(17))
    attrs.add(OriginatorID("192.0.2.77"))
    attrs.add(ClusterList([IP.create("192.0.2.200"), IP.create("192.0.2.201")]))
    communities = ExtendedCommunities()
    for value in (
        0x0002FDE800000064,  # target:65000:100
        0x030C000000000008,  # encapsulation VXLAN
        0x0600010000000005,  # MAC mobility 5, sticky
        0x060302000000EE01,  # router MAC
        0x030D000000000000,  # default gateway
    ):
        communities.communities.append(ExtendedCommunity.unpack(struct.pack("!Q", value)))
    attrs.add(communities)
    nlri = MAC(
        RouteDistinguisher.fromElements("192.0.2.2", 100),
        XESI(),
        EthernetTag(0),
        XMAC("02:00:00:00:BB:01"),
        48,
        Labels([], raw_labels=[100, 5000]),
        IP.create("10.100.0.9"),
        nexthop=IP.create("192.0.2.2"),
        action=Action.ANNOUNCE,
    )
    (message,) = Update([nlri], attrs).messages(negotiated)
    (event,) = decoder.decode_update("10.0.1.2", message[19:])
    (path,) = event.announced
    assert path.key == MacIpKey("192.0.2.2:100", 0, "02:00:00:00:bb:01", "10.100.0.9")
    assert (path.vni, path.l3vni, path.next_hop) == (100, 5000, "192.0.2.2")
    got = path.attrs
    assert got.as_path == (65002, 65010, 65020, 65030)
    assert (got.origin, got.local_pref, got.med) == ("egp", 250, 17)
    assert got.originator_id == "192.0.2.77"
    assert got.cluster_list == ("192.0.2.200", "192.0.2.201")
    assert got.route_targets == ("65000:100",) and got.encap == 8
    assert (got.mobility_seq, got.sticky, got.router_mac) == (5, True, RMAC)
    assert got.default_gw is True and got.other_communities == ()
    eor = EOR(AFI.l2vpn, SAFI.evpn).message(negotiated)
    assert decoder.decode_update("10.0.1.2", eor[19:]) == [EndOfRib("10.0.1.2")]
    assert decoder.stats()["malformed_nlri"] == decoder.stats()["malformed_attributes"] == 0


# ----------------------------------------------------------------------------- hostile input


def _update(attrs: bytes) -> bytes:
    return b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs


def _mp_reach(nlri: bytes, next_hop: bytes = bytes([192, 0, 2, 1])) -> bytes:
    value = b"\x00\x19\x46" + bytes((len(next_hop),)) + next_hop + b"\x00" + nlri
    return b"\x90\x0e" + len(value).to_bytes(2, "big") + value


def _mp_unreach(nlri: bytes) -> bytes:
    value = b"\x00\x19\x46" + nlri
    return b"\x90\x0f" + len(value).to_bytes(2, "big") + value


ORIGIN_IGP = b"\x40\x01\x01\x00"
EMPTY_AS_PATH = b"\x40\x02\x00"
MANDATORY = ORIGIN_IGP + EMPTY_AS_PATH  # RFC 7606 3(d): without them, treat-as-withdraw
GOOD_DATA = bytes.fromhex("0001c0000201000a" + "00" * 10 + "00000000300200000000aa00000064")
GOOD = b"\x02" + bytes((len(GOOD_DATA),)) + GOOD_DATA  # MAC 02:00:00:00:00:aa, RD 192.0.2.1:10
GOOD2 = GOOD.replace(bytes.fromhex("0200000000aa"), bytes.fromhex("0200000000bb"))
GOOD_KEY = MacIpKey("192.0.2.1:10", 0, "02:00:00:00:00:aa", None)


def _nlri(code: int, data: bytes) -> bytes:
    return bytes((code, len(data))) + data


def _t2(data: bytes = GOOD_DATA, **at: int) -> bytes:
    out = bytearray(data)
    for pos, value in at.items():
        out[int(pos[1:])] = value
    return _nlri(2, bytes(out))


# Bad NLRIs that still delimit themselves (their length byte is right) but whose layout
# contradicts it: syntactically incorrect, so RFC 7606 5.3's session reset. The raw layout has
# no field that can be out of range the way a JSON number can (a VNI is 3 bytes, an ESI 10), so
# what is left to be wrong is the shape: lengths, length fields, prefix lengths.
BAD_NLRIS = [
    _t2(p22=40),  # MAC length field 40, not 48
    _t2(p29=24),  # IP length 24
    _t2(p29=32),  # IP length 32 without the 4 bytes
    _nlri(2, GOOD_DATA[:29] + b"\x80" + bytes(4) + GOOD_DATA[30:]),  # IPv6 length, 4 bytes
    _nlri(2, GOOD_DATA + b"\x00"),  # one byte too many
    _nlri(2, GOOD_DATA[:20]),  # cut short
    _nlri(2, b""),
    _nlri(3, bytes.fromhex("0001c0000201000a00000000") + b"\x20" + bytes(3)),  # IP of 3 bytes
    _nlri(3, bytes.fromhex("0001c0000201000a00000000") + b"\x18" + bytes(4)),  # IP length 24
    _nlri(5, bytes(40)),  # neither IPv4 (34) nor IPv6 (58)
    _nlri(5, bytes(8) + bytes(10) + bytes(4) + b"\x21" + bytes(11)),  # IPv4 prefix length 33
    _nlri(5, bytes(8) + bytes(10) + bytes(4) + b"\x81" + bytes(35)),  # IPv6 prefix length 129
]
# Well-formed NLRIs evpnd cannot read: skipped by their length, the rest kept
UNREADABLE_NLRIS = [
    _nlri(2, b"\x00\x07" + GOOD_DATA[2:]),  # route distinguisher of unknown type 7
    _nlri(3, b"\x00\x07" + bytes(6) + bytes(4) + b"\x20" + bytes(4)),  # RD type 7
]


@pytest.mark.parametrize("bad", BAD_NLRIS, ids=range(len(BAD_NLRIS)))
def test_a_syntactically_incorrect_nlri_resets_the_session(decoder, bad):
    """RFC 7606 5.3: nothing of the UPDATE is used (valid NLRIs and withdraws included), the
    session is reset with an UPDATE Message Error / Invalid Network Field (10)."""
    update = _update(_mp_unreach(GOOD2) + MANDATORY + _mp_reach(GOOD + bad + GOOD2))
    assert decoder.decode_update("p", update) == []
    assert decoder.stats()["malformed_nlri"] == 1
    assert decoder.peer_stats("p") == {"session_reset": 1}
    ((peer, subcode, _reason),) = decoder.drain_resets()
    assert (peer, subcode) == ("p", 10)
    assert decoder.drain_resets() == []
    assert decoder.decode_update("q", _update(_mp_unreach(bad + GOOD))) == []
    assert decoder.peer_stats("q") == {"session_reset": 1}
    assert [r[:2] for r in decoder.drain_resets()] == [("q", 10)]


@pytest.mark.parametrize("odd", UNREADABLE_NLRIS, ids=range(len(UNREADABLE_NLRIS)))
def test_an_unreadable_rd_skips_that_nlri_only(decoder, odd):
    (event,) = decoder.decode_update("p", _update(MANDATORY + _mp_reach(GOOD + odd + GOOD2)))
    assert [p.key.mac for p in event.announced] == ["02:00:00:00:00:aa", "02:00:00:00:00:bb"]
    (event,) = decoder.decode_update("p", _update(_mp_unreach(odd + GOOD)))
    assert event.withdrawn == [GOOD_KEY] and event.announced == []
    assert decoder.peer_stats("p") == {"unsupported_nlri": 2}
    assert decoder.drain_resets() == []


@pytest.mark.parametrize("runaway", [b"\x02\xff" + GOOD_DATA, b"\x02"])
def test_an_nlri_running_past_its_attribute_resets_the_session(decoder, runaway):
    assert decoder.decode_update("p", _update(MANDATORY + _mp_reach(GOOD + runaway))) == []
    assert decoder.decode_update("p", _update(_mp_unreach(GOOD + runaway))) == []
    assert decoder.stats()["malformed_nlri"] == 2
    assert [r[:2] for r in decoder.drain_resets()] == [("p", 10), ("p", 10)]


def test_unknown_route_types_are_skipped_by_their_length(decoder):
    ead = _nlri(1, bytes(25))  # type 1 (Ethernet A-D): not handled yet
    es = _nlri(4, bytes(23))  # type 4 (Ethernet Segment)
    other = _nlri(9, b"\x00")
    (event,) = decoder.decode_update("p", _update(MANDATORY + _mp_reach(ead + es + other + GOOD)))
    assert len(event.announced) == 1
    assert decoder.decode_update("p", _update(_mp_unreach(ead + es + other))) == []
    assert decoder.stats()["unsupported_nlri"] == 6
    assert decoder.stats()["malformed_nlri"] == 0
    assert decoder.peer_stats("p") == {"unsupported_nlri": 6}
    assert decoder.drain_resets() == []


@pytest.mark.parametrize("next_hop", [b"", b"\x0a\x00\x00", bytes(5), bytes(20)])
def test_a_bad_next_hop_length_resets_the_session(decoder, next_hop):
    """RFC 7606 7.11: the NLRI cannot be located after it."""
    update = _update(MANDATORY + _mp_reach(GOOD, next_hop) + _mp_unreach(GOOD2))
    assert decoder.decode_update("p", update) == []
    assert decoder.stats()["malformed_nlri"] == 1
    assert [r[:2] for r in decoder.drain_resets()] == [("p", 9)]


def test_ipv6_next_hop_with_link_local(decoder):
    """RFC 2545 3: a 32-byte next hop is global + link-local; the global one is the VTEP."""
    nh = bytes.fromhex("20010db8" + "00" * 11 + "01" + "fe80" + "00" * 13 + "01")
    (event,) = decoder.decode_update("p", _update(MANDATORY + _mp_reach(GOOD, nh)))
    assert event.announced[0].next_hop == "2001:db8::1"


@pytest.mark.parametrize(
    "attribute",
    [
        b"\xc0\x10\x07" + bytes(7),  # extended communities not a multiple of 8 bytes
        b"\x40\x02\x01\x02",  # AS_PATH segment header cut short
        b"\x40\x02\x02\x02\x05",  # AS_PATH segment of 5 ASNs with none there
        b"\x40\x05\x03\x00\x00\x64",  # LOCAL_PREF of 3 bytes
        b"\x80\x04\x05" + bytes(5),  # MED of 5 bytes
        b"\x40\x01\x01\x07",  # ORIGIN 7
        b"\x40\x01\x02\x00\x00",  # ORIGIN of 2 bytes
        b"\x80\x09\x03" + bytes(3),  # ORIGINATOR_ID of 3 bytes
        b"\x80\x0a\x05" + bytes(5),  # CLUSTER_LIST not a multiple of 4 bytes
        b"\xc0\x16\x04" + bytes(4),  # PMSI tunnel shorter than its fixed part
    ],
)
def test_malformed_attributes_treat_as_withdraw(decoder, attribute):
    """RFC 7606 section 2: the UPDATE's routes are withdrawn, not kept with bad attributes."""
    # the malformed one first: a repeat of ORIGIN/AS_PATH after it is discarded (3(g))
    (event,) = decoder.decode_update("p", _update(attribute + MANDATORY + _mp_reach(GOOD)))
    assert event.announced == []
    assert event.withdrawn == [GOOD_KEY]
    assert decoder.stats()["malformed_attributes"] == 1
    assert decoder.peer_stats("p") == {"treat_as_withdraw": 1}
    assert "treat-as-withdraw" in decoder.last_reject


def test_truncated_attribute_field_is_dropped(decoder):
    assert decoder.decode_update("p", _update(b"\x40\x01\x05\x00")) == []
    assert decoder.stats()["malformed_updates"] == 1


def test_malformed_updates_are_counted_not_raised(decoder):
    assert decoder.decode_update("p", b"\x00") == []
    assert decoder.decode_update("p", b"\x00\x05\x00") == []
    assert decoder.decode_line("evpnd-rx p 1 zz") == []
    assert decoder.decode_line("garbage") == []
    assert decoder.stats()["malformed_updates"] == 4


def test_pmsi_variants():
    def value(tunnel_type: int, label: int, endpoint: bytes) -> bytes:
        return bytes((0, tunnel_type)) + label.to_bytes(3, "big") + endpoint

    assert _pmsi(value(6, 0, bytes([192, 0, 2, 1]))) == Pmsi(6, 0, "192.0.2.1")
    v6 = bytes.fromhex("20010db8" + "00" * 11 + "01")
    assert _pmsi(value(6, 100, v6)) == Pmsi(6, 100, "2001:db8::1")
    assert _pmsi(value(0, 0, b"")) == Pmsi(0, 0, "")  # no tunnel information
    # a tunnel type evpnd does not know: kept, for the core to refuse (pmsi_type)
    assert _pmsi(value(9, 0, b"\x01")) == Pmsi(9, 0, "")


def _captured_bodies() -> list[bytes]:
    return [
        body
        for p in sorted(FIXTURES.glob("*.jsonl"))
        for line in lines(p.name)
        if line.startswith("{") and '"update": {' in line
        for body in update_bodies(json.loads(line)["neighbor"]["message"]["update"])
    ]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(_captured_bodies()),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=8),
    st.binary(max_size=8),
)
def test_mutated_captured_updates_never_raise(body, start, length, junk):
    mutated = body[:start] + junk + body[start + length :]
    decoder = UpdateDecoder()
    events = decoder.decode_update("10.0.1.2", mutated)
    assert isinstance(events, list)
    assert decoder.decode_update("10.0.1.2", mutated, asn4=False) is not None


def test_inlined_type2_hot_path_agrees_with_the_plain_decoder(decoder):
    """_announced and _keys inline MAC and MAC+IPv4 type 2 for speed; _key/_path are the
    readable reference. Every NLRI of the captures and of the tests above, both ways."""
    import orjson

    from tests.unit.rx_fixtures import pack_nlri

    nlris = [GOOD, GOOD2, *BAD_NLRIS, *UNREADABLE_NLRIS]
    nlris.append(_nlri(2, GOOD_DATA[:8] + bytes.fromhex(ESI.replace(":", "")) + GOOD_DATA[18:]))
    nlris.append(_nlri(2, GOOD_DATA[:18] + b"\x00\x00\x00\x07" + GOOD_DATA[22:]))  # etag 7
    nlris.append(_nlri(2, GOOD_DATA + b"\x00\x13\x88"))  # label 2
    for name in ("received-json-samples.jsonl", "frr-reflects-exabgp-announces.jsonl"):
        for line in lines(name):
            if '"announce"' in line:
                update = orjson.loads(line)["neighbor"]["message"]["update"]
                for group in update["announce"]["l2vpn evpn"].values():
                    nlris += [pack_nlri(n) for n in group]
    attrs = Attributes(route_targets=("65000:100",))
    inlined = 0
    for nlri in nlris:
        fast: list[Path] = []
        withdrawn: list[RouteKey] = []  # _keys (a withdraw's) inlines the same keys
        try:
            decoder._announced(nlri, "10.0.1.2", "192.0.2.9", attrs, fast)
        except wire.WireError:  # syntactically incorrect: all three must refuse it
            fast = []
            with pytest.raises(wire.WireError):
                decoder._key(nlri[0], nlri[2:])
            with pytest.raises(wire.WireError):
                decoder._keys(nlri, "10.0.1.2", withdrawn)
        else:
            decoder._keys(nlri, "10.0.1.2", withdrawn)
        try:
            key = decoder._key(nlri[0], nlri[2:])
            plain = (
                []
                if key is None
                else [decoder._path(nlri[0], nlri[2:], key, "10.0.1.2", "192.0.2.9", attrs)]
            )
        except (wire.WireError, ValueError, IndexError):
            plain = []
        assert fast == plain, nlri.hex()
        assert withdrawn == [p.key for p in plain], nlri.hex()
        inlined += nlri[0] == 2 and bool(plain) and len(nlri) > 31 and nlri[31] in (0, 32)
    assert inlined >= 8
