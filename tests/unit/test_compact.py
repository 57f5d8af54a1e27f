"""The raw receive channel decodes UPDATEs into exactly the events ExaBGP's JSON + codec give."""

from __future__ import annotations

import pytest

from evpnd.bgp import codec, compact
from evpnd.core.events import EndOfRib, RouteUpdate
from evpnd.routes.evpn import LOCAL_PEER, Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from tests.unit.exabgp_helpers import negotiated_and_neighbor, outgoing_rib, updates_for

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


def _both(message: bytes, negotiated, neighbor):
    """The events of the same UPDATE through ExaBGP's JSON (+ codec) and the raw channel."""
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update import Update
    from exabgp.reactor.api.response import Response
    from exabgp.version import json as json_version

    update = Update.unpack_message(message[19:], Direction.IN, negotiated)
    line = Response.JSON(json_version).update(neighbor, "receive", update, None, "", "")
    raw = f"evpnd-rx 10.0.1.2 1 {message[19:].hex()}"
    return codec.decode_line(line), compact.decode_line(raw)


@pytest.fixture(scope="module")
def session():
    return negotiated_and_neighbor()


@pytest.mark.parametrize("group", range(4))
def test_announces_match_the_json_path(session, group):
    negotiated, neighbor = session
    for message in updates_for(_paths()[group], negotiated):
        via_json, via_raw = _both(message, negotiated, neighbor)
        assert via_raw == via_json
        assert via_raw and isinstance(via_raw[0], RouteUpdate) and via_raw[0].announced


def test_label2_is_read_from_the_nlri(session):
    negotiated, _ = session
    (message,) = updates_for(_paths()[1], negotiated)
    (event,) = compact.decode_line(f"evpnd-rx 10.0.1.2 1 {message[19:].hex()}")
    assert [p.l3vni for p in event.announced] == [5000, 0]
    assert event.announced[0].attrs.as_path == (65001,)


def test_ipv6_next_hop(session):
    """ExaBGP's own decoder refuses an IPv6 next hop for l2vpn/evpn (NOTIFICATION); raw is fine."""
    negotiated, _ = session
    (message,) = updates_for(_paths()[4], negotiated)
    (event,) = compact.decode_update("10.0.1.2", message[19:])
    assert event.announced[0].next_hop == "2001:db8::1"


@pytest.mark.parametrize("group", range(5))
def test_withdraws_match_the_json_path(session, group):
    negotiated, neighbor = session
    rib = outgoing_rib()
    updates_for(_paths()[group], negotiated, rib=rib)
    for message in updates_for(_paths()[group], negotiated, announce=False, rib=rib):
        via_json, via_raw = _both(message, negotiated, neighbor)
        assert via_raw == via_json
        assert via_raw[0].withdrawn and not via_raw[0].announced


def test_end_of_rib():
    body = bytes.fromhex("00000006800f03001946")
    assert compact.decode_update("10.0.1.2", body) == [EndOfRib("10.0.1.2")]
    extended = bytes.fromhex("00000007900f0003001946")  # FRR sets extended length
    assert compact.decode_update("10.0.1.2", extended) == [EndOfRib("10.0.1.2")]


def test_two_byte_as_path():
    negotiated, _ = negotiated_and_neighbor(asn4=False)
    (message,) = updates_for(_paths()[2], negotiated)
    (event,) = compact.decode_update("10.0.1.2", message[19:], asn4=False)
    assert event.announced[0].attrs.as_path == (65001,)


def _update(attrs: bytes) -> bytes:
    return b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs


def _mp_reach(nlri: bytes) -> bytes:
    value = b"\x00\x19\x46\x04" + bytes([192, 0, 2, 1]) + b"\x00" + nlri
    return b"\x90\x0e" + len(value).to_bytes(2, "big") + value


GOOD = bytes.fromhex("02210001c0000201000a" + "00" * 10 + "00000000300200000000aa00000064")


def test_malformed_updates_are_counted_not_raised():
    before = compact.stats()
    assert compact.decode_update("p", b"\x00") == []
    assert compact.decode_update("p", b"\x00\x05\x00") == []
    assert compact.decode_line("evpnd-rx p 1 zz") == []
    assert compact.decode_line("garbage") == []
    after = compact.stats()
    assert after["malformed_updates"] - before["malformed_updates"] == 4


def test_one_bad_nlri_is_skipped_and_the_rest_kept():
    bad = bytes.fromhex("0205") + b"\x00" * 5  # a type-2 of 5 bytes
    (event,) = compact.decode_update("p", _update(b"\x40\x01\x01\x00" + _mp_reach(bad + GOOD)))
    assert [p.key.mac for p in event.announced] == ["02:00:00:00:00:aa"]


def test_unsupported_route_types_are_counted():
    ead = b"\x01\x19" + b"\x00" * 25  # type 1 (Ethernet A-D): not handled yet
    before = compact.stats()["unsupported_nlri"]
    (event,) = compact.decode_update("p", _update(b"\x40\x01\x01\x00" + _mp_reach(ead + GOOD)))
    assert len(event.announced) == 1
    assert compact.stats()["unsupported_nlri"] == before + 1


def test_bad_attribute_treats_as_withdraw():
    """RFC 7606 2: a malformed attribute withdraws the UPDATE's routes instead of the session."""
    bad_origin = b"\x40\x01\x01\x07"
    (event,) = compact.decode_update("p", _update(bad_origin + _mp_reach(GOOD)))
    assert event.announced == [] and [k.mac for k in event.withdrawn] == ["02:00:00:00:00:aa"]


def test_truncated_attribute_field_is_dropped():
    assert compact.decode_update("p", _update(b"\x40\x01\x05\x00")) == []
