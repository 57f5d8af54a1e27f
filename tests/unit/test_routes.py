"""The route model: RD/RT/ESI, extended communities, keys and paths (evpnd.routes)."""

from __future__ import annotations

import pytest

from evpnd.routes import (
    LOCAL_PEER,
    ZERO_ESI,
    Attributes,
    ImetKey,
    MacIpKey,
    Path,
    PrefixKey,
    RDError,
    auto_rd,
    describe,
    normalize_esi,
    normalize_rd,
    pack_rd,
    route_type,
    unpack_rd,
)
from evpnd.routes import communities as ec
from evpnd.routes.esi import ESIError, pack_esi, unpack_esi

# ----------------------------------------------------------------------------- RD


@pytest.mark.parametrize(
    "text,packed",
    [
        ("65000:100", bytes.fromhex("0000fde800000064")),  # type 0: ASN2:NUM32
        ("0:0", bytes(8)),
        ("65535:4294967295", bytes.fromhex("0000ffffffffffff")),
        ("192.0.2.1:100", bytes.fromhex("0001c00002010064")),  # type 1: IPv4:NUM16
        ("255.255.255.255:65535", bytes.fromhex("0001ffffffffffff")),
        ("4200000000:7", bytes.fromhex("0002fa56ea000007")),  # type 2: ASN4:NUM16
        ("65536:65535", bytes.fromhex("000200010000ffff")),
    ],
)
def test_rd_pack_unpack(text, packed):
    assert pack_rd(text) == packed
    assert unpack_rd(packed) == text
    assert normalize_rd(text) == text


def test_rd_normalizes_leading_zeros():
    assert normalize_rd("65000:0100") == "65000:100"
    assert normalize_rd("192.0.2.1:007") == "192.0.2.1:7"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "65000",
        ":100",
        "65000:",
        "abc:1",
        "1:2:3",
        "65000:-1",
        "-1:5",
        "65536:70000",  # ASN4 leaves 16 bits for the number
        "4294967296:1",
        "1.2.3.4:65536",  # IPv4 leaves 16 bits for the number
        "300.1.1.1:5",
        "192.000.2.1:5",
        "1.2.3:5",
        "1:²",  # a digit to str.isdigit, not to int()
        "2001:db8::1:5",
    ],
)
def test_rd_errors(text):
    with pytest.raises(RDError):
        pack_rd(text)


def test_rd_unpack_errors():
    with pytest.raises(RDError):
        unpack_rd(bytes(7))
    with pytest.raises(RDError):
        unpack_rd(bytes.fromhex("0003000000000000"))


def test_auto_rd_is_frr_router_id_colon_index():
    assert auto_rd("192.0.2.1", 3) == "192.0.2.1:3"
    assert normalize_rd(auto_rd("192.0.2.1", 3)) == "192.0.2.1:3"


# ----------------------------------------------------------------------------- RT


@pytest.mark.parametrize(
    "text,value",
    [
        ("65000:100", 842122827661412),  # the value FRR sent in the fixtures
        ("65000:5000", 842122827666312),
        ("192.0.2.1:42", (0x0102 << 48) | (0xC0000201 << 16) | 42),
        ("4200000000:7", (0x0202 << 48) | (4200000000 << 16) | 7),
    ],
)
def test_route_target_formats(text, value):
    assert ec.pack_route_target(text) == value
    assert ec.format_route_target(value) == text
    assert ec.normalize_route_target(text) == text


def test_route_target_normalize_and_number():
    assert ec.normalize_route_target("65000:0100") == "65000:100"
    assert ec.rt_number("65000:100") == 100
    assert ec.rt_number("192.0.2.1:42") == 42
    assert ec.format_route_target(ec.encapsulation()) is None  # not a route target


@pytest.mark.parametrize(
    "text", ["", "65000", "x:1", "1.2.3.4:70000", "65536:70000", "1.2.3.999:1", "1:²"]
)
def test_route_target_errors(text):
    with pytest.raises(RDError):
        ec.pack_route_target(text)


# ----------------------------------------------------------------------------- communities


def test_extended_community_values_seen_on_the_wire():
    """The integers FRR and GoBGP sent (tests/fixtures/exabgp), both ways."""
    assert ec.encapsulation() == 219550481834311688 == 0x030C000000000008
    assert ec.encapsulation(ec.TUNNEL_VXLAN) & 0xFFFF == 8
    assert ec.router_mac("02:00:00:00:ee:01") == 433192188181016065
    assert ec.decode_router_mac(433192188181016065) == "02:00:00:00:ee:01"
    assert ec.decode_router_mac(433192188181016067) == "02:00:00:00:ee:03"
    assert ec.router_mac("02:00:00:00:EE:01") == 433192188181016065
    assert ec.mac_mobility(2) == 432345564227567618
    assert ec.mac_mobility(1, sticky=True) == 432346663739195393
    assert ec.mac_mobility(1) == 432345564227567617
    assert ec.decode_mac_mobility(432345564227567618) == ec.MacMobility(2, False)
    assert ec.decode_mac_mobility(432346663739195393) == ec.MacMobility(1, True)
    assert ec.default_gateway() == 219831956811022336 == 0x030D000000000000
    kinds = [ec.community_kind(v) for v in (ec.encapsulation(), ec.mac_mobility(1))]
    assert kinds == [ec.ENCAPSULATION, ec.MAC_MOBILITY]
    assert ec.community_kind(ec.router_mac("02:00:00:00:00:01")) == ec.ROUTER_MAC


