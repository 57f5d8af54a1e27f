"""evpnd.bgp.codec against ExaBGP 5.0.15's real JSON output (tests/fixtures/exabgp/)."""

from __future__ import annotations

import json
from pathlib import Path as FsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evpnd.bgp import codec
from evpnd.bgp.codec import decode_line, encode_announce, encode_withdraw
from evpnd.core.events import CommandReply, EndOfRib, Notification, PeerOpen, PeerState, RouteUpdate
from evpnd.routes import ZERO_ESI, Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey

FIXTURES = FsPath(__file__).parent.parent / "fixtures" / "exabgp"
ESI = "00:11:22:33:44:55:66:77:88:99"
RMAC = "02:00:00:00:ee:01"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def decode_all(name: str) -> list:
    return [event for line in lines(name) for event in decode_line(line)]


@pytest.fixture(autouse=True)
def _fresh_counters():
    codec.reset_stats()
    yield


def only_update(line: str) -> RouteUpdate:
    events = decode_line(line)
    assert len(events) == 1 and isinstance(events[0], RouteUpdate), events
    return events[0]


# ----------------------------------------------------------------------------- fixtures


def test_every_fixture_line_decodes_without_rejects():
    for name in sorted(p.name for p in FIXTURES.glob("*.jsonl")) + ["ack-ordering.txt"]:
        for line in lines(name):
            assert decode_line(line), f"{name}: nothing from {line[:80]}"
    stats = codec.stats()
    assert stats["lines"] == 46
    rejected = ("malformed_lines", "malformed_nlri", "malformed_attributes", "unsupported_nlri")
    assert all(stats[name] == 0 for name in rejected), stats


def test_received_samples_state_lines():
    events = decode_all("received-json-samples.jsonl")
    assert events[0] == PeerState("10.0.1.2", "connected", "", "10.0.1.1", 65002)
    assert events[1] == PeerState("10.0.1.2", "up", "", "10.0.1.1", 65002)


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
    assert [decode_line(s) for s in samples[:6]] == [[CommandReply(True)]] * 6
    (p1,) = only_update(samples[6]).announced
    assert p1.attrs.as_path == (65002, 65001)  # our own AS: the core drops these
    (p2,) = only_update(samples[7]).announced
    assert p2.key.ip == "10.100.0.102" and p2.vni == 100
    assert p2.l3vni == 5000  # label 2: ExaBGP's JSON omits it, the codec reads the raw NLRI
    assert p2.attrs.route_targets == ("65000:100", "65000:5000")
    assert p2.attrs.router_mac == RMAC  # from 433192188181016065, whose string is empty
    assert (p2.attrs.has_mobility, p2.attrs.mobility_seq, p2.attrs.sticky) == (True, 2, False)
    (p3,) = only_update(samples[8]).announced
    assert (p3.attrs.mobility_seq, p3.attrs.sticky, p3.esi) == (1, True, ESI)
    assert p3.seq == 1 and p3.sticky
    (p4,) = only_update(samples[9]).announced
    assert p4.attrs.pmsi == Pmsi(6, 100, "192.0.2.1")
    v4, v6 = only_update(samples[10]).announced  # two NLRIs, one shared Attributes
    assert v4.attrs is v6.attrs
    assert (v4.key.prefix, v6.key.prefix) == ("10.201.0.0/24", "2001:db8:201::/64")
    assert v4.vni == v6.vni == 5000 and v4.attrs.router_mac == RMAC


def test_mobility_move_sequence():
    (path,) = only_update(lines("frr-type2-mac-mobility-move.jsonl")[0]).announced
    assert path.key == MacIpKey("192.0.2.2:100", 0, "02:00:00:00:aa:01", None)
    assert path.next_hop == "192.0.2.2"
    assert (path.attrs.mobility_seq, path.attrs.sticky, path.attrs.has_mobility) == (1, False, True)


def test_equal_attributes_are_shared_across_lines():
    samples = lines("received-json-samples.jsonl")
    (a,) = only_update(samples[4]).announced
    (b,) = only_update(samples[4]).announced
    assert a.attrs is b.attrs


def test_notifications_and_state_reasons():
    events = decode_all("gobgp-peer-disable-enable.jsonl")
    assert events[0] == Notification("10.0.2.2", 6, 2, "")
    assert events[1] == PeerState(
        "10.0.2.2", "down", "notification received (6,2)", "10.0.2.1", 65003
    )
    assert events[2].state == "connected"
    assert events[3].reason == "closing connection"
    assert len(events) == 10


