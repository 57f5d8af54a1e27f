"""vxlan_mode single reads back what it would write (issue 17: a restart over an unchanged
kernel writes nothing): the VXLAN device's VNI filter (RTM_GETTUNNEL) and its bridge port flags
(IFLA_PROTINFO of the AF_BRIDGE link dump), parsed from bytes Linux 6.18 sent.

Captured in a scratch namespace: `vxlan0` (ifindex 2) made with single_msgs.vxlan_link, VNIs
100, 101, 102, 200 and 5000 added with single_msgs.vni_filter, then dumped; for the flags,
vxlan0 enslaved to a bridge `br0` (ifindex 3) and set with single_msgs.bridge_port(2, 0, 1, 1).
The netlink header (16 bytes) is left out, as Requester.dump does."""

from __future__ import annotations

from evpnd.dataplane import single_msgs as msg

# RTM_NEWTUNNEL of the dump: tunnel_msg {AF_BRIDGE, ifindex 2}, then one VXLAN_VNIFILTER_ENTRY
# (nested) per range: {START 100, END 102}, {START 200}, {START 5000}
TUNNEL_DUMP = bytes.fromhex(
    "0700000002000000"
    "14000180" "0800010064000000" "0800020066000000"
    "0c000180" "08000100c8000000"
    "0c000180" "0800010088130000"
)  # fmt: skip

# AF_BRIDGE RTM_NEWLINK (dump with RTEXT_FILTER_BRVLAN) of vxlan0, a port of br0
PORT_LINK = bytes.fromhex(
    "070001000200000002100000000000000b00030076786c616e30000008000a000300000008000400aa050000"
    "05001000020000000a00010086050dfaa6d1000050010c800500010000000000060002002000000008000300"
    "6400000005000400000000000500050000000000050006000000000005000700000000000500"
    "1c00000000000500080000000000050009000100000005001b000100000005001e000100000005000a000000"
    "000005000c00000000000c000d00800086050dfaa6d10c000e00800086050dfaa6d106000f00018000000600"
    "100000000000060011000180000006001200010000000500130000000000050014000000000005001d000100"
    "000006001f000000000005002000010000000500230000000000050024000000000005002100000000000500"
    "270000000000050028000000000005002b00000000000c00150000000000000000000c001600000000000000"
    "00000c0017000000000000000000050019000100000008002500000200000800260000000000080029000000"
    "000008002a0000000000"
)
# ... and of br0 itself: no IFLA_PROTINFO (it is no port)
BRIDGE_LINK = bytes.fromhex(
    "07000100030000000210000000000000080003006272300008000a000300000008000400aa05000005001000"
    "020000000a00010086050dfaa6d10000"
)


def test_vni_filter_dump_request_is_iproute2s():
    # `bridge vni show dev vxlan0` (ifindex 2), as strace shows iproute2 6.1 sending it
    assert msg.vni_filter_dump_request(2) == bytes.fromhex("0700000002000000")
    assert msg.RTM_GETTUNNEL == 122


def test_vni_filter_read_back_as_ranges():
    index, ranges = msg.parse_vni_filter(TUNNEL_DUMP, 0, len(TUNNEL_DUMP))
    assert (index, ranges) == (2, [(100, 102), (200, 200), (5000, 5000)])
    have = msg.VniRanges(ranges)
    assert [v for v in (99, 100, 101, 102, 103, 199, 200, 201, 5000, 5001) if v in have] == [
        100, 101, 102, 200, 5000,
    ]  # fmt: skip


def test_vni_ranges_are_not_expanded():
    have = msg.VniRanges([(5000, 16_000_000), (10, 10)])
    assert 10 in have and 9 not in have and 11 not in have
    assert 5000 in have and 12_345_678 in have and 16_000_001 not in have
    assert 1 not in msg.VniRanges([])


def test_vni_filter_of_a_device_with_none():
    empty = msg.vni_filter_dump_request(7)
    assert msg.parse_vni_filter(empty, 0, len(empty)) == (7, [])


def test_port_flags_read_back_from_the_bridge_vlan_dump():
    flags = msg.parse_port_flags(PORT_LINK, 0, len(PORT_LINK))
    assert flags == {
        msg.IFLA_BRPORT_LEARNING: 0,
        msg.IFLA_BRPORT_NEIGH_SUPPRESS: 1,
        msg.IFLA_BRPORT_VLAN_TUNNEL: 1,
    }
    assert not msg.port_flags_differ(flags)
    # the same dump message still gives the VLANs (none on this kernel) as before
    assert msg.parse_port_vlans(PORT_LINK, 0, len(PORT_LINK)) == (2, {}, {})
    assert msg.parse_port_flags(BRIDGE_LINK, 0, len(BRIDGE_LINK)) == {}


def test_port_flags_differ_when_any_is_off_or_unknown():
    assert msg.port_flags_differ({})  # not a port (yet), or a kernel without the attributes
    good = dict(msg.PORT_FLAGS)
    for kind in good:
        for wrong in (0, 1):
            if wrong != good[kind]:
                assert msg.port_flags_differ({**good, kind: wrong})
    # a person's learning on, found in the real dump with one byte flipped
    learning_on = bytearray(PORT_LINK)
    at = PORT_LINK.index(bytes.fromhex("0500080000"))  # IFLA_BRPORT_LEARNING, u8 0
    learning_on[at + 4] = 1
    flags = msg.parse_port_flags(learning_on, 0, len(learning_on))
    assert flags[msg.IFLA_BRPORT_LEARNING] == 1 and msg.port_flags_differ(flags)
