"""vxlan_mode single: the rtnetlink messages pyroute2 0.9 cannot build, and the FDB attributes
of a VNI on the shared VXLAN device. Pure (bytes in, bytes out); single_vxlan.py sends them.

The layouts are iproute2's (tests/unit/test_single_msgs.py holds the bytes `ip`/`bridge` send):
- `ip link add vxlan0 type vxlan external vnifilter local A dstport 4789 nolearning`:
  RTM_NEWLINK, IFLA_LINKINFO {KIND "vxlan", DATA {LOCAL(6), PORT, LEARNING 0,
  COLLECT_METADATA 1, VNIFILTER 1}} (IFLA_VXLAN_VNIFILTER: Linux 5.18).
- `bridge vni add dev vxlan0 vni 100`: RTM_NEWTUNNEL, struct tunnel_msg {AF_BRIDGE, ifindex},
  VXLAN_VNIFILTER_ENTRY (nested) {VXLAN_VNIFILTER_ENTRY_START u32 vni} (bridge/vni.c).
- `bridge vni show dev vxlan0`: RTM_GETTUNNEL dump, struct tunnel_msg {AF_BRIDGE, ifindex}; the
  kernel answers RTM_NEWTUNNEL messages whose VXLAN_VNIFILTER_ENTRY nests carry a range,
  ENTRY_START and (when it spans more than one VNI) ENTRY_END (drivers/net/vxlan/
  vxlan_vnifilter.c, vxlan_fill_dump_entry).
- `bridge vlan add dev vxlan0 vid 10` and `... vid 10 tunnel_info id 100`: RTM_SETLINK,
  AF_BRIDGE ifinfomsg, IFLA_AF_SPEC {IFLA_BRIDGE_VLAN_INFO {flags, vid}} resp.
  {IFLA_BRIDGE_VLAN_TUNNEL_INFO {TUNNEL_ID u32, TUNNEL_VID u16, FLAGS u16}} (bridge/vlan.c).
- `bridge link set dev vxlan0 learning off neigh_suppress on vlan_tunnel on`: RTM_SETLINK,
  AF_BRIDGE ifinfomsg, IFLA_PROTINFO|NLA_F_NESTED {BRPORT_* u8}.
- FDB entries (zebra's netlink_neigh_update_msg_encode for a single VXLAN device): after
  NDA_DST, NDA_VLAN u16 (the bridge's half) and NDA_SRC_VNI u32 (the key of the VXLAN
  device's table in collect-metadata mode: kernel vxlan_fdb_parse), then NDA_MASTER.
"""

from __future__ import annotations

import bisect
import socket
import struct

from evpnd.dataplane import netlink as nl

RTM_NEWLINK, RTM_SETLINK = 16, 19
RTM_NEWTUNNEL, RTM_DELTUNNEL, RTM_GETTUNNEL = 120, 121, 122
NLA_F_NESTED = 0x8000

IFLA_MTU, IFLA_LINKINFO, IFLA_PROTINFO, IFLA_AF_SPEC = 4, 18, 12, 26
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PORT, IFLA_VXLAN_LOCAL6 = 4, 7, 15, 17
IFLA_VXLAN_COLLECT_METADATA, IFLA_VXLAN_VNIFILTER = 25, 30
IFLA_BRPORT_LEARNING, IFLA_BRPORT_VLAN_TUNNEL, IFLA_BRPORT_NEIGH_SUPPRESS = 8, 29, 32
IFLA_BRIDGE_VLAN_INFO, IFLA_BRIDGE_VLAN_TUNNEL_INFO = 2, 3
IFLA_BRIDGE_VLAN_TUNNEL_ID, IFLA_BRIDGE_VLAN_TUNNEL_VID, IFLA_BRIDGE_VLAN_TUNNEL_FLAGS = 1, 2, 3
BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED = 0x2, 0x4
VXLAN_VNIFILTER_ENTRY, VXLAN_VNIFILTER_ENTRY_START, VXLAN_VNIFILTER_ENTRY_END = 1, 1, 2
NDA_SRC_VNI = 11

_IFI = struct.Struct("=BxHiII")  # ifinfomsg
_TUNNEL_MSG = struct.Struct("=BBHI")  # struct tunnel_msg: family, flags, reserved, ifindex


def attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size & 3)