def test_ack_ordering_and_exabgp_shutdown():
    events = decode_all("ack-ordering.txt")
    replies = [e.ok for e in events if isinstance(e, CommandReply)]
    assert replies == [False, True, False, True]
    assert isinstance(events[4], RouteUpdate) and events[4].announced[0].attrs.encap is None
    assert events[5].announced[0].attrs.route_targets == ()
    downs = [e for e in events if isinstance(e, PeerState)]
    assert [d.reason for d in downs] == ["stop, message [shutting down]"] * 2
    assert events[-1] == Notification(None, message="shutdown")


# ----------------------------------------------------------------------------- built lines


def update_line(announce=None, withdraw=None, attribute=None, peer="10.0.1.2", **extra) -> str:
    update = {}
    if attribute is not None:
        update["attribute"] = attribute
    if announce is not None:
        update["announce"] = {"l2vpn evpn": announce}
    if withdraw is not None:
        update["withdraw"] = {"l2vpn evpn": withdraw}
    neighbor = {
        "address": {"local": "10.0.1.1", "peer": peer},
        "asn": {"local": 65001, "peer": 65002},
        "direction": "receive",
        "message": {"update": update},
        **extra,
    }
    return json.dumps({"exabgp": "5.0.0", "type": "update", "neighbor": neighbor})


def mac_nlri(mac="02:00:00:00:00:01", label=None, **extra) -> dict:
    nlri = {
        "code": 2,
        "parsed": True,
        "rd": "192.0.2.9:100",
        "esi": "-",
        "ethernet-tag": 0,
        "mac": mac,
        "label": label if label is not None else [[6, 100]],
    }
    nlri.update(extra)
    return nlri


ATTRS = {"origin": "igp", "extended-community": [{"value": 842122827661412, "string": "x"}]}


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
        "community": [[65000, 1]],
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


def test_mixed_announce_and_withdraw_in_one_line_and_upper_case_mac():
    line = update_line(
        {"192.0.2.9": [mac_nlri("AA:BB:CC:DD:EE:FF")]},
        withdraw=[mac_nlri("02:00:00:00:00:02", label=[[0]])],
        attribute=ATTRS,
    )
    update = only_update(line)
    assert update.announced[0].key.mac == "aa:bb:cc:dd:ee:ff"
    assert update.withdrawn == [MacIpKey("192.0.2.9:100", 0, "02:00:00:00:00:02", None)]


def test_type5_gateway_and_host_bits():
    nlri = {
        "code": 5,
        "parsed": True,
        "rd": "65000:5000",
        "esi": "-",
        "ethernet-tag": 0,
        "label": [[312, 5000]],
        "ip": "10.9.8.7",
        "iplen": 16,
        "gateway": "10.9.0.1",
    }
    (path,) = only_update(update_line({"192.0.2.9": [nlri]}, attribute=ATTRS)).announced
    assert path.key == PrefixKey("65000:5000", 0, "10.9.0.0/16")
    assert path.gateway == "10.9.0.1"


def test_end_of_rib():
    line = json.dumps(
        {
            "type": "update",
            "neighbor": {
                "address": {"local": "10.0.1.1", "peer": "10.0.1.2"},
                "direction": "receive",
                "message": {"eor": {"afi": "l2vpn", "safi": "evpn"}},
            },
        }
    )
    assert decode_line(line) == [EndOfRib("10.0.1.2")]
    assert decode_line(line.replace('"l2vpn"', '"ipv4"').replace('"evpn"', '"unicast"')) == []


def test_lines_evpnd_ignores():
    assert decode_line("") == [] and decode_line("   \n") == []
    assert decode_line('{"type": "keepalive", "neighbor": {}}') == []
    assert decode_line(update_line({"192.0.2.9": [mac_nlri()]}, direction="send")) == []
    other_family = update_line().replace(
        '"update": {}', '"update": {"announce": {"ipv4 unicast": {}}}'
    )
    assert decode_line(other_family) == []
    assert codec.stats()["malformed_lines"] == 0


