"""Ownership when mirroring kernel messages, and local learning (pure)."""

from __future__ import annotations

import socket
import struct

import pytest

from evpnd.core.desired import FDB, FLOOD, NEIGH
from evpnd.core.events import LocalMac
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.devices import DeviceMap, VniDevices
from evpnd.dataplane.learning import LocalLearner
from evpnd.dataplane.mirror import Mirror

BR, VX, PORT = 10, 11, 12
M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
STICKY = "02:aa:00:00:00:01"


@pytest.fixture
def dm() -> DeviceMap:
    dm = DeviceMap()
    dm.add(VniDevices(100, False, BR, VX, "br100", "vx100", sticky=frozenset({STICKY})))
    return dm


def fdb(ifindex, mac, flags, state=nl.NUD_REACHABLE, dst=None, deleted=False, master=0):
    return nl.Neigh(deleted, nl.AF_BRIDGE, ifindex, state, flags, mac, dst, master, 0, None)


def neigh(ip, mac, state=nl.NUD_REACHABLE, flags=0, proto=0, deleted=False):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return nl.Neigh(deleted, family, BR, state, flags, mac, ip, 0, proto, None)


def test_mirror_records_only_owned_fdb_entries(dm):
    m = Mirror()
    ext = nl.NTF_SELF | nl.NTF_EXT_LEARNED
    assert m.on_fdb(fdb(VX, M1, ext, dst="10.0.0.2"), dm) == (FDB, 100, M1)
    assert m.on_fdb(fdb(VX, M2, nl.NTF_SELF, nl.NUD_NOARP, dst="10.0.0.3"), dm) is None
    assert m.on_fdb(fdb(VX, M1, nl.NTF_MASTER | nl.NTF_EXT_LEARNED, master=BR), dm)
    assert m.on_fdb(fdb(VX, "02:11:11:11:11:11", nl.NTF_MASTER, nl.NUD_PERMANENT), dm) is None
    assert m.on_fdb(fdb(99, M2, ext, dst="10.0.0.2"), dm) is None  # not evpnd's device
    assert m.fdb == {100: {M1: "10.0.0.2"}} and m.brfdb == {100: {M1}}
    assert m.foreign_macs == {100: {M2}}
    # Deletion by someone else: reported so the reconciler can put it back
    assert m.on_fdb(fdb(VX, M1, ext, dst="10.0.0.2", deleted=True), dm) == (FDB, 100, M1)
    assert m.fdb[100] == {}


def test_mirror_flood_entries_belong_to_the_device(dm):
    m = Mirror()
    zero = fdb(VX, nl.ZERO_MAC, nl.NTF_SELF, nl.NUD_PERMANENT, dst="10.0.0.2")
    assert m.on_fdb(zero, dm) == (FLOOD, 100, "10.0.0.2")
    zero.deleted = True
    m.on_fdb(zero, dm)
    assert m.flood[100] == set()


def test_mirror_neighbours_owned_by_flag_or_protocol(dm):
    m = Mirror()
    assert m.on_neigh(neigh("10.1.0.5", M1, nl.NUD_NOARP, nl.NTF_EXT_LEARNED), dm)[1]
    assert m.on_neigh(neigh("10.1.0.6", M1, nl.NUD_NOARP, proto=nl.RTPROT_EVPND), dm) == (
        (NEIGH, 100, "10.1.0.6"), True,
    )  # fmt: skip
    # not evpnd's: the key is judged again (a conflict, or a replaceable kernel entry)
    assert m.on_neigh(neigh("10.1.0.7", M2, nl.NUD_PERMANENT), dm) == (
        (NEIGH, 100, "10.1.0.7"),
        False,
    )
    assert m.on_neigh(neigh("10.1.0.8", M2), dm) == ((NEIGH, 100, "10.1.0.8"), False)  # dynamic
    assert m.neigh[100] == {"10.1.0.5": M1, "10.1.0.6": M1}
    assert m.foreign_ips[100] == {"10.1.0.7"}
    assert m.dynamic_ips[100] == {"10.1.0.8"}  # the kernel's own: the only ones evpnd replaces


def test_takeover_by_an_access_port_drops_the_bridge_half(dm):
    m = Mirror()
    m.set_fdb(100, M1, "10.0.0.2")
    assert m.moved_to_port(100, M1) == (FDB, 100, M1)
    assert m.brfdb[100] == set() and m.fdb[100] == {M1: "10.0.0.2"}