def test_mac_mobility_bounds():
    assert ec.decode_mac_mobility(ec.mac_mobility(0xFFFFFFFF)).sequence == 0xFFFFFFFF
    for bad in (-1, 1 << 32):
        with pytest.raises(ValueError):
            ec.mac_mobility(bad)


def test_tunnel_names_and_mac_format():
    assert [ec.tunnel_name(t) for t in (8, 9, 10, 19, 99)] == [
        "vxlan",
        "nvgre",
        "mpls",
        "geneve",
        "99",
    ]
    assert ec.format_mac(0x0200000000EE) == "02:00:00:00:00:ee"
    assert ec.format_mac(0) == "00:00:00:00:00:00"


# ----------------------------------------------------------------------------- ESI

ESI = "00:11:22:33:44:55:66:77:88:99"


def test_esi_normalize():
    for zero in ("-", "", None, "0", ZERO_ESI):
        assert normalize_esi(zero) == ZERO_ESI
    assert normalize_esi(ESI.upper()) == ESI
    assert unpack_esi(pack_esi(ESI)) == ESI
    assert pack_esi("-") == bytes(10)


@pytest.mark.parametrize("text", ["00:11", "00:11:22:33:44:55:66:77:88:zz", "0:1:2:3:4:5:6:7:8:9"])
def test_esi_errors(text):
    with pytest.raises(ESIError):
        normalize_esi(text)


def test_esi_unpack_length():
    with pytest.raises(ESIError):
        unpack_esi(bytes(9))


# ----------------------------------------------------------------------------- keys, paths


def test_type2_key_ignores_label_and_esi():
    """RFC 7432 section 7.2: peers withdraw with label 0, so the key cannot contain it."""
    key = MacIpKey("192.0.2.2:100", 0, "02:00:00:00:00:01", "10.0.0.1")
    announced = Path(key, "10.0.1.2", "192.0.2.2", vni=100, l3vni=5000, esi=ESI)
    withdrawn_key = MacIpKey("192.0.2.2:100", 0, "02:00:00:00:00:01", "10.0.0.1")
    rib = {announced.key: announced}
    assert withdrawn_key in rib and hash(withdrawn_key) == hash(key)
    assert Path(key, "10.0.1.2", "192.0.2.2", vni=0).key == announced.key


def test_keys_differ_by_every_field():
    base = MacIpKey("192.0.2.2:100", 0, "02:00:00:00:00:01", None)
    variants = [
        base._replace(rd="192.0.2.3:100"),
        base._replace(etag=1),
        base._replace(mac="02:00:00:00:00:02"),
        base._replace(ip="10.0.0.1"),
    ]
    assert len({base, *variants}) == 5
    assert ImetKey("192.0.2.2:100", 0, "192.0.2.2") != ImetKey("192.0.2.2:100", 0, "192.0.2.3")
    # ImetKey and PrefixKey are both 3-tuples: they never collide because an origin is an
    # address and a prefix always has a '/'.
    imet, prefix = ImetKey("r:1", 0, "10.0.0.0"), PrefixKey("r:1", 0, "10.0.0.0/8")
    assert len({imet, prefix}) == 2


def test_route_type_and_describe():
    mac_only = MacIpKey("1.1.1.1:1", 0, "02:00:00:00:00:01", None)
    mac_ip = mac_only._replace(ip="10.0.0.1")
    mac_ip6 = mac_only._replace(ip="2001:db8::1")
    imet = ImetKey("1.1.1.1:1", 0, "192.0.2.1")
    prefix = PrefixKey("1.1.1.1:1", 0, "10.201.0.0/24")
    assert [route_type(k) for k in (mac_only, imet, prefix)] == [2, 3, 5]
    assert describe(mac_only) == "[2]:[0]:[48]:[02:00:00:00:00:01]"
    assert describe(mac_ip) == "[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[10.0.0.1]"
    assert describe(mac_ip6).endswith(":[128]:[2001:db8::1]")
    assert describe(imet) == "[3]:[0]:[32]:[192.0.2.1]"
    assert describe(prefix) == "[5]:[0]:[24]:[10.201.0.0]"


def test_path_defaults_and_properties():
    key = MacIpKey("1.1.1.1:1", 0, "02:00:00:00:00:01", None)
    local = Path(key, LOCAL_PEER, "192.0.2.1", 100)
    assert local.is_local and local.esi == ZERO_ESI and local.l3vni == 0
    assert (local.seq, local.sticky) == (0, False)
    remote = Path(key, "10.0.1.2", "192.0.2.2", 100, attrs=Attributes(mobility_seq=3, sticky=True))
    assert not remote.is_local and (remote.seq, remote.sticky) == (3, True)
    assert remote != local and hash(Attributes()) == hash(Attributes())
