"""Bridges and VXLAN devices at scale, as raw rtnetlink: the namespace's links parsed from one
dump, and the messages that create or correct them, planned from what the dump shows (pure: the
worker thread's devices.py sends them, many per `sendmmsg`, like the FDB path).

Why (issue 17): pyroute2 costs a few milliseconds per call and setting up a VNI took ~10 calls,
several of them writes made whether needed or not; 4,000 VNIs took minutes to start and wrote to
the kernel on every restart and every periodic pass. Here a pass over N VNIs is one link dump,
one batch of creations (only what is missing), one dump again (the new indices) and one batch of
corrections (only what differs): a restart over existing, correct devices writes nothing.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from dataclasses import dataclass, field

# rtnetlink(7), linux/if_link.h
RTM_NEWLINK, RTM_SETLINK = 16, 19
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_IFALIAS = 12, 18, 20
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_VXLAN_ID, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING = 1, 4, 7
IFLA_VXLAN_PORT, IFLA_VXLAN_LOCAL6 = 15, 17
IFLA_BR_STP_STATE, IFLA_BR_VLAN_DEFAULT_PVID = 5, 39
IFLA_BRPORT_LEARNING, IFLA_BRPORT_NEIGH_SUPPRESS = 8, 32
NLA_F_NESTED = 0x8000
IFF_UP = 0x1
NLM_F_CREATE, NLM_F_EXCL = 0x400, 0x200
VXLAN_PORT = 4789  # RFC 7348 section 5

_IFI = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_RTA = struct.Struct("=HH")
_U32 = struct.Struct("=I")


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return _RTA.pack(size, kind) + payload + b"\0" * (-size & 3)


def _nest(kind: int, *parts: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(parts))


def _text(s: str) -> bytes:
    return s.encode() + b"\0"


def _attrs(buf, off: int, end: int) -> dict[int, memoryview | bytes]:
    out = {}
    while off + 4 <= end:
        alen, atype = _RTA.unpack_from(buf, off)
        if alen < 4:
            break
        out[atype & 0x3FFF] = buf[off + 4 : off + alen]
        off += (alen + 3) & ~3
    return out


def _str(raw) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


@dataclass(slots=True)
class Link:
    """What evpnd checks of a link; nothing else of the ~1 KiB message is kept."""

    index: int
    name: str
    kind: str | None = None
    up: bool = False
    mtu: int = 0
    master: int = 0
    alias: str = ""
    address: str = ""
    vxlan_id: int | None = None
    vxlan_local: str | None = None
    vxlan_learning: bool = False
    port_learning: bool | None = None  # as a bridge port; None: not a bridge port
    port_neigh_suppress: bool | None = None


def parse_link(buf, off: int, end: int) -> Link:
    _fam, _type, index, flags, _change = _IFI.unpack_from(buf, off)
    a = _attrs(buf, off + 16, end)
    link = Link(index=index, name=_str(a.get(IFLA_IFNAME, b"")), up=bool(flags & IFF_UP))
    if IFLA_MTU in a:
        link.mtu = _U32.unpack(a[IFLA_MTU])[0]
    if IFLA_MASTER in a:
        link.master = _U32.unpack(a[IFLA_MASTER])[0]
    if IFLA_IFALIAS in a:
        link.alias = _str(a[IFLA_IFALIAS])
    if IFLA_ADDRESS in a and len(a[IFLA_ADDRESS]) == 6:
        link.address = bytes(a[IFLA_ADDRESS]).hex(":")
    info = a.get(IFLA_LINKINFO)
    if info is not None:
        li = _attrs(info, 0, len(info))
        if IFLA_INFO_KIND in li:
            link.kind = _str(li[IFLA_INFO_KIND])
        data = li.get(IFLA_INFO_DATA)
        if link.kind == "vxlan" and data is not None:
            d = _attrs(data, 0, len(data))
            if IFLA_VXLAN_ID in d:
                link.vxlan_id = _U32.unpack(d[IFLA_VXLAN_ID])[0]
            if IFLA_VXLAN_LOCAL in d:
                link.vxlan_local = socket.inet_ntop(socket.AF_INET, bytes(d[IFLA_VXLAN_LOCAL]))
            elif IFLA_VXLAN_LOCAL6 in d:
                link.vxlan_local = socket.inet_ntop(socket.AF_INET6, bytes(d[IFLA_VXLAN_LOCAL6]))
            link.vxlan_learning = bool(d.get(IFLA_VXLAN_LEARNING, b"\0")[0])
        slave = li.get(IFLA_INFO_SLAVE_DATA)
        if slave is not None and _str(li.get(IFLA_INFO_SLAVE_KIND, b"")) == "bridge":
            s = _attrs(slave, 0, len(slave))
            if IFLA_BRPORT_LEARNING in s:
                link.port_learning = bool(s[IFLA_BRPORT_LEARNING][0])
            if IFLA_BRPORT_NEIGH_SUPPRESS in s:
                link.port_neigh_suppress = bool(s[IFLA_BRPORT_NEIGH_SUPPRESS][0])
    return link


# ---- messages (bodies after nlmsghdr) -----------------------------------------------------------


def _ifi(index: int = 0, up: bool | None = None, family: int = socket.AF_UNSPEC) -> bytes:
    if up is None:
        return _IFI.pack(family, 0, index, 0, 0)
    return _IFI.pack(family, 0, index, IFF_UP if up else 0, IFF_UP)


def _local(local: str) -> bytes:
    if ":" in local:
        return _attr(IFLA_VXLAN_LOCAL6, socket.inet_pton(socket.AF_INET6, local))
    return _attr(IFLA_VXLAN_LOCAL, socket.inet_pton(socket.AF_INET, local))


def new_bridge(name: str, alias: str, mtu: int, mac: str | None) -> bytes:
    """A bridge, up, STP off, no default PVID (on kernels with bridge VLAN support every port
    would get VLAN 1 and each FDB entry without a VLAN would be added twice)."""
    body = _ifi(up=True) + _attr(IFLA_IFNAME, _text(name)) + _attr(IFLA_MTU, _U32.pack(mtu))
    body += _attr(IFLA_IFALIAS, _text(alias))
    if mac:
        body += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    data = _attr(IFLA_BR_STP_STATE, _U32.pack(0))
    data += _attr(IFLA_BR_VLAN_DEFAULT_PVID, struct.pack("=H", 0))
    return body + _nest(
        IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge"), _nest(IFLA_INFO_DATA, data)
    )


def bridge_mac(local: str, vni: int) -> str:
    """A bridge evpnd creates gets its MAC set, not left to the kernel: a bridge with a
    kernel-assigned MAC takes the lowest MAC of its ports, so a port joining (a VM's tap, the
    trace probe) changes it, and a changed address flushes every neighbour on the bridge, a
    person's permanent ones included. Locally administered, unicast, stable per VTEP and VNI."""
    digest = hashlib.blake2b(f"{local} {vni}".encode(), digest_size=5).digest()
    return ":".join(f"{b:02x}" for b in (b"\x02" + digest))