def test_learning_reports_dynamic_and_sticky_macs(dm):
    ll = LocalLearner()
    port = nl.NTF_MASTER
    assert ll.on_port_fdb(fdb(PORT, M1, port, master=BR), 100, dm) == [LocalMac(100, M1)]
    assert ll.on_port_fdb(fdb(PORT, M1, port, master=BR), 100, dm) == []  # no news
    static = fdb(PORT, M2, port, nl.NUD_NOARP, master=BR)
    assert ll.on_port_fdb(static, 100, dm) == [LocalMac(100, M2, sticky=True)]
    listed = fdb(PORT, STICKY, port, master=BR)
    assert ll.on_port_fdb(listed, 100, dm) == [LocalMac(100, STICKY, sticky=True)]


def test_learning_ignores_own_addresses_foreign_and_multicast(dm):
    ll = LocalLearner()
    assert ll.on_port_fdb(fdb(PORT, M1, nl.NTF_MASTER, nl.NUD_PERMANENT), 100, dm) == []
    assert ll.on_port_fdb(fdb(PORT, M1, nl.NTF_MASTER | nl.NTF_EXT_LEARNED), 100, dm) == []
    assert ll.on_port_fdb(fdb(PORT, M1, nl.NTF_SELF), 100, dm) == []
    assert ll.on_port_fdb(fdb(PORT, "01:00:5e:00:00:01", nl.NTF_MASTER), 100, dm) == []


def test_neighbour_waits_for_its_mac_to_be_local(dm):
    ll = LocalLearner()
    assert ll.on_neigh(neigh("10.1.0.5", M1), 100) == []  # MAC not local (yet)
    assert ll.on_neigh(neigh("fe80::1", M1), 100) == []  # link-local: never advertised
    events = ll.on_port_fdb(fdb(PORT, M1, nl.NTF_MASTER), 100, dm)
    assert events == [LocalMac(100, M1), LocalMac(100, M1, "10.1.0.5")]
    assert ll.on_neigh(neigh("10.1.0.5", M1, nl.NUD_STALE), 100) == []
    # ageing of the MAC withdraws the MAC and its IPs
    gone = ll.on_port_fdb(fdb(PORT, M1, nl.NTF_MASTER, deleted=True), 100, dm)
    assert gone == [
        LocalMac(100, M1, None, present=False), LocalMac(100, M1, "10.1.0.5", present=False),
    ]  # fmt: skip


def test_neighbour_deleted_failed_or_moved(dm):
    ll = LocalLearner()
    ll.on_port_fdb(fdb(PORT, M1, nl.NTF_MASTER), 100, dm)
    ll.on_port_fdb(fdb(PORT, M2, nl.NTF_MASTER), 100, dm)
    assert ll.on_neigh(neigh("10.1.0.5", M1), 100) == [LocalMac(100, M1, "10.1.0.5")]
    assert ll.on_neigh(neigh("10.1.0.5", M2), 100) == [
        LocalMac(100, M1, "10.1.0.5", present=False), LocalMac(100, M2, "10.1.0.5"),
    ]  # fmt: skip
    assert ll.on_neigh(neigh("10.1.0.5", M2, nl.NUD_FAILED), 100) == [
        LocalMac(100, M2, "10.1.0.5", present=False)
    ]
    assert ll.on_neigh(neigh("10.1.0.5", None, deleted=True), 100) == []


def test_encoder_matches_reference_and_parses_back():
    enc = nl.FdbEncoder()
    flags = nl.NTF_SELF | nl.NTF_EXT_LEARNED
    a = enc.fdb(VX, M1, "2001:db8::2", flags, nl.NUD_REACHABLE)
    assert a == nl.fdb_body(VX, M1, "2001:db8::2", flags, nl.NUD_REACHABLE)
    n = nl.parse_neigh(nl.RTM_DELNEIGH, a, 0, len(a))
    assert (n.deleted, n.mac, n.dst, n.flags, n.ifindex) == (True, M1, "2001:db8::2", flags, VX)
    assert not n.extra


def test_iter_messages_stops_on_garbage():
    msg = nl._HDR.pack(20, nl.RTM_NEWNEIGH, 0, 7, 0) + b"\0" * 4
    assert [m[:3] for m in nl.iter_messages(msg + b"\x03\0\0\0", len(msg) + 4)] == [
        (nl.RTM_NEWNEIGH, 0, 7)
    ]
    assert list(nl.iter_messages(nl._HDR.pack(4, 1, 0, 0, 0), 16)) == []


