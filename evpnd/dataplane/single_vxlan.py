"""vxlan_mode single: ONE VLAN-aware bridge and ONE VXLAN device (`external` + `vnifilter`)
for every L2VNI, each L2VNI a VLAN mapped to its VNI (FRR 8.4+'s single VXLAN device).

Per L2VNI: the VLAN on the VXLAN port with the tunnel mapping VLAN -> VNI (`bridge vlan add dev
vxlan0 vid 10 tunnel_info id 100`, with `vlan_tunnel on` on the port), the VNI in the device's
VNI filter (`bridge vni add dev vxlan0 vni 100`), and the VLAN as the untagged PVID of the
VNI's access ports. pyroute2 0.9 knows neither IFLA_VXLAN_VNIFILTER nor RTM_NEWTUNNEL: those
messages (and the bridge VLAN ones) are built in single_msgs.py and sent on the raw socket the
batched device path already uses.

Ownership (DESIGN rule 5): the devices evpnd makes carry the ifalias `evpnd:single`; existing
ones under the configured names are adopted (set up, never deleted). Runs in the worker thread.
"""

from __future__ import annotations

import errno
import os

from pyroute2.netlink.exceptions import NetlinkError

from evpnd.config import Config, vxlan_mode
from evpnd.dataplane import netlink as nl
from evpnd.dataplane import single_msgs as msg
from evpnd.dataplane.devices import VXLAN_PORT, DeviceError, DeviceManager
from evpnd.dataplane.links import Link
from evpnd.dataplane.model import DeviceMap, VniDevices
from evpnd.logs import get_logger

log = get_logger("evpnd.dataplane.single_vxlan")

ALIAS = "evpnd:single"
ACCESS = msg.BRIDGE_VLAN_INFO_PVID | msg.BRIDGE_VLAN_INFO_UNTAGGED


def _op(mtype: int, body: bytes, tag: tuple, flags: int = 0) -> nl.Op:
    return nl.Op(mtype, flags | nl.NLM_F_ACK, body, tag)