def new_vxlan(name: str, alias: str, vni: int, local: str, mtu: int, mac: str | None) -> bytes:
    """A VXLAN device without learning (EVPN distributes the MACs), not yet up nor enslaved:
    the correction pass does that once its bridge's index is known."""
    body = _ifi() + _attr(IFLA_IFNAME, _text(name)) + _attr(IFLA_MTU, _U32.pack(mtu))
    body += _attr(IFLA_IFALIAS, _text(alias))
    if mac:
        body += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    data = _attr(IFLA_VXLAN_ID, _U32.pack(vni)) + _local(local)
    data += _attr(IFLA_VXLAN_PORT, struct.pack("!H", VXLAN_PORT))
    data += _attr(IFLA_VXLAN_LEARNING, b"\0")
    return body + _nest(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"vxlan"), _nest(IFLA_INFO_DATA, data))


def set_link(
    index: int,
    *,
    up: bool | None = None,
    mtu: int | None = None,
    master: int | None = None,
    alias: str | None = None,
    mac: str | None = None,
) -> bytes:
    body = _ifi(index, up)
    if mtu is not None:
        body += _attr(IFLA_MTU, _U32.pack(mtu))
    if master is not None:
        body += _attr(IFLA_MASTER, _U32.pack(master))
    if alias is not None:
        body += _attr(IFLA_IFALIAS, _text(alias))
    if mac is not None:
        body += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    return body


def set_vxlan_local(index: int, local: str) -> bytes:
    """vxlan changelink accepts a new local address (the VTEP address changed on reload)."""
    info = _attr(IFLA_INFO_KIND, b"vxlan") + _nest(IFLA_INFO_DATA, _local(local))
    return _ifi(index) + _nest(IFLA_LINKINFO, info)


def set_port(index: int) -> bytes:
    """As `bridge link set learning off neigh_suppress on` (RTM_SETLINK, AF_BRIDGE): the bridge
    must not learn remote MACs from decapsulated frames (RFC 7432 section 9.2) and answers
    ARP/ND for remote hosts itself (RFC 9161)."""
    protinfo = _attr(IFLA_BRPORT_LEARNING, b"\0") + _attr(IFLA_BRPORT_NEIGH_SUPPRESS, b"\1")
    return _ifi(index, family=socket.AF_BRIDGE) + _nest(IFLA_PROTINFO, protinfo)


