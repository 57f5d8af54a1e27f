"""vxlan_mode single's messages (single_msgs.py) against the bytes iproute2 6.1 (Debian 12)
sends for the same commands, and the single device's entries through the pure dataplane: the
managers' FDB/flood bodies, the mirror and local learning finding the VNI by VLAN or VNI.

The iproute2 bytes were captured with `strace -xx -e trace=sendmsg` around each command; the
netlink header (16 bytes) is left out, it is the Requester's."""

from __future__ import annotations

import struct

from evpnd.core.desired import FDB, FLOOD
from evpnd.core.events import LocalMac
from evpnd.dataplane import netlink as nl
from evpnd.dataplane import single_msgs as msg
from evpnd.dataplane.learning import LocalLearner
from evpnd.dataplane.managers.base import PlanStats
from evpnd.dataplane.managers.fdb import FdbManager
from evpnd.dataplane.managers.flood import FloodManager
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DesiredState, DeviceMap, VniDevices

IFI_BRIDGE = "07000000{ifindex:02x}000000" + "00" * 8  # ifinfomsg: AF_BRIDGE, index, 0, 0


def ifi(ifindex: int) -> bytes:
    return bytes.fromhex(IFI_BRIDGE.format(ifindex=ifindex))


def test_bridge_vni_add_is_iproute2s():
    # bridge vni add dev vx vni 100  (vx = ifindex 2): RTM_NEWTUNNEL
    want = bytes.fromhex("07000000 02000000 0c000180 08000100 64000000".replace(" ", ""))
    assert msg.vni_filter(2, 100) == want
    assert msg.RTM_NEWTUNNEL == 120


def test_bridge_vlan_add_and_pvid_untagged_are_iproute2s():
    # bridge vlan add dev p1 vid 10 [pvid untagged]  (p1 = ifindex 3): RTM_SETLINK
    assert msg.port_vlan(3, 10) == ifi(3) + bytes.fromhex("0c001a000800020000000a00")
    access = msg.BRIDGE_VLAN_INFO_PVID | msg.BRIDGE_VLAN_INFO_UNTAGGED
    assert msg.port_vlan(3, 10, access) == ifi(3) + bytes.fromhex("0c001a000800020006000a00")


def test_bridge_vlan_tunnel_info_is_iproute2s():
    # bridge vlan add dev p1 vid 10 tunnel_info id 100
    nest = "20001a00 1c000300 08000100 64000000 06000200 0a000000 06000300 00000000"
    assert msg.vlan_tunnel(3, 10, 100) == ifi(3) + bytes.fromhex(nest.replace(" ", ""))


def test_bridge_link_set_port_flags_is_iproute2s():
    # bridge link set dev p1 learning off neigh_suppress on vlan_tunnel on
    nest = "1c000c80 05000800 00000000 05002000 01000000 05001d00 01000000"
    assert msg.bridge_port(3, 0, 1, 1) == ifi(3) + bytes.fromhex(nest.replace(" ", ""))


def test_vxlan_link_carries_external_and_vnifilter():
    body = msg.vxlan_link("vxlan0", "10.0.0.1", 4789, 1450)
    attrs = nl.parse_attrs(body, 16, len(body))
    assert attrs[nl.IFLA_IFNAME] == b"vxlan0\0" and attrs[msg.IFLA_MTU] == struct.pack("=I", 1450)
    info = nl.parse_attrs(attrs[msg.IFLA_LINKINFO], 0, len(attrs[msg.IFLA_LINKINFO]))
    assert info[msg.IFLA_INFO_KIND] == b"vxlan"
    data = nl.parse_attrs(info[msg.IFLA_INFO_DATA], 0, len(info[msg.IFLA_INFO_DATA]))
    assert data == {
        msg.IFLA_VXLAN_LOCAL: bytes([10, 0, 0, 1]),
        msg.IFLA_VXLAN_PORT: b"\x12\xb5",  # 4789, network order
        msg.IFLA_VXLAN_LEARNING: b"\0",
        msg.IFLA_VXLAN_COLLECT_METADATA: b"\x01",
        msg.IFLA_VXLAN_VNIFILTER: b"\x01",
    }
    v6 = msg.vxlan_link("vxlan0", "2001:db8::1", 4789, 1430)
    assert len(v6) == len(body) + 12  # IFLA_VXLAN_LOCAL6: 16 bytes, not 4