# ----------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "line",
    [
        "{",
        '{"type": "update", "neighbor": {"address": ',
        "[1, 2, 3]",
        '{"type": ["update"]}',
        '{"type": "update"}',
        '{"type": "update", "neighbor": "x"}',
        '{"type": "update", "neighbor": {"address": {"peer": 5}, "message": {}}}',
        '{"type": "state", "neighbor": {"address": {"peer": "10.0.0.1"}, "state": 3}}',
        '{"type": "notification", "neighbor": {"address": {"peer": "1.1.1.1"}, "notification": 1}}',
        "done and more",
        "garbage",
        "{" * 100_000,
        '{"n": ' + "9" * 5000 + "}",
        "\x00\xff",
    ],
)
def test_malformed_lines_are_counted_not_raised(line):
    assert decode_line(line) == []
    assert codec.stats()["malformed_lines"] == 1
    assert codec.last_reject


# Bad NLRIs. Those marked True still have a valid key: a withdraw needs only the key (label
# and ESI are not part of it, and FRR withdraws with label 0), so it is honoured.
BAD_NLRIS = [
    (mac_nlri(mac="02:00:00:00:00"), False),  # short MAC
    (mac_nlri(mac="zz:00:00:00:00:01"), False),
    (mac_nlri(mac=12), False),
    (mac_nlri(mac=None), False),
    (mac_nlri(label=[[6, 16_777_216]]), True),  # VNI beyond 24 bits
    (mac_nlri(label=[[6, -1]]), True),
    (mac_nlri(label=[[6, 2**70]]), True),
    (mac_nlri(label=[[6, "100"]]), True),
    (mac_nlri(label="100"), True),
    (mac_nlri(label=[[6, 100], [1, 1 << 30]]), True),
    (mac_nlri(**{"ethernet-tag": -1}), False),
    (mac_nlri(**{"ethernet-tag": 1 << 32}), False),
    (mac_nlri(**{"ethernet-tag": True}), False),
    (mac_nlri(rd="not-an-rd"), False),
    (mac_nlri(rd=["list"]), False),
    (mac_nlri(esi="00:11"), True),
    (mac_nlri(ip="not an ip"), False),
    (mac_nlri(ip=10), False),
    ({"code": 2}, False),
    ({"code": 3, "rd": "1.1.1.1:1", "ethernet-tag": 0}, False),
    ({"code": 5, "rd": "1.1.1.1:1", "ethernet-tag": 0, "ip": "10.0.0.0", "iplen": 33}, False),
    ({"code": 5, "rd": "1.1.1.1:1", "ethernet-tag": 0, "ip": "10.0.0.0", "iplen": "24"}, False),
    ("not a dict", False),
    (None, False),
    ([], False),
]


@pytest.mark.parametrize("bad,key_ok", BAD_NLRIS, ids=range(len(BAD_NLRIS)))
def test_bad_nlri_is_skipped_and_the_good_ones_kept(bad, key_ok):
    good = mac_nlri("02:00:00:00:00:aa")
    line = update_line(
        {"192.0.2.9": [good, bad, good | {"mac": "02:00:00:00:00:bb"}]}, attribute=ATTRS
    )
    update = only_update(line)
    assert [p.key.mac for p in update.announced] == ["02:00:00:00:00:aa", "02:00:00:00:00:bb"]
    assert codec.stats()["malformed_nlri"] == 1
    withdrawn = only_update(update_line(withdraw=[bad, good])).withdrawn
    assert withdrawn[-1] == MacIpKey("192.0.2.9:100", 0, "02:00:00:00:00:aa", None)
    assert len(withdrawn) == (2 if key_ok else 1)
    assert codec.stats()["malformed_nlri"] == (1 if key_ok else 2)


def test_unknown_and_unparsed_route_codes_are_unsupported():
    ethernet_ad = {"code": 1, "parsed": True, "rd": "1.1.1.1:1"}
    unparsed = {"code": 9, "parsed": False, "raw": "0900"}
    line = update_line({"192.0.2.9": [ethernet_ad, unparsed, mac_nlri()]}, attribute=ATTRS)
    assert len(only_update(line).announced) == 1
    assert decode_line(update_line(withdraw=[ethernet_ad, unparsed])) == []
    assert codec.stats()["unsupported_nlri"] == 4
    assert codec.stats()["malformed_nlri"] == 0


def test_bad_next_hop_skips_its_nlris():
    line = update_line({"not-an-ip!": [mac_nlri()], "192.0.2.9": [mac_nlri()]}, attribute=ATTRS)
    assert [p.next_hop for p in only_update(line).announced] == ["192.0.2.9"]
    assert codec.stats()["malformed_nlri"] == 1