def u8(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=B", value))


def u16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=H", value))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def vxlan_link(name: str, local: str, port: int, mtu: int) -> bytes:
    """RTM_NEWLINK body: the shared VXLAN device (external + vnifilter, no data-plane
    learning: EVPN distributes the MACs, RFC 7432 section 9.2)."""
    family, raw = nl.ip_bytes(local)
    local_attr = attr(IFLA_VXLAN_LOCAL6 if family == socket.AF_INET6 else IFLA_VXLAN_LOCAL, raw)
    data = (
        local_attr
        + attr(IFLA_VXLAN_PORT, struct.pack("!H", port))  # network order (be16)
        + u8(IFLA_VXLAN_LEARNING, 0)
        + u8(IFLA_VXLAN_COLLECT_METADATA, 1)
        + u8(IFLA_VXLAN_VNIFILTER, 1)
    )
    info = attr(IFLA_INFO_KIND, b"vxlan") + attr(IFLA_INFO_DATA, data)
    return (
        _IFI.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        + attr(nl.IFLA_IFNAME, name.encode() + b"\0")
        + u32(IFLA_MTU, mtu)
        + attr(IFLA_LINKINFO, info)
    )


def vni_filter(ifindex: int, vni: int) -> bytes:
    """RTM_NEWTUNNEL / RTM_DELTUNNEL body: one VNI in (or out of) the device's filter."""
    entry = u32(VXLAN_VNIFILTER_ENTRY_START, vni)
    return _TUNNEL_MSG.pack(socket.AF_BRIDGE, 0, 0, ifindex) + attr(
        VXLAN_VNIFILTER_ENTRY | NLA_F_NESTED, entry
    )


def bridge_port(ifindex: int, learning: int, neigh_suppress: int, vlan_tunnel: int) -> bytes:
    """RTM_SETLINK body: bridge port flags (`bridge link set dev X ...`)."""
    protinfo = (
        u8(IFLA_BRPORT_LEARNING, learning)
        + u8(IFLA_BRPORT_NEIGH_SUPPRESS, neigh_suppress)
        + u8(IFLA_BRPORT_VLAN_TUNNEL, vlan_tunnel)
    )
    return _IFI.pack(socket.AF_BRIDGE, 0, ifindex, 0, 0) + attr(
        IFLA_PROTINFO | NLA_F_NESTED, protinfo
    )


def port_vlan(ifindex: int, vid: int, flags: int = 0) -> bytes:
    """RTM_SETLINK (add) / RTM_DELLINK (delete) body: a VLAN on a bridge port; flags
    BRIDGE_VLAN_INFO_PVID | _UNTAGGED make it an access port's (`pvid untagged`)."""
    spec = attr(IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", flags, vid))
    return _IFI.pack(socket.AF_BRIDGE, 0, ifindex, 0, 0) + attr(IFLA_AF_SPEC, spec)


def vlan_tunnel(ifindex: int, vid: int, vni: int) -> bytes:
    """RTM_SETLINK body: the port's VLAN `vid` is the tunnel id `vni` (frames leaving the
    bridge on that VLAN get the VNI as tunnel metadata; received ones with it get the VLAN)."""
    info = u32(IFLA_BRIDGE_VLAN_TUNNEL_ID, vni) + u16(IFLA_BRIDGE_VLAN_TUNNEL_VID, vid)
    info += u16(IFLA_BRIDGE_VLAN_TUNNEL_FLAGS, 0)  # as iproute2 sends it (no range)
    spec = attr(IFLA_BRIDGE_VLAN_TUNNEL_INFO, info)
    return _IFI.pack(socket.AF_BRIDGE, 0, ifindex, 0, 0) + attr(IFLA_AF_SPEC, spec)


def fdb_suffix(vlan: int, vni: int, bridge: int) -> bytes:
    """What a single-mode FDB message carries after NDA_DST (or after the MAC when it has
    none): the VLAN for the bridge's half, the VNI as the VXLAN table's key, the bridge."""
    return u16(nl.NDA_VLAN, vlan) + u32(NDA_SRC_VNI, vni) + u32(nl.NDA_MASTER, bridge)


def flood_suffix(vni: int) -> bytes:
    """A flood (all-zero MAC) entry's VNI: the VXLAN device's table only, no VLAN."""
    return u32(NDA_SRC_VNI, vni)


# ---- reading back: which VLANs and tunnel mappings the bridge ports have ----------------------

IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN = 29, 1 << 1
BRIDGE_VLAN_INFO_RANGE_BEGIN, BRIDGE_VLAN_INFO_RANGE_END = 1 << 3, 1 << 4


def bridge_vlan_dump_request() -> bytes:
    """RTM_GETLINK dump body (`bridge vlan show` / `tunnelshow`): every bridge port with its
    VLANs (IFLA_BRIDGE_VLAN_INFO, one per VID) and, on vlan_tunnel ports, its mappings."""
    return _IFI.pack(socket.AF_BRIDGE, 0, 0, 0, 0) + u32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN)


def parse_port_vlans(buf, off: int, end: int) -> tuple[int, dict[int, int], dict[int, int]]:
    """(ifindex, VID -> VLAN flags, VID -> tunnel id) of one AF_BRIDGE RTM_NEWLINK. The kernel
    reports consecutive VIDs with consecutive tunnel ids as one range (RANGE_BEGIN/_END)."""
    index = _IFI.unpack_from(buf, off)[2]
    vlans: dict[int, int] = {}
    tunnels: dict[int, int] = {}
    spec = nl.parse_attrs(buf, off + 16, end).get(IFLA_AF_SPEC)
    if spec is None:
        return index, vlans, tunnels
    pos, begin = 0, None
    while pos + 4 <= len(spec):
        alen, atype = struct.unpack_from("=HH", spec, pos)
        if alen < 4:
            break
        payload = spec[pos + 4 : pos + alen]
        atype &= 0x3FFF
        if atype == IFLA_BRIDGE_VLAN_INFO and len(payload) >= 4:
            flags, vid = struct.unpack_from("=HH", payload)
            vlans[vid] = flags & (BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED)
        elif atype == IFLA_BRIDGE_VLAN_TUNNEL_INFO:
            a = nl.parse_attrs(payload, 0, len(payload))
            if IFLA_BRIDGE_VLAN_TUNNEL_ID in a and IFLA_BRIDGE_VLAN_TUNNEL_VID in a:
                tid = struct.unpack("=I", a[IFLA_BRIDGE_VLAN_TUNNEL_ID][:4])[0]
                vid = struct.unpack("=H", a[IFLA_BRIDGE_VLAN_TUNNEL_VID][:2])[0]
                raw = a.get(IFLA_BRIDGE_VLAN_TUNNEL_FLAGS, b"\0\0")
                tflags = struct.unpack("=H", raw[:2])[0]
                if tflags & BRIDGE_VLAN_INFO_RANGE_BEGIN:
                    begin = (vid, tid)
                elif tflags & BRIDGE_VLAN_INFO_RANGE_END and begin is not None:
                    for v in range(begin[0], vid + 1):
                        tunnels[v] = begin[1] + (v - begin[0])
                    begin = None
                else:
                    tunnels[vid] = tid
        pos += (alen + 3) & ~3
    return index, vlans, tunnels


# The port flags single mode wants on the VXLAN device (`bridge link set ...` above): no
# learning from decapsulated frames (RFC 7432 section 9.2), ARP/ND suppression (RFC 9161), and
# the per-VLAN tunnel mapping that makes a VLAN a VNI.
PORT_FLAGS = {IFLA_BRPORT_LEARNING: 0, IFLA_BRPORT_NEIGH_SUPPRESS: 1, IFLA_BRPORT_VLAN_TUNNEL: 1}


def parse_port_flags(buf, off: int, end: int) -> dict[int, int]:
    """IFLA_BRPORT_* -> value of the u8 flags of one AF_BRIDGE RTM_NEWLINK (the same dump as
    parse_port_vlans: the kernel's br_fill_ifinfo nests them in IFLA_PROTINFO for every bridge
    port). Empty for a link that is no bridge port."""
    protinfo = nl.parse_attrs(buf, off + 16, end).get(IFLA_PROTINFO)
    if protinfo is None:
        return {}
    flags = nl.parse_attrs(protinfo, 0, len(protinfo))
    return {kind: raw[0] for kind, raw in flags.items() if kind in PORT_FLAGS and len(raw) >= 1}


def port_flags_differ(flags: dict[int, int]) -> bool:
    """True when the VXLAN port's flags are not (all) what single mode wants."""
    return any(flags.get(kind) != value for kind, value in PORT_FLAGS.items())


# ---- reading back: the VNI filter of the VXLAN device ------------------------------------------


def vni_filter_dump_request(ifindex: int) -> bytes:
    """RTM_GETTUNNEL dump body (`bridge vni show dev X`): the VNI filter of one device."""
    return _TUNNEL_MSG.pack(socket.AF_BRIDGE, 0, 0, ifindex)


def parse_vni_filter(buf, off: int, end: int) -> tuple[int, list[tuple[int, int]]]:
    """(ifindex, [(first VNI, last VNI), ...]) of one RTM_NEWTUNNEL: the kernel reports
    consecutive VNIs (with the same remote group) as one range."""
    index = _TUNNEL_MSG.unpack_from(buf, off)[3]
    ranges: list[tuple[int, int]] = []
    pos = off + _TUNNEL_MSG.size
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("=HH", buf, pos)
        if alen < 4:
            break
        if atype & 0x3FFF == VXLAN_VNIFILTER_ENTRY:
            entry = nl.parse_attrs(buf, pos + 4, min(pos + alen, end))
            start = entry.get(VXLAN_VNIFILTER_ENTRY_START)
            if start is not None and len(start) >= 4:
                first = struct.unpack("=I", start[:4])[0]
                last_raw = entry.get(VXLAN_VNIFILTER_ENTRY_END)
                last = struct.unpack("=I", last_raw[:4])[0] if last_raw else first
                ranges.append((first, max(first, last)))
        pos += (alen + 3) & ~3
    return index, ranges


class VniRanges:
    """Membership in a VNI filter read back as ranges, without expanding them (a person's
    `bridge vni add vni 1-16000000` is one range, not 16 million entries)."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = sorted(ranges)
        self._starts = [r[0] for r in self.ranges]

    def __contains__(self, vni: int) -> bool:
        i = bisect.bisect_right(self._starts, vni) - 1
        return i >= 0 and self.ranges[i][0] <= vni <= self.ranges[i][1]
