"""The `announce evpn` / `withdraw evpn` text grammar (evpnd.bgp.exabgp.commands): what the
encoder writes matches ExaBGP-era samples, parses back in the extension, and what FRR reflected
of it decodes to the same values."""

from __future__ import annotations

from pathlib import Path as FsPath

import pytest

from evpnd.bgp.exabgp import commands
from evpnd.bgp.exabgp.commands import encode_announce, encode_withdraw
from evpnd.core.events import RouteUpdate
from evpnd.routes import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey
from tests.unit.rx_fixtures import Receiver

FIXTURES = FsPath(__file__).parent.parent / "fixtures" / "exabgp"
ESI = "00:11:22:33:44:55:66:77:88:99"
RMAC = "02:00:00:00:ee:01"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


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
    receiver = Receiver()
    reflected = [
        p
        for line in lines("frr-reflects-exabgp-announces.jsonl")
        for e in receiver.decode(line)
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


def test_commands_parse_in_the_extension_and_withdraws_match_their_announce():
    """The extension inside ExaBGP parses exactly this grammar (evpnd.bgp.exabgp.commands)."""
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


def test_ipv6_vtep_next_hop_originator_and_pmsi_round_trip():
    """An IPv6 VTEP (issue 16): type-2/3/5 commands carry it as next hop, type 3 also as
    originator and as the 16-byte PMSI endpoint (a 21-byte attribute), and parse back."""
    vtep = "2001:db8:ffff::11"
    imet = Path(ImetKey("10.0.0.11:1", 0, vtep), LOCAL, vtep, 100,
                attrs=Attributes(route_targets=("65000:100",), encap=8,
                                 pmsi=Pmsi(Pmsi.INGRESS_REPLICATION, 100, vtep)))  # fmt: skip
    text = encode_announce(imet)
    assert text.startswith(f"announce evpn multicast rd 10.0.0.11:1 ip {vtep} next-hop {vtep}")
    assert f"pmsi ingress-replication {vtep} label 100" in text
    cmd = commands.parse(text)
    assert cmd.next_hop == vtep
    packed = commands.parse_attributes(text.partition(f" next-hop {vtep}")[2]).pmsi
    assert packed[-21:] == bytes((0, 6)) + (100).to_bytes(3, "big") + bytes.fromhex(
        "20010db8ffff" + "00" * 9 + "11"
    )
    for key in (
        MacIpKey("10.0.0.11:1", 0, "02:00:00:00:aa:01", "2001:db8:100::1"),
        PrefixKey("10.0.0.11:3", 0, "10.201.0.0/24"),
    ):
        path = Path(key, LOCAL, vtep, 100, attrs=Attributes(route_targets=("65000:100",)))
        assert commands.parse(encode_announce(path)).next_hop == vtep
        assert commands.parse(encode_withdraw(path)).next_hop == vtep