@pytest.mark.parametrize(
    "attribute",
    [
        {"extended-community": [{"value": "842122827661412"}]},
        {"extended-community": [{"value": 1 << 64}]},
        {"extended-community": [{"string": "target:1:1"}]},
        {"extended-community": 5},
        {"as-path": {"0": {"element": "as-sequence", "value": ["65000"]}}},
        {"as-path": [65000]},
        {"local-preference": "100"},
        {"med": -5},
        {"origin": 0},
        {"originator-id": 5},
        {"cluster-list": "1.1.1.1"},
        {"pmsi": "pmsi:ingressreplication:0:6(oops):192.0.2.1"},
        {"pmsi": "pmsi:ingressreplication:0:6(16777216):192.0.2.1"},
        {"pmsi": "garbage"},
        "not a dict",
    ],
)
def test_malformed_attributes_treat_as_withdraw(attribute):
    """RFC 7606 section 2: the UPDATE's routes are withdrawn, not kept with bad attributes."""
    update = only_update(update_line({"192.0.2.9": [mac_nlri()]}, attribute=attribute))
    assert update.announced == []
    assert update.withdrawn == [MacIpKey("192.0.2.9:100", 0, "02:00:00:00:00:01", None)]
    assert codec.stats()["malformed_attributes"] == 1


def test_pmsi_variants():
    pmsi = codec._pmsi
    assert pmsi("pmsi:ingressreplication:0:0:192.0.2.1") == Pmsi(6, 0, "192.0.2.1")
    v6 = "pmsi:ingressreplication:0:6(100):0x20010DB8000000000000000000000001"
    assert pmsi(v6) == Pmsi(6, 100, "2001:db8::1")
    assert pmsi("pmsi:notunnel:0:0:") == Pmsi(0, 0, "")
    assert pmsi("pmsi:unknown:0:0:0x01") is None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [line for p in sorted(FIXTURES.glob("*.jsonl")) for line in lines(p.name) if "{" in line]
    ),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=1, max_value=40),
    st.text(max_size=8),
)
def test_mutated_fixture_lines_never_raise(line, start, length, junk):
    mutated = line[:start] + junk + line[start + length :]
    events = decode_line(mutated)
    assert isinstance(events, list)


# ----------------------------------------------------------------------------- commands

LOCAL = "local"
ANNOUNCED = [
    Path(
        MacIpKey("192.0.2.1:100", 0, "02:00:00:00:aa:01", None),
        LOCAL,
        "192.0.2.1",
        100,
        attrs=Attributes(route_targets=("65000:100",), encap=8),
    ),
    Path(
        MacIpKey("192.0.2.1:100", 0, "02:00:00:00:aa:02", "10.100.0.102"),
        LOCAL,
        "192.0.2.1",
        100,
        5000,
        attrs=Attributes(
            route_targets=("65000:100", "65000:5000"),
            encap=8,
            mobility_seq=2,
            has_mobility=True,
            router_mac=RMAC,
        ),
    ),
    Path(
        MacIpKey("192.0.2.1:100", 0, "02:00:00:00:aa:03", "2001:db8:100::103"),
        LOCAL,
        "192.0.2.1",
        100,
        esi=ESI,
        attrs=Attributes(
            route_targets=("65000:100",), encap=8, mobility_seq=1, sticky=True, has_mobility=True
        ),
    ),
    Path(
        ImetKey("192.0.2.1:100", 0, "192.0.2.1"),
        LOCAL,
        "192.0.2.1",
        100,
        attrs=Attributes(route_targets=("65000:100",), encap=8, pmsi=Pmsi(6, 100, "192.0.2.1")),
    ),
    Path(
        PrefixKey("192.0.2.1:5000", 0, "10.201.0.0/24"),
        LOCAL,
        "192.0.2.1",
        5000,
        gateway="0.0.0.0",
        attrs=Attributes(route_targets=("65000:5000",), encap=8, router_mac=RMAC),
    ),
    Path(
        PrefixKey("192.0.2.1:5000", 0, "2001:db8:201::/64"),
        LOCAL,
        "192.0.2.1",
        5000,
        attrs=Attributes(route_targets=("65000:5000",), encap=8, router_mac=RMAC),
    ),
]


def test_encode_announce_matches_the_samples():
    assert [encode_announce(p) for p in ANNOUNCED] == lines("announce-samples.txt")


def test_encode_withdraw_matches_the_samples():
    withdrawn = [ANNOUNCED[1], ANNOUNCED[3], ANNOUNCED[4]]
    assert [encode_withdraw(p) for p in withdrawn] == lines("withdraw-samples.txt")


