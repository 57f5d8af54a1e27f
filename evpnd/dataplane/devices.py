"""Bridges and VXLAN devices per VNI: created or adopted, configured, recorded. Uses pyroute2.

Ownership (DESIGN rule 5): a device evpnd creates carries the ifalias `evpnd:vni=N` (an L3VNI's
VRF too); only those are ever deleted (when their VNI leaves the configuration). A device that
already exists under the configured name is adopted: evpnd sets what EVPN needs (up, nolearning
port, neigh_suppress, MTU) but never deletes or recreates it, so a restart or an operator's own
bridge is safe.

Runs in the netlink worker thread (pyroute2's sync API is blocking).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from evpnd.config import Config, L2VniConfig, L3VniConfig
from evpnd.dataplane import links
from evpnd.dataplane import netlink as nl
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


@functools.lru_cache(maxsize=64)  # asked once per VXLAN device with a few distinct values
def local_key(local: str) -> str:
    """pyroute2's attribute for a VXLAN device's source: IFLA_VXLAN_LOCAL (IPv4, 4 bytes) or
    IFLA_VXLAN_LOCAL6 (IPv6, 16 bytes); the kernel then sends and receives over that family."""
    return "vxlan_local6" if ipaddress.ip_address(local).version == 6 else "vxlan_local"


def canonical_ip(text: str) -> str:
    """The one spelling (RFC 5952, as `ipaddress` writes it) addresses are compared in."""
    return str(ipaddress.ip_address(text))


def local_addresses(family: int = 0) -> set[str]:
    """Every address of `family` (0, AF_UNSPEC: both) of every interface in this namespace,
    canonical (ipaddress) spelling: what the start-time VTEP check (vtep_host.py) compares the
    configured VTEP with. One raw dump: pyroute2 decoded each address (an IPv6 link-local per
    device, 8,200 at 4,000 VNIs) into objects in reference cycles, made before the daemon's
    gc.freeze() and so kept for ever (~30 MiB of RSS after a restart, issue 17)."""
    req = nl.Requester()
    try:
        out = set()
        for _t, buf, off, end in req.dump(nl.RTM_GETADDR, nl.addr_dump_request(family)):
            packed = nl.addr_of(buf, off, end)
            if packed is not None:
                out.add(str(ipaddress.ip_address(packed)))
        return out
    finally:
        req.close()


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
        self.requester = nl.Requester()  # the batched path's own socket (links.py)
        self.writes = 0  # kernel writes made (a restart over correct devices makes none)
        self.last_links: dict[str, links.Link] | None = None  # the last set-up's link dump

    def close(self) -> None:
        self.ipr.close()
        self.requester.close()

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
        self.writes += 1
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

    def _family_switch(self, name: str, index: int, local: str) -> int | None:
        """The kernel cannot move a VXLAN device to the other address family ("New local
        address family does not match old"): a device evpnd made is deleted, to be made again
        with the new VTEP (its entries go with it; the dataplane re-dumps a recreated device).
        None then; the index if the device stays (same family, or not evpnd's: an error)."""
        link = self._link(index)
        data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        if self._kind(link) != "vxlan" or data is None:
            return index
        have = data.get_attr("IFLA_VXLAN_LOCAL6") or data.get_attr("IFLA_VXLAN_LOCAL")
        if not have or local_key(str(have)) == local_key(local):
            return index
        if not (link.get_attr("IFLA_IFALIAS") or "").startswith(ALIAS_PREFIX):
            raise DeviceError(
                f"{name} sends from {have}, the VTEP is {local}: the kernel cannot change a "
                "VXLAN device's address family and evpnd did not make this one (delete it)"
            )
        self.ipr.link("del", index=index)
        log.info("vxlan device remade for the VTEP's address family", name=name, local=local)
        return None

    def ensure_vxlan(
        self, name: str, vni: int, local: str, mtu: int, bridge: int, mac: str | None
    ) -> int:
        index = self._index(name)
        if index is not None:
            index = self._family_switch(name, index, local)
        if index is None:
            self.ipr.link(
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_id=vni,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
                mtu=mtu,
                **{local_key(local): local},
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
            if have_local and canonical_ip(str(have_local)) != canonical_ip(local):
                # The VTEP address changed (reconfigure): vxlan changelink accepts a new local.
                try:
                    self.ipr.link("set", index=index, kind="vxlan", **{local_key(local): local})
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
        """Bring every configured VNI's devices to the wanted shape; collect, don't raise.
        L2VNIs and table-only L3VNIs go through the batched raw path (issue 17); an L3VNI with
        a VRF keeps the per-VNI path below (its VRF first: no VRF support, nothing made)."""
        dm = DeviceMap()
        self.last_links = None
        evpn_mtu = vxlan_mtu(cfg, *evpn_underlay(self.ipr, cfg))
        mtu = evpn_mtu.overlay_mtu
        local = str(cfg.vtep)
        self._setup_batched(cfg, dm, local, mtu)
        if cfg.vxlan_mode == "single":  # one VXLAN device for every L2VNI (single_vxlan.py)
            from evpnd.dataplane.single_vxlan import SingleVxlan

            SingleVxlan(self).setup(cfg, dm, local, mtu)
        for i, item in enumerate(cfg.l3vnis):
            if item.vrf is None:
                continue
            try:
                dm.add(self._setup_l3(cfg, item, local, mtu))
            except (DeviceError, NetlinkError) as exc:
                dm.problems.append(f"vni {item.vni}: l3vnis[{i}]: {exc}")
                log.error("vni devices not usable", vni=item.vni, error=str(exc))
        plan = evpn_mtu.as_dict()  # the same plan for every VNI: built once, not per VNI
        for dev in dm.vnis.values():  # issue 9: `evpnctl mtu` lists every owned overlay device
            row = {**plan, "device": dev.vxlan_name, "vni": dev.vni, "local": local}
            dm.mtu.append(row)
        if dm.vnis:
            dm.mtu_warnings += [
                w.replace("vxlan:", "VNI devices:", 1) for w in warnings([evpn_mtu], {})
            ]
        return dm

    # -- batched (raw netlink; links.py plans, this sends) --
    def links(self) -> dict[str, links.Link]:
        """Every link of the namespace by name (one raw dump, nothing of pyroute2 kept)."""
        return self._links()

    def _links(self) -> dict[str, links.Link]:
        out = {}
        for _t, buf, off, end in self.requester.dump(nl.RTM_GETLINK, nl.link_dump_request()):
            link = links.parse_link(buf, off, end)
            out[link.name] = link
        return out

    def _send(self, steps: list[links.Step]) -> list[tuple[links.Step, int]]:
        """Send the steps, many per system call; the ones the kernel refused, with their errno."""
        if not steps:
            return []
        ops = [nl.Op(st.mtype, st.flags | nl.NLM_F_ACK, st.body, st) for st in steps]
        self.requester.run(ops)
        self.writes += len(ops)
        return [(op.tag, -op.error) for op in ops if op.error]

    def _setup_batched(self, cfg: Config, dm: DeviceMap, local: str, mtu: int) -> None:
        items: list[tuple[links.Want, L2VniConfig | L3VniConfig]] = []
        for i, item in enumerate(cfg.l2vnis if cfg.vxlan_mode != "single" else ()):
            items.append((links.Want(item.vni, f"l2vnis[{i}]", item.bridge, item.device), item))
        for i, l3 in enumerate(cfg.l3vnis):
            if l3.vrf is None:
                want = links.Want(l3.vni, f"l3vnis[{i}]", l3.bridge_name, l3.device, l3.router_mac)
                items.append((want, l3))
        wants = [w for w, _ in items]
        have = self._links()
        problems: dict[int, str] = {}
        self._family_switches(wants, have, local, problems)
        plan = links.plan_creations(wants, have, alias_for, local, mtu)
        problems.update(plan.problems)
        for step, err in self._send(plan.steps):
            why = os.strerror(err)
            if step.what.startswith("vxlan") and err == errno.EEXIST:
                field = step.path.rsplit(".", 1)[0] + ".vni"
                why = f"another VXLAN device already has VNI {step.vni} ({why})"
                problems.setdefault(step.vni, f"{field}: {why}")
            else:
                problems.setdefault(
                    step.vni, f"{step.path}: {step.what.split()[0]} not made: {why}"
                )
        made = {w.bridge for w in wants if w.bridge not in have} | {
            w.vxlan for w in wants if w.vxlan not in have
        }
        if plan.steps:
            for st in plan.steps:
                log.info(st.what, vni=st.vni)
            have = self._links()
        made &= have.keys()
        self.last_links = have
        ok = [w for w in wants if w.vni not in problems]
        fix = links.plan_corrections(ok, have, made, alias_for, local, mtu)
        for step, err in self._send(fix.steps):
            if step.what == "vxlan local changed" or "master" in step.what:
                problems.setdefault(step.vni, f"{step.path}: {step.what}: {os.strerror(err)}")
            else:
                log.warning("link set failed", vni=step.vni, what=step.what, error=os.strerror(err))
        for vni, why in problems.items():
            dm.problems.append(f"vni {vni}: {why}")
            log.error("vni devices not usable", vni=vni, error=why)
        for want, item in items:
            if want.vni in problems:
                continue
            br, vx = have[want.bridge], have[want.vxlan]
            created = [n for n in (want.bridge, want.vxlan) if n in made]
            if isinstance(item, L3VniConfig):
                dm.add(VniDevices(vni=item.vni, l3=True, bridge=br.index, vxlan=vx.index,
                                  bridge_name=want.bridge, vxlan_name=want.vxlan,
                                  table=item.table, created=created))  # fmt: skip
                continue
            ports = self._ports(item, br.index, have)
            if item.svi_address:
                self.ensure_address(br.index, str(item.svi_address))
            dm.add(VniDevices(vni=item.vni, l3=False, bridge=br.index, vxlan=vx.index,
                              bridge_name=want.bridge, vxlan_name=want.vxlan, access_ports=ports,
                              sticky=frozenset(item.sticky_macs), created=created))  # fmt: skip

    def _family_switches(
        self, wants: list[links.Want], have: dict[str, links.Link], local: str, problems: dict
    ) -> None:
        """The batched path's `_family_switch`: a VXLAN device of the other address family than
        the VTEP is deleted when evpnd made it (and `have` forgets it, so it is made again;
        the dataplane re-dumps a recreated device), or named as the VNI's problem when not."""
        family = local_key(local)
        for w in wants:
            vx = have.get(w.vxlan)
            if vx is None or vx.kind != "vxlan" or not vx.vxlan_local:
                continue
            if local_key(vx.vxlan_local) == family:
                continue
            if not vx.alias.startswith(ALIAS_PREFIX):
                problems[w.vni] = (
                    f"{w.path}.vxlan_device: {w.vxlan} sends from {vx.vxlan_local}, the VTEP is "
                    f"{local}: the kernel cannot change a VXLAN device's address family and "
                    "evpnd did not make this one (delete it)"
                )
                continue
            self.ipr.link("del", index=vx.index)
            self.writes += 1
            del have[w.vxlan]
            log.info("vxlan device remade for the VTEP's address family", name=w.vxlan, local=local)

    def _ports(self, item: L2VniConfig, bridge: int, have: dict[str, links.Link]) -> dict:
        ports: dict[int, str] = {}
        for name in item.access_ports:
            link = have.get(name)
            if link is None:
                log.warning("access port missing", vni=item.vni, port=name)
                continue
            if link.master != bridge:
                self._set(link.index, master=bridge)
            if not link.up:
                self._set(link.index, state="up")
            ports[link.index] = name
        return ports

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
        for link in self._links().values():  # raw: pyroute2 decoded every link (issue 17)
            if not link.alias.startswith(f"{ALIAS_PREFIX}vni="):
                continue
            try:
                vni = int(link.alias.removeprefix(f"{ALIAS_PREFIX}vni="))
            except ValueError:
                continue
            if vni not in keep:
                names.append(link.name)
        removed = self.remove_owned(names)
        if removed:
            log.info("stale evpnd devices removed", names=removed)
        return removed


class DeviceError(Exception):
    pass
