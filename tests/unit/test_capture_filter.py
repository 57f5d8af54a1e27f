"""The capture filter, compiled by libpcap and run by its BPF interpreter over packets built
here: the same program the kernel runs on the socket."""

from __future__ import annotations

import ipaddress

import pcapy
import pytest

from evpnd.capture.filter import FilterError, Spec, build, parse_ip, parse_mac
from tests.unit import capture_packets as pk

H1, H2, H3 = "02:aa:00:00:01:01", "02:aa:00:00:02:02", "02:aa:00:00:02:03"


def matches(spec: Spec, frame: bytes, linktype: int = pcapy.DLT_EN10MB) -> bool:
    return bool(pcapy.compile(linktype, 65535, build(spec), 1, 0).filter(frame))


def ping(vni=100, src_mac=H1, dst_mac=H2, src="10.100.0.1", dst="10.100.0.2", **kw) -> bytes:
    return pk.vxlan(pk.inner_icmp(src_mac, dst_mac, src, dst), vni, **kw)


@pytest.mark.parametrize("family", [4, None])
def test_vxlan_vni_selects_only_its_vni(family):
    spec = Spec(vni=100, family=family)
    assert matches(spec, ping(100))
    assert not matches(spec, ping(200))
    assert not matches(spec, ping(100 + (1 << 16)))  # differs only in the top VNI byte
    assert not matches(spec, ping(100 | 0x10000))


def test_vxlan_needs_port_4789():
    frame = ping(100)
    geneve_frame = pk.geneve(pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2"), 100)
    assert matches(Spec(vni=100), frame)
    assert not matches(Spec(vni=100), geneve_frame)
    assert matches(Spec(encap="geneve", vni=100), geneve_frame)
    assert not matches(Spec(encap="geneve", vni=100), frame)


def test_largest_vni():
    assert matches(Spec(vni=0xFFFFFF), ping(0xFFFFFF))
    assert not matches(Spec(vni=0xFFFFFE), ping(0xFFFFFF))


def test_inner_mac_matches_source_or_destination():
    spec = Spec(vni=100, mac=parse_mac(H2))
    assert matches(spec, ping(src_mac=H1, dst_mac=H2))
    assert matches(spec, ping(src_mac=H2, dst_mac=H1))
    assert not matches(spec, ping(src_mac=H1, dst_mac=H3))
    # the same MAC in another VNI is not it
    assert not matches(spec, ping(vni=200, src_mac=H2, dst_mac=H1))


def test_inner_ip_matches_ipv4_and_arp():
    spec = Spec(vni=100, ip=parse_ip("10.100.0.2"))
    assert matches(spec, ping(src="10.100.0.2", dst="10.100.0.1"))
    assert matches(spec, ping(src="10.100.0.1", dst="10.100.0.2"))
    assert not matches(spec, ping(src="10.100.0.1", dst="10.100.0.3"))
    assert matches(spec, pk.vxlan(pk.inner_arp(H1, "10.100.0.1", "10.100.0.2"), 100))
    assert matches(spec, pk.vxlan(pk.inner_arp(H2, "10.100.0.2", "10.100.0.1", True, H1), 100))
    assert not matches(spec, pk.vxlan(pk.inner_arp(H1, "10.100.0.1", "10.100.0.3"), 100))


def test_inner_ipv6():
    spec = Spec(vni=100, ip=parse_ip("fd00::2"))
    assert matches(spec, pk.vxlan(pk.inner_icmp6(H1, H2, "fd00::1", "fd00::2"), 100))
    assert not matches(spec, pk.vxlan(pk.inner_icmp6(H1, H2, "fd00::1", "fd00::3"), 100))


def test_vtep_matches_outer_source_or_destination():
    spec = Spec(vni=100, vtep=ipaddress.ip_address("10.0.0.2"))
    inner = pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2")
    assert matches(spec, pk.vxlan(inner, 100, src="10.0.0.1", dst="10.0.0.2"))
    assert matches(spec, pk.vxlan(inner, 100, src="10.0.0.2", dst="10.0.0.1"))
    assert not matches(spec, pk.vxlan(inner, 100, src="10.0.0.1", dst="10.0.0.3"))
    assert not matches(spec, pk.vxlan(inner, 200, src="10.0.0.1", dst="10.0.0.2"))


def test_ipv6_underlay():
    inner = pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2")
    frame = pk.vxlan(inner, 100, src="fd00::1", dst="fd00::2")
    assert matches(Spec(vni=100), frame)
    assert matches(Spec(vni=100, family=6, mac=parse_mac(H2), ip=parse_ip("10.100.0.1")), frame)
    assert not matches(Spec(vni=101), frame)
    assert not matches(Spec(vni=100, family=4), frame)


def test_geneve_inner_filters_need_no_options_but_vni_works_with_them():
    inner = pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2")
    plain = pk.geneve(inner, 100)
    with_opts = pk.geneve(inner, 100, options=b"\x01\x02\x03\x01abcd")
    assert matches(Spec(encap="geneve", vni=100, mac=parse_mac(H1)), plain)
    assert matches(Spec(encap="geneve", vni=100), with_opts)
    assert not matches(Spec(encap="geneve", vni=100, mac=parse_mac(H3)), plain)


def test_gre_key_and_inner():
    inner = pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2")
    frame = pk.gre(inner, 100)
    assert matches(Spec(encap="gre", vni=100), frame)
    assert not matches(Spec(encap="gre", vni=101), frame)
    assert matches(Spec(encap="gre", vni=100, mac=parse_mac(H2), ip=parse_ip("10.100.0.2")), frame)
    assert not matches(Spec(encap="gre", vni=100, ip=parse_ip("10.100.0.9")), frame)
    # plain (L3) GRE: the IP follows the GRE header
    l3 = pk.gre(inner[14:], 100, proto=0x0800)
    assert matches(Spec(encap="gre", vni=100, ip=parse_ip("10.100.0.1")), l3)
    assert not matches(Spec(encap="gre", vni=100, ip=parse_ip("10.100.0.9")), l3)


def test_cooked_any_interface_linktype():
    frame = ping(100)
    # Linux cooked header (16 bytes) instead of Ethernet, as on the "any" device
    sll = b"\x00\x00\x00\x01\x00\x06" + frame[6:12] + b"\x00\x00" + frame[12:14] + frame[14:]
    assert matches(Spec(vni=100), sll, pcapy.DLT_LINUX_SLL)
    assert not matches(Spec(vni=200), sll, pcapy.DLT_LINUX_SLL)


def test_bad_input_is_one_line():
    with pytest.raises(FilterError, match="not a MAC"):
        parse_mac("02:aa:00")
    with pytest.raises(FilterError, match="not an IP"):
        parse_ip("10.0.0.300")
    with pytest.raises(FilterError, match="out of range"):
        build(Spec(vni=1 << 24))
    with pytest.raises(FilterError, match="not IPv6"):
        build(Spec(vni=1, family=6, vtep=ipaddress.ip_address("10.0.0.1")))
    assert parse_mac("02-AA-00-00-01-01") == bytes.fromhex("02aa00000101")