# ---- the single device's entries through the pure dataplane ------------------------------------

BR, VX, P1, P2 = 10, 11, 12, 13
MAC = "02:00:00:00:00:01"


def single_map() -> DeviceMap:
    dm = DeviceMap()
    dm.add(VniDevices(100, False, BR, VX, "br0", "vxlan0", access_ports={P1: "p1"}, vlan=10))
    dm.add(VniDevices(200, False, BR, VX, "br0", "vxlan0", access_ports={P2: "p2"}, vlan=20))
    return dm


def test_fdb_add_is_zebras_layout_and_both_plan_paths_agree():
    # bridge fdb add MAC dev vx dst 10.0.0.2 src_vni 100 vlan 10 self master extern_learn:
    # iproute2's attributes after ndmsg; evpnd's (zebra's) add NDA_MASTER after them
    iproute2 = "0a000200 020000000001 0000 08000100 0a000002 06000500 0a000000 08000b00 64000000"
    dm = single_map()
    desired = DesiredState()
    desired.fdb[100] = {MAC: "10.0.0.2"}
    ops: list[nl.Op] = []
    FdbManager().plan([(FDB, 100, MAC)], dm.vnis, desired, Mirror(), True, ops, PlanStats())
    (op,) = ops
    assert op.body[12:] == bytes.fromhex(iproute2.replace(" ", "")) + bytes.fromhex(
        "080009000a000000"
    )  # NDA_MASTER br0
    family, ifindex, _state, flags, _t = struct.unpack_from("=BxxxiHBB", op.body)
    assert (family, ifindex) == (nl.AF_BRIDGE, VX)
    assert flags == nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED
    mgr = FdbManager()
    (f,) = mgr.findings(100, MAC, dm.vnis[100], desired, Mirror())
    assert mgr.op(f, dm.vnis[100], Mirror()).body == op.body
    # per-VNI devices: the body as before (no VLAN, no VNI)
    dm2 = DeviceMap()
    dm2.add(VniDevices(100, False, BR, VX, "br100", "vx100"))
    ops2: list[nl.Op] = []
    FdbManager().plan([(FDB, 100, MAC)], dm2.vnis, desired, Mirror(), True, ops2, PlanStats())
    assert ops2[0].body == nl.FdbEncoder().fdb(VX, MAC, "10.0.0.2", op.body[10], nl.NUD_REACHABLE)


def test_fdb_delete_and_flood_carry_the_vni():
    dm = single_map()
    mirror = Mirror()
    mirror.set_fdb(200, MAC, "10.0.0.2")
    ops: list[nl.Op] = []
    FdbManager().plan([(FDB, 200, MAC)], dm.vnis, DesiredState(), mirror, True, ops, PlanStats())
    assert ops[0].mtype == nl.RTM_DELNEIGH and ops[0].body.endswith(msg.fdb_suffix(20, 200, BR))
    desired = DesiredState()
    desired.flood[200] = {"10.0.0.2"}
    fm = FloodManager()
    (f,) = fm.findings(200, "10.0.0.2", dm.vnis[200], desired, Mirror())
    body = fm.op(f, dm.vnis[200], Mirror()).body
    assert body.endswith(bytes.fromhex("08000b00c8000000"))  # NDA_SRC_VNI 200, no VLAN


def entry(body: bytes, mtype: int = nl.RTM_NEWNEIGH) -> nl.Neigh:
    return nl.parse_neigh(mtype, body, 0, len(body))