def run_bpf(program, packet: bytes) -> int:
    """A classic-BPF interpreter for the few instructions the monitor filter uses."""
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x30:  # ldb [k]
            acc = packet[k]
        elif code == 0x80:  # ld #len
            acc = len(packet)
        elif code == 0x05:  # ja k
            pc += k
        elif code == 0x15:  # jeq #k
            pc += jt if acc == k else jf
        elif code == 0x25:  # jgt #k
            pc += jt if acc > k else jf
        elif code == 0x45:  # jset #k
            pc += jt if acc & k else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"unexpected BPF instruction {code:#x}")


def message(mtype: int, body: bytes) -> bytes:
    return nl._HDR.pack(16 + len(body), mtype, 0, 0, 0) + body


def test_monitor_filter_drops_only_the_echo_of_own_adds():
    prog = nl._BPF_DROP_OWN_ADDS
    ext = nl.fdb_body(VX, M1, "10.0.0.2", nl.NTF_SELF | nl.NTF_EXT_LEARNED, nl.NUD_REACHABLE)
    learned = nl.fdb_body(PORT, M1, None, 0, nl.NUD_REACHABLE)
    assert run_bpf(prog, message(nl.RTM_NEWNEIGH, ext)) == 0  # evpnd's own add
    assert run_bpf(prog, message(nl.RTM_DELNEIGH, ext)) != 0  # drift: must be seen
    assert run_bpf(prog, message(nl.RTM_NEWNEIGH, learned)) != 0  # local learning
    ours = nl.route_body(200, "10.5.0.0/24", "10.0.0.2", 3)
    theirs = ours[:5] + bytes([186]) + ours[6:]  # same route, protocol bgp (FRR)
    assert run_bpf(prog, message(nl.RTM_NEWROUTE, ours)) == 0
    assert run_bpf(prog, message(nl.RTM_DELROUTE, ours)) != 0
    assert run_bpf(prog, message(nl.RTM_NEWROUTE, theirs)) != 0
    assert run_bpf(prog, message(nl.RTM_NEWLINK, b"\0" * 16)) != 0


def test_monitor_filter_drops_the_generic_fdb_duplicate_of_older_kernels():
    """rtnl_fdb_notify's duplicate (flags exactly NTF_SELF, no NDA_DST: Debian 12's 6.1 sends
    one per FDB write) goes, adds and deletes; the vxlan driver's own notification of a
    hand-made entry (NTF_SELF, with NDA_DST) and local learning still come through."""
    prog = nl._BPF_DROP_OWN_ADDS
    generic = nl.fdb_body(VX, M1, None, nl.NTF_SELF, nl.NUD_REACHABLE)
    with_vlan = generic + nl._attr(nl.NDA_VLAN, struct.pack("=H", 10))
    assert len(message(nl.RTM_NEWNEIGH, with_vlan)) == nl.GENERIC_FDB_NOTIFY_MAX
    for body in (generic, with_vlan):
        assert run_bpf(prog, message(nl.RTM_NEWNEIGH, body)) == 0
        assert run_bpf(prog, message(nl.RTM_DELNEIGH, body)) == 0
    hand = nl.fdb_body(VX, M1, "10.0.0.9", nl.NTF_SELF, nl.NUD_PERMANENT)
    hand += nl._attr(8, b"\0" * 16)  # NDA_CACHEINFO, as the driver sends it: 68 bytes
    assert run_bpf(prog, message(nl.RTM_NEWNEIGH, hand)) != 0
    assert run_bpf(prog, message(nl.RTM_DELNEIGH, hand)) != 0
    learned = nl.fdb_body(PORT, M1, None, 0, nl.NUD_REACHABLE) + nl._attr(
        nl.NDA_MASTER, b"\1\0\0\0"
    )
    assert run_bpf(prog, message(nl.RTM_NEWNEIGH, learned)) != 0
    v4 = nl.neigh_body(PORT, "10.1.0.5", M1, flags=0)
    v4 = bytes([socket.AF_INET]) + v4[1:10] + bytes([nl.NTF_SELF]) + v4[11:]  # not AF_BRIDGE
    assert run_bpf(prog, message(nl.RTM_NEWNEIGH, v4[:24])) != 0


def test_redump_withdraws_what_vanished_unseen(dm):
    ll = LocalLearner()
    ll.on_port_fdb(fdb(PORT, M1, nl.NTF_MASTER), 100, dm)
    ll.on_port_fdb(fdb(PORT, M2, nl.NTF_MASTER), 100, dm)
    ll.on_neigh(neigh("10.1.0.5", M1), 100)
    ll.on_neigh(neigh("10.1.0.6", M2), 100)
    events = ll.vanished(100, {M2}, {"10.1.0.6"}, dm)
    assert events == [
        LocalMac(100, M1, "10.1.0.5", present=False), LocalMac(100, M1, None, present=False),
    ]  # fmt: skip
    assert ll.vanished(100, {M2}, {"10.1.0.6"}, dm) == []


