"""The bytes ExaBGP puts on the wire for evpnd's routes, through the extension's send path.

Expected values are written out by hand from RFC 7432 (EVPN NLRI, sections 7.2/7.3/7.7/7.8),
RFC 8365 (labels carry the raw 24-bit VNI, encapsulation community), RFC 9135 (router's MAC),
RFC 9136 (type 5), RFC 6514 section 5 (PMSI tunnel) and RFC 4271/4760 (UPDATE layout).
"""

from __future__ import annotations

import struct
from pathlib import Path as FsPath

import pytest

from evpnd.bgp.exabgp import commands, extension
from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from tests.unit.exabgp_helpers import (
    negotiated_and_neighbor,
    outgoing_rib,
    updates_for,
    updates_for_commands,
)

FIXTURES = FsPath(__file__).parent.parent / "fixtures" / "exabgp"
RD = bytes.fromhex("0001c0000201000a")  # type 1: 192.0.2.1:10
RT_65000_100 = bytes.fromhex("0002fde800000064")
ENCAP_VXLAN = bytes.fromhex("030c000000000008")
VXLAN = Attributes(route_targets=("65000:100",), encap=8)


def parse_update(message: bytes) -> dict:
    """A whole UPDATE message -> {attribute code: value bytes} (RFC 4271 4.3)."""
    assert message[:16] == b"\xff" * 16
    length, kind = struct.unpack("!HB", message[16:19])
    assert kind == 2 and length == len(message) <= 4096
    body = message[19:]
    wlen = struct.unpack("!H", body[:2])[0]
    assert wlen == 0  # EVPN never uses the IPv4 withdrawn field
    alen = struct.unpack("!H", body[2:4])[0]
    attrs, pos, out = body[4 : 4 + alen], 0, {}
    assert len(body) == 4 + alen  # no IPv4 NLRI field
    while pos < len(attrs):
        flags, code = attrs[pos], attrs[pos + 1]
        if flags & 0x10:
            size, pos = struct.unpack("!H", attrs[pos + 2 : pos + 4])[0], pos + 4
        else:
            size, pos = attrs[pos + 2], pos + 3
        out[code] = (flags, attrs[pos : pos + size])
        pos += size
    return out


def mp_reach_nlris(value: bytes) -> tuple[bytes, list[bytes]]:
    """MP_REACH_NLRI (RFC 4760 3) for l2vpn/evpn -> (next hop, [whole NLRIs])."""
    assert value[:3] == b"\x00\x19\x46"  # AFI 25 L2VPN, SAFI 70 EVPN
    nh_len = value[3]
    nexthop = value[4 : 4 + nh_len]
    assert value[4 + nh_len] == 0  # reserved
    return nexthop, split_nlris(value[5 + nh_len :])


