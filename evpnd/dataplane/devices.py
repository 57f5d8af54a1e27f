"""Bridges and VXLAN devices per VNI: created or adopted, configured, recorded. Uses pyroute2.

Ownership (DESIGN rule 5): a device evpnd creates carries the ifalias `evpnd:vni=N` (an L3VNI's
VRF too); only those are ever deleted (when their VNI leaves the configuration). A device that
already exists under the configured name is adopted: evpnd sets what EVPN needs (up, nolearning
port, neigh_suppress, MTU) but never deletes or recreates it, so a restart or an operator's own
bridge is safe.

Runs in the netlink worker thread (pyroute2's sync API is blocking).
"""

from __future__ import annotations

import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from evpnd.config import Config, L2VniConfig, L3VniConfig
from evpnd.dataplane.model import VRF_DEFAULT_METRIC, VRF_DEFAULTS, DeviceMap, VniDevices
from evpnd.dataplane.mtu import MtuPlan, overhead, warnings
from evpnd.dataplane.mtu import plan as mtu_plan
from evpnd.dataplane.tunnel_devices import evpn_underlay
from evpnd.logs import get_logger

__all__ = [  # DeviceMap & co. live in model.py (pure); re-exported for older imports
    "VRF_DEFAULTS",
    "DeviceError",
    "DeviceManager",
    "DeviceMap",
    "VniDevices",
    "vrf_members",
    "vrf_table",
]

log = get_logger("evpnd.dataplane.devices")

ALIAS_PREFIX = "evpnd:"
VXLAN_PORT = 4789  # RFC 7348 section 5


def alias_for(vni: int) -> str:
    return f"{ALIAS_PREFIX}vni={vni}"


def vrf_members(cfg: Config, item: L3VniConfig) -> list[str]:
    """The devices an L3VNI's VRF holds: its own bridge and the SVIs (bridges) of its L2VNIs,
    so routed traffic from the tenant's subnets looks up the VRF's table (symmetric IRB)."""
    bridges = {v.vni: v.bridge for v in cfg.l2vnis}
    return [item.bridge_name, *(bridges[v] for v in item.l2vnis if v in bridges)]


def vrf_table(item: L3VniConfig, existing: int | None = None) -> int:
    """The VRF's table: the configured one; else an adopted VRF's own, else the VNI."""
    if item.table is not None:
        if existing is not None and existing != item.table:
            raise DeviceError(f"VRF {item.vrf} uses table {existing}, configured {item.table}")
        return item.table
    return existing if existing is not None else item.vni


def vxlan_mtu(cfg: Config, iface: str | None = None, iface_mtu: int | None = None) -> MtuPlan:
    """VXLAN adds 50 bytes over IPv4 (14 inner Ethernet + 8 VXLAN + 8 UDP + 20 IP), 70 over
    IPv6 (mtu.py), under the underlay's MTU: `underlay_mtu` if set, else derived."""
    family = ipaddress.ip_address(str(cfg.vtep)).version
    return mtu_plan("vxlan", overhead("vxlan", family), iface, iface_mtu,
                    override_underlay=cfg.underlay_mtu)  # fmt: skip