def test_the_mirror_files_single_entries_under_their_vni():
    dm = single_map()
    m = Mirror()
    enc = nl.FdbEncoder()
    ext = nl.NTF_SELF | nl.NTF_EXT_LEARNED
    vx_half = enc.fdb(VX, MAC, "10.0.0.2", ext, nl.NUD_REACHABLE) + msg.flood_suffix(200)
    n = entry(vx_half)
    assert (n.src_vni, n.extra) == (200, False)
    assert m.on_fdb(n, dm) == (FDB, 200, MAC) and m.fdb == {200: {MAC: "10.0.0.2"}}
    br_half = enc.fdb(VX, MAC, None, nl.NTF_MASTER | nl.NTF_EXT_LEARNED, nl.NUD_REACHABLE)
    br_half += msg.u16(nl.NDA_VLAN, 20)
    assert m.on_fdb(entry(br_half), dm) == (FDB, 200, MAC) and m.brfdb == {200: {MAC}}
    flood = enc.fdb(VX, nl.ZERO_MAC, "10.0.0.3", nl.NTF_SELF, nl.NUD_PERMANENT)
    assert m.on_fdb(entry(flood + msg.flood_suffix(100)), dm) == (FLOOD, 100, "10.0.0.3")
    # a VNI or VLAN that is no L2VNI's: not evpnd's to mirror
    assert m.on_fdb(entry(vx_half[:-8] + msg.flood_suffix(300)), dm) is None
    assert dm.fdb_vni(VX, False, 0, 30) is None and dm.port_vni(BR, 30) is None
    assert dm.by_vxlan == {} and dm.by_bridge == {}  # shared devices are not one VNI's


def test_local_learning_maps_port_and_vlan_to_the_vni():
    dm = single_map()
    learner = LocalLearner()

    def port_entry(port, vlan, deleted=False):
        return nl.Neigh(deleted, nl.AF_BRIDGE, port, nl.NUD_REACHABLE, 0, MAC, None, BR, 0, vlan)

    vni = dm.port_vni(BR, 10)
    assert vni == 100
    assert learner.on_port_fdb(port_entry(P1, 10), vni, dm) == [
        LocalMac(100, MAC, None, present=True, sticky=False)
    ]
    # the same MAC on VLAN 20 is VNI 200's, a separate host
    assert dm.port_vni(BR, 20) == 200
    assert learner.on_port_fdb(port_entry(P2, 20), 200, dm)[0].vni == 200
    # an entry of another VLAN handed to VNI 100 is not VNI 100's
    assert learner.on_port_fdb(port_entry(P1, 20), 100, dm) == []
    assert learner.vanished(100, set(), set(), dm) == [LocalMac(100, MAC, None, present=False)]


def test_port_vlans_and_tunnel_ranges_read_back():
    def tun(vid, tid, flags=0):
        return msg.attr(
            msg.IFLA_BRIDGE_VLAN_TUNNEL_INFO,
            msg.u32(msg.IFLA_BRIDGE_VLAN_TUNNEL_ID, tid)
            + msg.u16(msg.IFLA_BRIDGE_VLAN_TUNNEL_VID, vid)
            + msg.u16(msg.IFLA_BRIDGE_VLAN_TUNNEL_FLAGS, flags),
        )

    access = msg.BRIDGE_VLAN_INFO_PVID | msg.BRIDGE_VLAN_INFO_UNTAGGED
    spec = (
        msg.attr(msg.IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", 0, 10))
        + msg.attr(msg.IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", access, 20))
        + tun(10, 100)
        + tun(30, 300, msg.BRIDGE_VLAN_INFO_RANGE_BEGIN)
        + tun(32, 302, msg.BRIDGE_VLAN_INFO_RANGE_END)
    )
    body = ifi(5) + msg.attr(nl.IFLA_IFNAME, b"vxlan0\0") + msg.attr(msg.IFLA_AF_SPEC, spec)
    index, vlans, tunnels = msg.parse_port_vlans(body, 0, len(body))
    assert (index, vlans) == (5, {10: 0, 20: access})
    assert tunnels == {10: 100, 30: 300, 31: 301, 32: 302}
    assert msg.bridge_vlan_dump_request()[16:] == msg.u32(29, 2)  # IFLA_EXT_MASK: BRVLAN