class SingleVxlan:
    """Sets up single mode's devices through a DeviceManager's sockets."""

    def __init__(self, devices: DeviceManager) -> None:
        self.dev = devices

    def setup(self, cfg: Config, dm: DeviceMap, local: str, mtu: int) -> None:
        if not cfg.l2vnis:
            return
        bridge_name, vxlan_name = vxlan_mode.single_names(cfg)
        created: list[str] = []
        try:
            br = self._bridge(bridge_name, mtu, created)
            vx = self._vxlan(vxlan_name, local, mtu, br, created)
            in_filter = self._vni_filter(vxlan_name, vx)
        except (DeviceError, NetlinkError, OSError) as exc:
            dm.problems.append(f"vxlan_mode single: l2vnis[0]: {exc}")
            log.error("single vxlan device not usable", error=str(exc))
            return
        have = self.dev._links()
        # Read back, written only where they differ: a restart or periodic check over an
        # unchanged kernel writes nothing (as the per-VNI mode, links.py).
        vlans, tunnels, port_flags = self._port_vlans()
        ops: list[nl.Op] = []
        if msg.port_flags_differ(port_flags.get(vx, {})):
            ops.append(_op(msg.RTM_SETLINK, msg.bridge_port(vx, 0, 1, 1),
                           ("port", None, vxlan_name)))  # fmt: skip
        ports_of: dict[int, dict[int, str]] = {}
        bad: dict[int | None, str] = {}
        for i, item in enumerate(cfg.l2vnis):
            assert item.vlan is not None  # config: required in single mode
            where = f"l2vnis[{i}].vlan"
            if item.vlan not in vlans.get(vx, {}):
                ops.append(_op(msg.RTM_SETLINK, msg.port_vlan(vx, item.vlan), ("vlan", i, where)))
            mapped = tunnels.get(vx, {}).get(item.vlan)
            if mapped is None:
                ops.append(_op(msg.RTM_SETLINK, msg.vlan_tunnel(vx, item.vlan, item.vni),
                               ("tunnel_info", i, where)))  # fmt: skip
            elif mapped != item.vni:  # not evpnd's mapping to change (a person's): reported
                bad[i] = f"{where}: VLAN {item.vlan} on {vxlan_name} is tunnel id {mapped}"
            if item.vni not in in_filter:
                ops.append(_op(msg.RTM_NEWTUNNEL, msg.vni_filter(vx, item.vni),
                               ("vni filter", i, f"l2vnis[{i}].vni"), nl.NLM_F_CREATE))  # fmt: skip
            ports = ports_of[i] = {}
            for name in item.access_ports:
                link = have.get(name)
                if link is None:
                    log.warning("access port missing", vni=item.vni, port=name)
                    continue
                self._enslave(link, br)
                if vlans.get(link.index, {}).get(item.vlan) != ACCESS:
                    ops.append(_op(msg.RTM_SETLINK, msg.port_vlan(link.index, item.vlan, ACCESS),
                                   ("access vlan", i, f"l2vnis[{i}].access_ports")))  # fmt: skip
                ports[link.index] = name
        if ops:
            self.dev.requester.run(ops)
            self.dev.writes += len(ops)
        for op in ops:
            # Set-up runs again every reconcile interval: the kernel accepts a VLAN, port flag
            # or VNI filter entry it already has, but refuses a VLAN's tunnel mapping that
            # exists (EEXIST, Linux 6.1 __vlan_tunnel_info_add): already mapped is done.
            if op.tag[0] == "tunnel_info" and op.error == -errno.EEXIST:
                continue
            if op.error:
                what, i, where = op.tag
                bad.setdefault(i, f"{where}: {what} not set: {os.strerror(-op.error)}")
        if None in bad:  # the VXLAN port's flags: nothing maps without vlan_tunnel
            bad = {i: bad[None] for i in range(len(cfg.l2vnis))}
        for i, item in enumerate(cfg.l2vnis):
            if i in bad:
                dm.problems.append(f"vni {item.vni}: {bad[i]}")
                log.error("vni devices not usable", vni=item.vni, error=bad[i])
                continue
            dm.add(VniDevices(vni=item.vni, l3=False, bridge=br, vxlan=vx,
                              bridge_name=bridge_name, vxlan_name=vxlan_name,
                              access_ports=ports_of[i], sticky=frozenset(item.sticky_macs),
                              created=list(created), vlan=item.vlan))  # fmt: skip

    def _port_vlans(self) -> tuple[dict[int, dict[int, int]], ...]:
        """Every bridge port's VLANs (VID -> flags), tunnel mappings (VID -> VNI) and port
        flags (IFLA_BRPORT_* -> value): one AF_BRIDGE link dump."""
        vlans: dict[int, dict[int, int]] = {}
        tunnels: dict[int, dict[int, int]] = {}
        flags: dict[int, dict[int, int]] = {}
        body = msg.bridge_vlan_dump_request()
        for _t, buf, off, end in self.dev.requester.dump(nl.RTM_GETLINK, body):
            index, v, t = msg.parse_port_vlans(buf, off, end)
            vlans[index], tunnels[index] = v, t
            flags[index] = msg.parse_port_flags(buf, off, end)
        return vlans, tunnels, flags

    def _vni_filter(self, name: str, vxlan: int) -> msg.VniRanges:
        """The VXLAN device's VNI filter as the kernel holds it (`bridge vni show dev X`)."""
        ranges: list[tuple[int, int]] = []
        body = msg.vni_filter_dump_request(vxlan)
        try:
            for mtype, buf, off, end in self.dev.requester.dump(msg.RTM_GETTUNNEL, body):
                if mtype == msg.RTM_NEWTUNNEL:
                    index, found = msg.parse_vni_filter(buf, off, end)
                    if index == vxlan:
                        ranges.extend(found)
        except nl.NetlinkError as exc:
            if exc.errno == errno.EINVAL:  # the kernel's answer for a device without vnifilter
                raise DeviceError(f"{name} exists without vnifilter (an external device made "
                                  "without it cannot filter VNIs)") from exc  # fmt: skip
            raise
        return msg.VniRanges(ranges)

    # -- devices --
    def _bridge(self, name: str, mtu: int, created: list[str]) -> int:
        ipr = self.dev.ipr
        index = self.dev._index(name)
        if index is None:
            # No default PVID: ports join no VLAN but the ones evpnd gives them.
            ipr.link("add", ifname=name, kind="bridge", br_stp_state=0,
                     br_vlan_default_pvid=0, br_vlan_filtering=1)  # fmt: skip
            index = self.dev._index(name)
            assert index is not None
            self.dev._set(index, ifalias=ALIAS, mtu=mtu)
            created.append(name)
            log.info("vlan-aware bridge created", name=name)
        else:
            link = self.dev._link(index)
            if self.dev._kind(link) != "bridge":
                raise DeviceError(f"{name} exists but is a {self.dev._kind(link)}, not a bridge")
            data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
            if data is None or not data.get_attr("IFLA_BR_VLAN_FILTERING"):
                self.dev.writes += 1
                ipr.link("set", index=index, kind="bridge", br_vlan_filtering=1)
        self._up(index)
        return index

    def _vxlan(self, name: str, local: str, mtu: int, bridge: int, created: list[str]) -> int:
        index = self.dev._index(name)
        if index is None:
            ops = [_op(nl.RTM_NEWLINK, msg.vxlan_link(name, local, VXLAN_PORT, mtu),
                       ("vxlan", None, name), nl.NLM_F_CREATE | nl.NLM_F_EXCL)]  # fmt: skip
            self.dev.requester.run(ops)
            self.dev.writes += 1
            if ops[0].error:
                why = os.strerror(-ops[0].error)
                raise DeviceError(f"{name}: external vnifilter VXLAN device not made: {why}")
            index = self.dev._index(name)
            assert index is not None
            self.dev._set(index, ifalias=ALIAS)
            created.append(name)
            log.info("vnifilter vxlan device created", name=name, local=local, mtu=mtu)
        else:
            link = self.dev._link(index)
            if self.dev._kind(link) != "vxlan":
                raise DeviceError(f"{name} exists but is a {self.dev._kind(link)}, not vxlan")
            data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
            if data is not None and data.get_attr("IFLA_VXLAN_ID"):
                raise DeviceError(f"{name} exists with VNI {data.get_attr('IFLA_VXLAN_ID')}: "
                                  "not an external (collect metadata) device")  # fmt: skip
            if link.get_attr("IFLA_MTU") != mtu:
                self.dev._set(index, mtu=mtu)
        if self.dev._link(index).get_attr("IFLA_MASTER") != bridge:
            self.dev._set(index, master=bridge)
        self._up(index)
        return index

    def _up(self, index: int) -> None:
        if not self.dev._link(index)["flags"] & 1:  # IFF_UP: the periodic check writes nothing
            self.dev._set(index, state="up")

    def _enslave(self, link: Link, bridge: int) -> None:
        if link.master != bridge:
            self.dev._set(link.index, master=bridge)
        if not link.up:
            self.dev._set(link.index, state="up")