def split_nlris(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        out.append(data[pos : pos + 2 + data[pos + 1]])
        pos += 2 + data[pos + 1]
    return out


def communities(value: bytes) -> list[bytes]:
    return [value[i : i + 8] for i in range(0, len(value), 8)]


@pytest.fixture(scope="module")
def negotiated():
    return negotiated_and_neighbor()[0]


def mac_path(mac="02:00:00:00:aa:01", ip=None, vni=100, l3vni=0, esi=None, attrs=VXLAN):
    kw = {"esi": esi} if esi else {}
    return Path(MacIpKey("192.0.2.1:10", 0, mac, ip), LOCAL_PEER, "192.0.2.1", vni, l3vni,
                attrs=attrs, **kw)  # fmt: skip


def test_type2_mac_only(negotiated):
    (message,) = updates_for([mac_path()], negotiated)
    attrs = parse_update(message)
    assert attrs[1] == (0x40, b"\x00")  # ORIGIN IGP, well-known transitive
    assert attrs[2][1] == bytes.fromhex("0201") + struct.pack("!I", 65001)  # eBGP: our AS
    flags, ext = attrs[16]
    assert flags & 0xC0 == 0xC0  # optional transitive (RFC 4360 2)
    assert communities(ext) == [ENCAP_VXLAN, RT_65000_100]
    nexthop, (nlri,) = mp_reach_nlris(attrs[14][1])
    assert nexthop == bytes([192, 0, 2, 1])
    # RFC 7432 7.2: type 2, length 33: RD ESI EthTag MACLen MAC IPLen Label1
    mac = bytes([2, 0, 0, 0, 0xAA, 1])
    assert (
        nlri == b"\x02\x21" + RD + bytes(10) + bytes(4) + b"\x30" + mac + b"\x00" + b"\x00\x00\x64"
    )


def test_label_is_the_raw_24_bit_vni(negotiated):
    """RFC 8365 5.1.3: the label field holds the VNI itself, not label<<4|BOS."""
    (message,) = updates_for([mac_path(vni=0x123456)], negotiated)
    _, (nlri,) = mp_reach_nlris(parse_update(message)[14][1])
    assert nlri[-3:] == b"\x12\x34\x56"


def test_type2_with_ip_l3vni_esi_router_mac_mobility(negotiated):
    attrs = Attributes(route_targets=("65000:100", "65000:5000"), encap=8, mobility_seq=2,
                       has_mobility=True, router_mac="02:00:00:00:ee:01")  # fmt: skip
    esi = "00:11:22:33:44:55:66:77:88:99"
    path = mac_path(ip="10.100.0.102", l3vni=5000, esi=esi, attrs=attrs)
    (message,) = updates_for([path], negotiated)
    update = parse_update(message)
    ext = communities(update[16][1])
    assert ENCAP_VXLAN in ext
    assert bytes.fromhex("0600000000000002") in ext  # RFC 7432 7.7, not sticky
    assert bytes.fromhex("060302000000ee01") in ext  # RFC 9135 8.1: 0x0603 + MAC
    assert bytes.fromhex("0002fde800001388") in ext  # target:65000:5000
    _, (nlri,) = mp_reach_nlris(update[14][1])
    assert nlri[:2] == b"\x02\x28"  # 40 bytes: IPv4 and two labels
    data = nlri[2:]
    assert data[8:18] == bytes.fromhex("00112233445566778899")
    assert data[29] == 32 and data[30:34] == bytes([10, 100, 0, 102])
    assert data[34:37] == b"\x00\x00\x64"  # L2VNI 100
    assert data[37:40] == b"\x00\x13\x88"  # label 2: L3VNI 5000 (RFC 9135 section 8.1)


def test_sticky_mobility_and_default_gateway(negotiated):
    attrs = Attributes(encap=8, mobility_seq=1, sticky=True, has_mobility=True, default_gw=True)
    (message,) = updates_for([mac_path(ip="2001:db8::1", attrs=attrs)], negotiated)
    update = parse_update(message)
    ext = communities(update[16][1])
    assert bytes.fromhex("0600010000000001") in ext  # flags bit 0: sticky/static
    assert bytes.fromhex("030d000000000000") in ext  # RFC 7432 7.8 default gateway
    _, (nlri,) = mp_reach_nlris(update[14][1])
    assert nlri[1] == 49 and nlri[2 + 29] == 128  # IPv6: 16 bytes


def test_type3_with_pmsi_ingress_replication(negotiated):
    attrs = VXLAN._replace(pmsi=Pmsi(6, 100, "192.0.2.1"))
    path = Path(ImetKey("192.0.2.1:10", 0, "192.0.2.1"), LOCAL_PEER, "192.0.2.1", 100,
                attrs=attrs)  # fmt: skip
    (message,) = updates_for([path], negotiated)
    update = parse_update(message)
    flags, pmsi = update[22]
    assert flags & 0xC0 == 0xC0  # optional transitive
    # RFC 6514 5: flags 0, type 6 ingress replication, label = VNI 100 (RFC 8365 5.1.3), IP
    assert pmsi == b"\x00\x06" + b"\x00\x00\x64" + bytes([192, 0, 2, 1])
    _, (nlri,) = mp_reach_nlris(update[14][1])
    # RFC 7432 7.3: RD EthTag IPLen IP
    assert nlri == b"\x03\x11" + RD + bytes(4) + b"\x20" + bytes([192, 0, 2, 1])


def test_type5_prefix(negotiated):
    attrs = Attributes(route_targets=("65000:5000",), encap=8, router_mac="02:00:00:00:ee:01")
    path = Path(PrefixKey("192.0.2.1:10", 0, "10.201.0.0/24"), LOCAL_PEER, "192.0.2.1", 5000,
                gateway="10.201.0.1", attrs=attrs)  # fmt: skip
    (message,) = updates_for([path], negotiated)
    _, (nlri,) = mp_reach_nlris(parse_update(message)[14][1])
    # RFC 9136 3.1: RD ESI EthTag PrefixLen Prefix GW Label (34 bytes for IPv4)
    assert nlri == (b"\x05\x22" + RD + bytes(10) + bytes(4) + b"\x18" + bytes([10, 201, 0, 0])
                    + bytes([10, 201, 0, 1]) + b"\x00\x13\x88")  # fmt: skip


def test_many_routes_share_updates(negotiated):
    """Stock ExaBGP sends one NLRI per UPDATE for EVPN; the extension fills each message."""
    paths = [mac_path(mac=f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}") for i in range(1000)]
    messages = updates_for(paths, negotiated)
    assert len(messages) == 9  # 35 bytes each: 115 in the ~4030 bytes left by the attributes
    seen = []
    for message in messages:
        update = parse_update(message)
        seen += mp_reach_nlris(update[14][1])[1]
    assert len(seen) == len(set(seen)) == 1000


def test_withdraw_is_mp_unreach_only_and_matches_on_the_route_key(negotiated):
    rib = outgoing_rib()
    updates_for([mac_path(vni=100)], negotiated, rib=rib)
    # withdrawn with another label (FRR style label 0): still the same route (RFC 7432 7.2)
    (message,) = updates_for([mac_path(vni=0)], negotiated, announce=False, rib=rib)
    update = parse_update(message)
    assert list(update) == [15]  # MP_UNREACH_NLRI alone (RFC 4760 4)
    assert update[15][1][:3] == b"\x00\x19\x46"
    assert len(split_nlris(update[15][1][3:])) == 1
    assert list(rib.cached_changes()) == []


def test_newer_announce_replaces_a_pending_older_one(negotiated):
    rib = outgoing_rib()
    old = mac_path(attrs=VXLAN._replace(mobility_seq=1, has_mobility=True))
    new = mac_path(attrs=VXLAN._replace(mobility_seq=2, has_mobility=True))
    other = mac_path(mac="02:00:00:00:bb:01", attrs=new.attrs)
    updates_for([other], negotiated, rib=rib)  # the seq-2 bucket exists first
    from evpnd.bgp import batch

    extension.apply_groups([rib], batch.encode([(True, old), (True, new)]))
    messages = [m for u in rib.updates(True) for m in u.messages(negotiated)]
    assert len(messages) == 1  # only the seq-2 announce, never the stale seq-1 one after it
    assert bytes.fromhex("0600000000000002") in communities(parse_update(messages[0])[16][1])


def test_identical_announce_is_not_sent_again(negotiated):
    rib = outgoing_rib()
    assert updates_for([mac_path()], negotiated, rib=rib)
    assert updates_for([mac_path()], negotiated, rib=rib) == []


def test_text_grammar_gives_the_same_bytes(negotiated):
    paths = [
        mac_path(ip="10.0.0.1", l3vni=5000, attrs=VXLAN._replace(router_mac="02:00:00:00:ee:01")),
        Path(
            ImetKey("192.0.2.1:10", 0, "192.0.2.1"),
            LOCAL_PEER,
            "192.0.2.1",
            100,
            attrs=VXLAN._replace(pmsi=Pmsi(6, 100, "192.0.2.1")),
        ),  # fmt: skip
        Path(
            PrefixKey("192.0.2.1:10", 0, "2001:db8:201::/64"),
            LOCAL_PEER,
            "192.0.2.1",
            5000,
            attrs=VXLAN,
        ),  # fmt: skip
    ]
    for path in paths:
        text = updates_for_commands([commands.encode_announce(path)], negotiated)
        assert text == updates_for([path], negotiated)


def test_every_fixture_command_is_accepted(negotiated):
    lines = (FIXTURES / "announce-samples.txt").read_text().splitlines()
    lines += (FIXTURES / "withdraw-samples.txt").read_text().splitlines()
    rib = outgoing_rib()
    ok, errors = extension.apply_commands([rib], [line for line in lines if line.strip()])
    assert errors == [] and ok == len([line for line in lines if line.strip()])


@pytest.mark.parametrize(
    "line",
    [
        "announce evpn mac-ip rd 192.0.2.1:1 mac 02:00:00:00:aa:01 next-hop 192.0.2.1",  # no label
        "announce evpn mac-ip rd nonsense mac 02:00:00:00:aa:01 label 1 next-hop 192.0.2.1",
        "announce evpn mac-ip rd 1:1 mac 02:00:00:00:aa label 1 next-hop 192.0.2.1",
        "announce evpn mac-ip rd 1:1 mac 02:00:00:00:aa:01 label 16777216 next-hop 192.0.2.1",
        "announce evpn mac-ip rd 1:1 mac 02:00:00:00:aa:01 label 1 next-hop 300.1.1.1",
        "announce evpn mac-ip rd 1:1 mac 02:00:00:00:aa:01 label 1 next-hop 1.1.1.1 colour red",
        "announce evpn flowspec rd 1:1 next-hop 1.1.1.1",
        "announce evpn prefix rd 1:1 prefix 10.0.0.0/33 label 1 next-hop 1.1.1.1",
    ],
)
def test_bad_commands_are_rejected_not_raised(line):
    ok, errors = extension.apply_commands([outgoing_rib()], [line])
    assert ok == 0 and len(errors) == 1


def test_bad_batches_are_rejected_not_raised():
    rib = outgoing_rib()
    ok, errors = extension.apply_groups([rib], "A 192.0.2.1 zz 0221 ; W 02ff ; X")
    assert ok == 0 and errors