def test_link_dump_reads_the_master_of_each_link():
    ifi = struct.pack("=BxHiII", 0, 1, 42, 0, 0)
    name = nl._attr(nl.IFLA_IFNAME, b"p1\0")
    enslaved = ifi + name + nl._attr(nl.IFLA_MASTER, struct.pack("=I", 7))
    assert nl.link_master(enslaved, 0, len(enslaved)) == (42, 7)
    assert nl.link_master(ifi + name, 0, len(ifi + name)) == (42, 0)
    request = nl.link_dump_request()  # an all-zero ifinfomsg, statistics left out
    assert request[:16] == bytes(16) and len(request) == 24
    assert struct.unpack("=HHI", request[16:]) == (8, nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS)


def test_address_dump_reads_local_else_address_without_decoding():
    """RTM_NEWADDR as the start-time VTEP check reads it: IFA_LOCAL wins (a point-to-point
    address has both), IFA_ADDRESS otherwise, of the message's family."""
    v4 = struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 3)
    peer = nl._attr(nl.IFA_ADDRESS, socket.inet_aton("10.0.0.2"))
    local = nl._attr(nl.IFA_LOCAL, socket.inet_aton("10.0.0.1"))
    msg = v4 + peer + local
    assert nl.addr_of(msg, 0, len(msg)) == socket.inet_aton("10.0.0.1")
    v6 = struct.pack("=BBBBI", socket.AF_INET6, 64, 0, 0, 3)
    msg = v6 + nl._attr(nl.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "2001:db8::1"))
    assert nl.addr_of(msg, 0, len(msg)) == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert nl.addr_of(v4, 0, len(v4)) is None
    assert nl.addr_dump_request(socket.AF_INET6)[0] == socket.AF_INET6


def test_a_macs_neighbours_follow_it_in_and_out(dm):
    ll = LocalLearner()
    ll.on_neigh(neigh("10.1.0.5", M1), 100)  # neighbours seen before their MAC is local
    ll.on_neigh(neigh("10.1.0.6", M1), 100)
    ll.on_neigh(neigh("10.1.0.7", M2), 100)
    port = nl.NTF_MASTER
    assert ll.on_port_fdb(fdb(PORT, M1, port, master=BR), 100, dm) == [
        LocalMac(100, M1),
        LocalMac(100, M1, "10.1.0.5"),
        LocalMac(100, M1, "10.1.0.6"),
    ]
    ll.on_neigh(neigh("10.1.0.6", M2), 100)  # the IP moved to another MAC: withdrawn from M1
    ll.on_neigh(neigh("10.1.0.5", M1, deleted=True), 100)
    assert ll.on_port_fdb(fdb(PORT, M1, port, master=BR, deleted=True), 100, dm) == [
        LocalMac(100, M1, present=False)
    ]
    assert ll.mac_ips[100] == {M2: {"10.1.0.6", "10.1.0.7"}}


def test_learning_many_macs_with_many_neighbours_costs_each_mac_its_own_neighbours(dm):
    """A MAC's neighbours are looked up, not searched for among the VNI's: learning N MACs
    with a neighbour each was N x N (a 100k-host VNI: 10^10 steps). The step count is what is
    measured: every MAC must see only its own neighbour."""
    ll = LocalLearner()
    n = 20_000
    macs = [f"02:03:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(n)]
    for i, mac in enumerate(macs):
        ll.on_neigh(neigh(f"10.2.{i >> 8}.{i & 255}", mac), 100)

    class Counting(dict):  # counts how many neighbour entries the learner looks at
        seen = 0

        def items(self):
            for item in super().items():
                Counting.seen += 1
                yield item

        def __iter__(self):
            for key in super().__iter__():
                Counting.seen += 1
                yield key

    ll.ips[100] = Counting(ll.ips[100])
    events = [e for mac in macs for e in ll.port_mac(100, mac, False, False, dm)]
    assert len(events) == 2 * n  # the MAC and its neighbour, each
    assert Counting.seen == 0  # was n * n / 2 on average
    gone = [e for mac in macs for e in ll.port_mac(100, mac, True, False, dm)]
    assert len(gone) == 2 * n and Counting.seen == 0