# ---- planning ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Want:
    """One VNI's bridge and VXLAN device as configured; `path` is its config field path
    (`l2vnis[37]`), so a problem names the field to change."""

    vni: int
    path: str
    bridge: str
    vxlan: str
    mac: str | None = None  # an L3VNI's router MAC on both devices


@dataclass(slots=True)
class Step:
    """A message and what it is for: (vni, field path, what) for problems and logs."""

    mtype: int
    flags: int
    body: bytes
    vni: int
    path: str
    what: str


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)  # vni -> "path: why"


def plan_creations(wants: list[Want], links: dict[str, Link], alias, local: str, mtu: int) -> Plan:
    """Create what is missing; a name held by a device of another kind is the VNI's problem."""
    plan = Plan()
    excl = NLM_F_CREATE | NLM_F_EXCL
    for w in wants:
        br, vx = links.get(w.bridge), links.get(w.vxlan)
        if br is not None and br.kind != "bridge":
            plan.problems[w.vni] = (
                f"{w.path}.bridge: {w.bridge} exists but is a {br.kind}, not a bridge"
            )
            continue
        if vx is not None and vx.kind != "vxlan":
            plan.problems[w.vni] = (
                f"{w.path}.vxlan_device: {w.vxlan} exists but is a {vx.kind}, not vxlan"
            )
            continue
        if vx is not None and vx.vxlan_id != w.vni:
            why = f"{w.vxlan} exists with VNI {vx.vxlan_id}, configured {w.vni}"
            plan.problems[w.vni] = f"{w.path}.vxlan_device: {why}"
            continue
        if br is None:
            body = new_bridge(w.bridge, alias(w.vni), mtu, w.mac or bridge_mac(local, w.vni))
            plan.steps.append(
                Step(RTM_NEWLINK, excl, body, w.vni, f"{w.path}.bridge", "bridge created")
            )
        if vx is None:
            body = new_vxlan(w.vxlan, alias(w.vni), w.vni, local, mtu, w.mac)
            plan.steps.append(
                Step(
                    RTM_NEWLINK, excl, body, w.vni, f"{w.path}.vxlan_device", "vxlan device created"
                )
            )
    return plan


def plan_corrections(
    wants: list[Want], links: dict[str, Link], created: set[str], alias, local: str, mtu: int
) -> Plan:
    """Only what differs from the wanted shape; an adopted bridge keeps its MTU and alias."""
    plan = Plan()
    for w in wants:
        br, vx = links.get(w.bridge), links.get(w.vxlan)
        if br is None or vx is None:
            continue  # its creation failed: already a problem
        mine = w.bridge in created
        kw: dict = {}
        if not br.up:
            kw["up"] = True
        if mine and br.alias != alias(w.vni):
            kw["alias"] = alias(w.vni)
        if mine and br.mtu != mtu:
            kw["mtu"] = mtu
        if w.mac and br.address != w.mac:
            kw["mac"] = w.mac
        if kw:
            plan.steps.append(Step(RTM_NEWLINK, 0, set_link(br.index, **kw), w.vni,
                                   f"{w.path}.bridge", f"bridge set {sorted(kw)}"))  # fmt: skip
        if vx.vxlan_local is not None and vx.vxlan_local != local:
            plan.steps.append(Step(RTM_NEWLINK, 0, set_vxlan_local(vx.index, local), w.vni,
                                   f"{w.path}.vxlan_device", "vxlan local changed"))  # fmt: skip
        kw = {}
        if w.vxlan in created and vx.alias != alias(w.vni):
            kw["alias"] = alias(w.vni)
        if vx.mtu != mtu:
            kw["mtu"] = mtu
        if w.mac and vx.address != w.mac:
            kw["mac"] = w.mac
        if vx.master != br.index:
            kw["master"] = br.index
        if kw:
            what = f"vxlan set {sorted(kw)}"
            plan.steps.append(Step(RTM_NEWLINK, 0, set_link(vx.index, **kw), w.vni,
                                   f"{w.path}.vxlan_device", what))  # fmt: skip
        enslaved = vx.master == br.index
        if not enslaved or vx.port_learning is not False or vx.port_neigh_suppress is not True:
            plan.steps.append(Step(RTM_SETLINK, 0, set_port(vx.index), w.vni,
                                   f"{w.path}.vxlan_device", "bridge port set"))  # fmt: skip
        if not vx.up:
            plan.steps.append(Step(RTM_NEWLINK, 0, set_link(vx.index, up=True), w.vni,
                                   f"{w.path}.vxlan_device", "vxlan up"))  # fmt: skip
    return plan