def test_withdraw_repeats_label_and_esi_of_the_announce():
    """ExaBGP keys its adj-rib-out on the packed NLRI: label and ESI must match the announce."""
    assert encode_withdraw(ANNOUNCED[2]) == (
        "withdraw evpn mac-ip rd 192.0.2.1:100 mac 02:00:00:00:aa:03 ip 2001:db8:100::103 "
        f"label 100 esi {ESI} next-hop 192.0.2.1"
    )


def test_encode_optional_parts():
    path = Path(
        MacIpKey("65000:7", 5, "02:00:00:00:00:01", None),
        LOCAL,
        "192.0.2.1",
        7,
        attrs=Attributes(default_gw=True, sticky=True, other_communities=(0x0601000000000001,)),
    )
    assert encode_announce(path) == (
        "announce evpn mac-ip rd 65000:7 etag 5 mac 02:00:00:00:00:01 label 7 next-hop 192.0.2.1"
        " mac-mobility 0 sticky default-gateway extended-community [ 0x0601000000000001 ]"
    )
    bare = Path(ImetKey("65000:7", 0, "192.0.2.1"), LOCAL, "192.0.2.1")
    assert (
        encode_announce(bare)
        == "announce evpn multicast rd 65000:7 ip 192.0.2.1 next-hop 192.0.2.1"
    )
    with pytest.raises(ValueError):
        encode_announce(bare._replace(attrs=Attributes(pmsi=Pmsi(3, 7, "239.1.1.1"))))


def test_announce_decodes_back_to_the_same_values():
    """What we send, FRR reflects back: the decoded paths carry the values we encoded."""
    reflected = [
        p
        for line in lines("frr-reflects-exabgp-announces.jsonl")
        for e in decode_line(line)
        if isinstance(e, RouteUpdate)
        for p in e.announced
    ]
    assert len(reflected) == len(ANNOUNCED)
    for sent, back in zip(ANNOUNCED, reflected, strict=True):
        assert back.key == sent.key
        assert (back.vni, back.l3vni, back.esi) == (sent.vni, sent.l3vni, sent.esi)
        assert back.next_hop == sent.next_hop
        assert back.attrs.route_targets == sent.attrs.route_targets
        assert back.attrs.router_mac == sent.attrs.router_mac
        assert back.attrs.pmsi == sent.attrs.pmsi
        assert (back.attrs.mobility_seq, back.attrs.sticky) == (
            sent.attrs.mobility_seq,
            sent.attrs.sticky,
        )


# ----------------------------------------------------------------------------- ExaBGP's encoder


def exabgp_json_lines() -> tuple[str, str]:
    """An UPDATE with every attribute evpnd reads, and an End-of-RIB, rendered by ExaBGP 5.0.15's
    own JSON encoder (the attributes the captured fixtures lack: local-pref, MED, originator,
    cluster list, AS_SET, label 2 in the JSON)."""
    import struct

    from exabgp.bgp.message import Action
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
    from exabgp.reactor.api.response.json import JSON

    class Neighbor(dict):
        uid = 1

    neighbor = Neighbor(
        {
            "local-address": "10.0.1.1",
            "peer-address": "10.0.1.2",
            "local-as": 65001,
            "peer-as": 65002,
            "router-id": "192.0.2.1",
        }
    )
    attrs = XAttributes()
    attrs.add(Origin(Origin.EGP))
    attrs.add(ASPath([SEQUENCE([65002, 65010]), SET([65020, 65030])]))
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
    encoder = JSON("5.0.0")
    update = encoder.update(neighbor, "receive", Update([nlri], attrs), None, b"", b"")
    eor = EOR(AFI.l2vpn, SAFI.evpn)  # as Update.unpack_message makes it: no action
    return update, encoder.update(neighbor, "receive", eor, None, b"", b"")


def test_lines_from_exabgps_own_encoder():
    update_text, eor_text = exabgp_json_lines()
    (path,) = only_update(update_text).announced
    assert path.key == MacIpKey("192.0.2.2:100", 0, "02:00:00:00:bb:01", "10.100.0.9")
    assert (path.vni, path.l3vni, path.next_hop) == (100, 5000, "192.0.2.2")
    attrs = path.attrs
    assert attrs.as_path == (65002, 65010, 65020, 65030)
    assert (attrs.origin, attrs.local_pref, attrs.med) == ("egp", 250, 17)
    assert attrs.originator_id == "192.0.2.77"
    assert attrs.cluster_list == ("192.0.2.200", "192.0.2.201")
    assert attrs.route_targets == ("65000:100",) and attrs.encap == 8
    assert (attrs.mobility_seq, attrs.sticky, attrs.router_mac) == (5, True, RMAC)
    assert attrs.default_gw is True and attrs.other_communities == ()
    assert decode_line(eor_text) == [EndOfRib("10.0.1.2")]
    assert codec.stats()["malformed_nlri"] == 0


