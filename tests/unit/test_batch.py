"""The packed batch format carries exactly what the `announce evpn` text grammar carries."""

from __future__ import annotations

import pytest

from evpnd.bgp import batch, wire
from evpnd.bgp.exabgp import commands
from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey

A = Attributes(route_targets=("65000:100",), encap=8)
PATHS = [
    Path(
        MacIpKey("192.0.2.1:1", 0, "02:00:00:00:aa:01", None), LOCAL_PEER, "192.0.2.1", 100, attrs=A
    ),  # fmt: skip
    Path(
        MacIpKey("192.0.2.1:1", 5, "02:00:00:00:aa:02", "10.0.0.2"),
        LOCAL_PEER,
        "192.0.2.1",
        100,
        5000,
        "00:11:22:33:44:55:66:77:88:99",
        A._replace(mobility_seq=3, has_mobility=True, sticky=True, default_gw=True),
    ),  # fmt: skip
    Path(
        ImetKey("192.0.2.1:1", 0, "192.0.2.1"),
        LOCAL_PEER,
        "192.0.2.1",
        100,
        attrs=A._replace(pmsi=Pmsi(6, 100, "192.0.2.1")),
    ),  # fmt: skip
    Path(
        PrefixKey("65000:5", 0, "2001:db8:201::/64"),
        LOCAL_PEER,
        "192.0.2.1",
        5000,
        gateway="2001:db8:201::1",
        attrs=A._replace(router_mac="02:00:00:00:ee:01"),
    ),  # fmt: skip
]


@pytest.mark.parametrize("path", PATHS)
def test_packed_equals_text(path):
    parsed = commands.parse(commands.encode_announce(path))
    (group,) = batch.decode(batch.encode([(True, path)]))
    assert group.announce and group.next_hop == path.next_hop
    (nlri,) = group.nlris
    code, data, key = batch.split_nlri(bytes.fromhex(nlri))
    assert (code, data, key) == (parsed.code, parsed.data, parsed.key)
    a = parsed.attrs
    assert bytes.fromhex(group.attributes) == a.origin + a.communities + a.pmsi


def test_withdraw_key_ignores_label_and_esi():
    path = PATHS[1]
    other = path._replace(vni=0, l3vni=0, esi="00:00:00:00:00:00:00:00:00:00")
    keys = [batch.split_nlri(batch.pack_path_nlri(p))[2] for p in (path, other)]
    assert keys[0] == keys[1]


def test_groups_follow_attributes_and_actions():
    twin = PATHS[0]._replace(key=PATHS[0].key._replace(mac="02:00:00:00:aa:09"))
    ops = [(True, PATHS[0]), (True, twin), (False, PATHS[1]), (True, PATHS[2])]
    groups = list(batch.decode(batch.encode(ops)))
    assert [(g.announce, len(g.nlris)) for g in groups] == [(True, 2), (False, 1), (True, 1)]


def test_line_and_unpackable_paths():
    errors: list[str] = []
    bad = PATHS[0]._replace(key=PATHS[0].key._replace(mac="zz"))
    text = batch.line("t7", "*", [(True, bad), (True, PATHS[0])], errors)
    assert text.startswith("evpnd routes t7 * ; A 192.0.2.1 ") and text.endswith("\n")
    assert len(errors) == 1


@pytest.mark.parametrize("hexed", ["02", "0203000000", "0421" + "00" * 33, "0221" + "00" * 33])
def test_split_rejects_bad_layouts(hexed):
    with pytest.raises(wire.WireError):
        batch.split_nlri(bytes.fromhex(hexed))


T2_VARIANTS = [
    PATHS[0],
    PATHS[1],
    PATHS[0]._replace(key=PATHS[0].key._replace(mac="02:AB:CD:00:00:01")),  # upper case
    PATHS[1]._replace(key=PATHS[1].key._replace(ip="2001:db8::7"), l3vni=0),
    PATHS[1]._replace(key=PATHS[1].key._replace(rd="65000:7", etag=4094), vni=0xFFFFFF),
    *PATHS[2:],
]


@pytest.mark.parametrize("path", T2_VARIANTS)
def test_nlri_hex_from_cached_parts_is_the_packed_nlri(path):
    batch._t2_cache.clear()
    for _ in range(2):  # built, then from the cache
        assert batch.nlri_hex(path) == batch.pack_path_nlri(path).hex()


@pytest.mark.parametrize(
    "key_change, path_change",
    [({"mac": "zz"}, {}), ({"mac": "02:00:00:00:aa"}, {}), ({"ip": "10.0.0"}, {}),
     ({}, {"vni": 1 << 24}), ({}, {"l3vni": -1})],
)  # fmt: skip
def test_nlri_hex_rejects_what_pack_path_nlri_rejects(key_change, path_change):
    path = PATHS[1]._replace(key=PATHS[1].key._replace(**key_change), **path_change)
    with pytest.raises((ValueError, OverflowError)):
        batch.pack_path_nlri(path)
    with pytest.raises((ValueError, OverflowError)):
        batch.nlri_hex(path)