class DeviceManager:
    """Create/adopt/configure devices. One instance per worker thread."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    # -- helpers --
    def _index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def _link(self, index: int):
        return self.ipr.link("get", index=index)[0]

    @staticmethod
    def _kind(link) -> str | None:
        info = link.get_attr("IFLA_LINKINFO")
        return info.get_attr("IFLA_INFO_KIND") if info is not None else None

    def _set(self, index: int, **kw) -> None:
        try:
            self.ipr.link("set", index=index, **kw)
        except NetlinkError as exc:
            log.warning("link set failed", index=index, settings=str(kw), error=str(exc))

    # -- per VNI --
    def ensure_bridge(self, name: str, vni: int, mac: str | None, mtu: int) -> tuple[int, bool]:
        """(ifindex, created)."""
        index = self._index(name)
        created = False
        if index is None:
            # No default PVID: on kernels with bridge VLAN support every port would get VLAN 1
            # and each FDB entry added without a VLAN would be added twice (also for VLAN 1).
            self.ipr.link("add", ifname=name, kind="bridge", br_stp_state=0, br_vlan_default_pvid=0)
            index = self._index(name)
            assert index is not None
            self._set(index, ifalias=alias_for(vni), mtu=mtu)
            created = True
            log.info("bridge created", name=name, vni=vni)
        else:
            link = self._link(index)
            if self._kind(link) != "bridge":
                raise DeviceError(f"{name} exists but is a {self._kind(link)}, not a bridge")
        if mac and self._link(index).get_attr("IFLA_ADDRESS") != mac:
            self._set(index, address=mac)
        self._set(index, state="up")
        return index, created

    def ensure_vxlan(
        self, name: str, vni: int, local: str, mtu: int, bridge: int, mac: str | None
    ) -> int:
        index = self._index(name)
        if index is None:
            self.ipr.link(
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_id=vni,
                vxlan_local=local,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
                mtu=mtu,
            )
            index = self._index(name)
            assert index is not None
            self._set(index, ifalias=alias_for(vni))
            log.info("vxlan device created", name=name, vni=vni, local=local, mtu=mtu)
        else:
            link = self._link(index)
            if self._kind(link) != "vxlan":
                raise DeviceError(f"{name} exists but is a {self._kind(link)}, not vxlan")
            data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
            if data.get_attr("IFLA_VXLAN_ID") != vni:
                raise DeviceError(
                    f"{name} exists with VNI {data.get_attr('IFLA_VXLAN_ID')}, configured {vni}"
                )
            if data.get_attr("IFLA_VXLAN_LEARNING"):
                log.warning("adopted vxlan device learns in the data plane", name=name)
            have_local = data.get_attr("IFLA_VXLAN_LOCAL") or data.get_attr("IFLA_VXLAN_LOCAL6")
            if have_local and str(have_local) != local:
                # The VTEP address changed (reconfigure): vxlan changelink accepts a new local.
                key = "vxlan_local6" if ":" in local else "vxlan_local"
                try:
                    self.ipr.link("set", index=index, kind="vxlan", **{key: local})
                    log.info("vxlan local address changed", name=name, local=local)
                except NetlinkError as exc:
                    msg = f"{name} has local {have_local}, cannot set {local}: {exc}"
                    raise DeviceError(msg) from exc
            if link.get_attr("IFLA_MTU") != mtu:
                self._set(index, mtu=mtu)
        if mac and self._link(index).get_attr("IFLA_ADDRESS") != mac:
            self._set(index, address=mac)
        if self._link(index).get_attr("IFLA_MASTER") != bridge:
            self._set(index, master=bridge)
        # The bridge must not learn remote MACs from decapsulated frames (EVPN distributes them,
        # RFC 7432 section 9.2) and answers ARP/ND for remote hosts itself (RFC 9161).
        try:
            self.ipr.brport("set", index=index, learning=0, neigh_suppress=1)
        except NetlinkError as exc:
            log.warning("bridge port settings failed", name=name, error=str(exc))
        self._set(index, state="up")
        return index

    def ensure_vrf(self, item: L3VniConfig) -> tuple[int, int, bool]:
        """(ifindex, table, created). A kernel without VRF support refuses the add: the
        NetlinkError (EOPNOTSUPP) ends up in the device problems, before anything is made."""
        assert item.vrf is not None
        index = self._index(item.vrf)
        created = False
        if index is None:
            table = vrf_table(item)
            self.ipr.link("add", ifname=item.vrf, kind="vrf", vrf_table=table)
            index = self._index(item.vrf)
            assert index is not None
            self._set(index, ifalias=alias_for(item.vni))
            created = True
            log.info("vrf created", name=item.vrf, vni=item.vni, table=table)
        else:
            link = self._link(index)
            if self._kind(link) != "vrf":
                raise DeviceError(f"{item.vrf} exists but is a {self._kind(link)}, not a vrf")
            data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
            table = vrf_table(item, data.get_attr("IFLA_VRF_TABLE") if data else None)
        self._set(index, state="up")
        self._vrf_defaults("replace", table)
        return index, table, created

    def _vrf_defaults(self, cmd: str, table: int) -> None:
        for prefix in VRF_DEFAULTS:
            try:
                self.ipr.route(
                    cmd, dst=prefix, table=table, type="unreachable", priority=VRF_DEFAULT_METRIC
                )
            except NetlinkError as exc:
                if cmd == "replace":
                    log.warning("vrf unreachable default failed", table=table, error=str(exc))

    def enslave(self, name: str, vrf: int) -> bool:
        """Put a bridge into the VRF; True if it was not there. The kernel cycles the bridge
        down and up, which flushes the IPv4 routes through it without RTM_DELROUTE
        notifications: the caller dumps that VNI's objects again."""
        index = self._index(name)
        if index is None:
            log.warning("vrf member missing", name=name)
            return False
        if self._link(index).get_attr("IFLA_MASTER") == vrf:
            return False
        try:
            self.ipr.link("set", index=index, master=vrf)
        except NetlinkError as exc:
            raise DeviceError(f"cannot put {name} into its vrf: {exc}") from exc
        log.info("vrf member added", name=name, vrf=vrf)
        return True

    def ensure_port(self, name: str, bridge: int) -> int | None:
        index = self._index(name)
        if index is None:
            return None
        if self._link(index).get_attr("IFLA_MASTER") != bridge:
            self._set(index, master=bridge)
        self._set(index, state="up")
        return index

    def ensure_address(self, bridge: int, address: str) -> None:
        net = ipaddress.ip_interface(address)
        have = {
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in self.ipr.get_addr(index=bridge)
        }
        if (str(net.ip), net.network.prefixlen) in have:
            return
        try:
            self.ipr.addr("add", index=bridge, address=str(net.ip), prefixlen=net.network.prefixlen)
        except NetlinkError as exc:
            log.warning("address add failed", address=address, error=str(exc))

    def setup(self, cfg: Config) -> DeviceMap:
        """Bring every configured VNI's devices to the wanted shape; collect, don't raise."""
        dm = DeviceMap()
        evpn_mtu = vxlan_mtu(cfg, *evpn_underlay(self.ipr, cfg))
        mtu = evpn_mtu.overlay_mtu
        local = str(cfg.vtep)
        for item in cfg.l2vnis:
            try:
                dm.add(self._setup_l2(item, local, mtu))
            except (DeviceError, NetlinkError) as exc:
                dm.problems.append(f"vni {item.vni}: {exc}")
                log.error("vni devices not usable", vni=item.vni, error=str(exc))
        for item in cfg.l3vnis:
            try:
                dm.add(self._setup_l3(cfg, item, local, mtu))
            except (DeviceError, NetlinkError) as exc:
                dm.problems.append(f"vni {item.vni}: {exc}")
                log.error("vni devices not usable", vni=item.vni, error=str(exc))
        for dev in dm.vnis.values():  # issue 9: `evpnctl mtu` lists every owned overlay device
            row = {**evpn_mtu.as_dict(), "device": dev.vxlan_name, "vni": dev.vni, "local": local}
            dm.mtu.append(row)
        if dm.vnis:
            dm.mtu_warnings += [
                w.replace("vxlan:", "VNI devices:", 1) for w in warnings([evpn_mtu], {})
            ]
        return dm

    def _setup_l2(self, item: L2VniConfig, local: str, mtu: int) -> VniDevices:
        created: list[str] = []
        br, made = self.ensure_bridge(item.bridge, item.vni, None, mtu)
        if made:
            created.append(item.bridge)
        vx_existed = self._index(item.device) is not None
        vx = self.ensure_vxlan(item.device, item.vni, local, mtu, br, None)
        if not vx_existed:
            created.append(item.device)
        ports: dict[int, str] = {}
        for name in item.access_ports:
            index = self.ensure_port(name, br)
            if index is None:
                log.warning("access port missing", vni=item.vni, port=name)
            else:
                ports[index] = name
        if item.svi_address:
            self.ensure_address(br, str(item.svi_address))
        return VniDevices(
            vni=item.vni,
            l3=False,
            bridge=br,
            vxlan=vx,
            bridge_name=item.bridge,
            vxlan_name=item.device,
            access_ports=ports,
            sticky=frozenset(item.sticky_macs),
            created=created,
        )

    def _setup_l3(self, cfg: Config, item: L3VniConfig, local: str, mtu: int) -> VniDevices:
        created: list[str] = []
        table, vrf = item.table, None
        if item.vrf is not None:  # first: no VRF support means nothing else is made
            vrf, table, made = self.ensure_vrf(item)
            if made:
                created.append(item.vrf)
        br, made = self.ensure_bridge(item.bridge_name, item.vni, item.router_mac, mtu)
        if made:
            created.append(item.bridge_name)
        vx_existed = self._index(item.device) is not None
        vx = self.ensure_vxlan(item.device, item.vni, local, mtu, br, item.router_mac)
        if not vx_existed:
            created.append(item.device)
        members = tuple(vrf_members(cfg, item)) if vrf is not None else ()
        moved = [self.enslave(name, vrf) for name in members]  # each one, no short cut
        return VniDevices(
            vni=item.vni,
            l3=True,
            bridge=br,
            vxlan=vx,
            bridge_name=item.bridge_name,
            vxlan_name=item.device,
            table=table,
            vrf_name=item.vrf,
            vrf=vrf,
            vrf_members=members,
            vrf_moved=any(moved),
            created=created,
        )

    def remove_owned(self, names: list[str]) -> list[str]:
        """Delete the named devices if (and only if) they carry evpnd's alias."""
        removed = []
        for name in names:
            index = self._index(name)
            if index is None:
                continue
            link = self._link(index)
            alias = link.get_attr("IFLA_IFALIAS") or ""
            if alias.startswith(ALIAS_PREFIX):
                if self._kind(link) == "vrf":  # its unreachable defaults stay behind otherwise
                    data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
                    self._vrf_defaults("del", data.get_attr("IFLA_VRF_TABLE"))
                self.ipr.link("del", index=index)
                removed.append(name)
            else:
                log.info("device adopted, not created: left in place", name=name)
        return removed

    def remove_stale(self, cfg: Config) -> list[str]:
        """Devices evpnd created for VNIs no longer configured (removed while it was down)."""
        keep = {v.vni for v in cfg.all_vnis()}
        names = []
        for link in self.ipr.get_links():
            alias = link.get_attr("IFLA_IFALIAS") or ""
            if not alias.startswith(f"{ALIAS_PREFIX}vni="):
                continue
            try:
                vni = int(alias.removeprefix(f"{ALIAS_PREFIX}vni="))
            except ValueError:
                continue
            if vni not in keep:
                names.append(link.get_attr("IFLA_IFNAME"))
        removed = self.remove_owned(names)
        if removed:
            log.info("stale evpnd devices removed", names=removed)
        return removed


class DeviceError(Exception):
    pass