def test_bytes_lines_as_read_from_the_pipe():
    for name in ("received-json-samples.jsonl", "ack-ordering.txt"):
        for line in lines(name):
            assert decode_line(line.encode() + b"\n") == decode_line(line)
    assert decode_line(b'{"type": "update", "x": "\xff\xfe"}') == []
    assert decode_line(b"\xff") == []
    assert codec.stats()["malformed_lines"] == 2


def test_inlined_type2_hot_path_agrees_with_the_plain_decoder():
    """codec._announce inlines type 2 for speed; codec._path is the readable reference."""
    import orjson

    nlris = [mac_nlri(), mac_nlri("AA:BB:CC:DD:EE:01", ip="10.0.0.1", esi=ESI)]
    nlris += [mac_nlri(label=[[6, 100], [312, 5000]]), mac_nlri(label=[[0]])]
    nlris += [bad for bad, _ in BAD_NLRIS]
    for name in ("received-json-samples.jsonl", "frr-reflects-exabgp-announces.jsonl"):
        for line in lines(name):
            if '"announce"' in line:
                for group in orjson.loads(line)["neighbor"]["message"]["update"]["announce"][
                    "l2vpn evpn"
                ].values():
                    nlris += group
    attrs = Attributes(route_targets=("65000:100",))
    for nlri in nlris:
        fast: list[Path] = []
        codec._announce([nlri], "10.0.1.2", "192.0.2.9", attrs, fast)
        plain = codec._path(nlri, "10.0.1.2", "192.0.2.9", attrs)
        assert fast == ([] if plain is None else [plain]), nlri


def test_commands_parse_in_the_extension_and_withdraws_match_their_announce():
    """The extension inside ExaBGP parses exactly this grammar (evpnd.bgp.exabgp.commands)."""
    from evpnd.bgp.exabgp import commands

    optional = Path(
        MacIpKey("65000:7", 5, "02:00:00:00:00:01", "10.0.0.7"),
        LOCAL,
        "192.0.2.1",
        7,
        9,
        esi=ESI,
        attrs=Attributes(default_gw=True, sticky=True, other_communities=(0x0601000000000001,)),
    )
    for path in [*ANNOUNCED, optional]:
        announce = commands.parse(encode_announce(path))
        withdraw = commands.parse(encode_withdraw(path))
        assert announce.announce and not withdraw.announce
        assert announce.code == withdraw.code == path.key.route_type
        assert (withdraw.data, withdraw.next_hop) == (announce.data, path.next_hop)
        assert announce.attrs is not None and withdraw.attrs is None


# ----------------------------------------------------------------------------- OPEN


def test_open_lines_give_the_peers_graceful_restart_capability():
    # Real OPENs from FRR 8.4 (tests/fixtures/exabgp/frr-open-graceful-restart.txt):
    # `bgp graceful-restart` (F bit clear), + `preserve-fw-state` and restart-time 30 (F bit
    # set; ExaBGP prints it as "restart"), `bgp graceful-restart-disable` (no capability).
    gr, preserved, disabled = lines("frr-open-graceful-restart.txt")
    assert decode_line(gr) == [PeerOpen("10.0.1.2", 120, {"l2vpn evpn": False})]
    assert decode_line(preserved) == [PeerOpen("10.0.1.2", 30, {"l2vpn evpn": True})]
    assert decode_line(disabled) == [PeerOpen("10.0.1.2", None, {})]
    # an OPEN evpnd's ExaBGP sent is not the peer's
    msg = json.loads(gr)
    msg["neighbor"]["direction"] = "send"
    assert decode_line(json.dumps(msg)) == []
    # a capability of a bad shape: dropped and counted, never raised
    for bad in ({"time": "120"}, {"time": 5000}, {"address-family-flags": ["l2vpn/evpn"]}):
        msg = json.loads(gr)
        msg["neighbor"]["open"]["capabilities"]["64"].update(bad)
        assert decode_line(json.dumps(msg)) == []
    assert codec.stats()["malformed_lines"] == 3
