"""Static tunnels (issue 9): GENEVE, gretap, GRE and VXLAN devices towards sites without EVPN,
created or adopted and kept in shape like the VNIs' devices; and every owned overlay device's MTU
derived from the underlay route towards its remote (mtu.py holds the arithmetic).

Ownership (DESIGN rule 5): a tunnel evpnd creates carries the ifalias `evpnd:tunnel=NAME`; only
those are deleted (when they leave the configuration) or recreated (when their endpoints drifted
from the configuration). A device that already exists under a configured name and does not
carry the mark is adopted: evpnd sets MTU, bridge, up and the routes through it, but never
changes its endpoints, deletes or recreates it; a mismatch is reported instead.

L2 tunnels (geneve, gretap, vxlan) are ports of an L2VNI's bridge: the bridge learns the site's
MACs on them (dataplane.py decides whether those are local by `advertise`). GRE (L3) carries
`prefixes` as routes with evpnd's protocol in the L3VNI's table, through the device (which joins
the L3VNI's VRF if it has one).

Runs in the netlink worker thread (pyroute2's sync API is blocking).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from evpnd.config import Config, StaticTunnelConfig, tunnel_table
from evpnd.dataplane import mtu as mtu_
from evpnd.dataplane.links import Link
from evpnd.dataplane.model import DeviceMap, TunnelPort
from evpnd.logs import get_logger

log = get_logger("evpnd.dataplane.tunnels")

TUNNEL_ALIAS = "evpnd:tunnel="
GENEVE_PORT = 6081  # RFC 8926 section 3.3
VXLAN_PORT = 4789
GRE_KEY_FLAG = 0x2000  # GRE_KEY in the GRE flags word (RFC 2890)
IP6_TNL_F_IGN_ENCAP_LIMIT = 0x1  # `encaplimit none`: no 8-byte destination options header
RTPROT_EVPND = 235


def alias_for(name: str) -> str:
    return f"{TUNNEL_ALIAS}{name}"


def linux_kind(t: StaticTunnelConfig) -> str:
    """The rtnetlink kind: GRE over IPv6 is its own kind (ip6gre, ip6gretap)."""
    if t.type in ("gre", "gretap") and t.remote.version == 6:
        return f"ip6{t.type}"
    return t.type


def egress(ipr: IPRoute, address: str) -> tuple[str | None, int | None]:
    """(interface, MTU) of the route the kernel takes towards `address`; (None, None) when
    there is none. A route's own `mtu` metric wins over the interface's (the kernel's rule)."""
    try:
        found = ipr.route("get", dst=address)
    except NetlinkError:
        return None, None
    if not found:
        return None, None
    route = found[0]
    oif = route.get_attr("RTA_OIF")
    if oif is None:
        return None, None
    try:
        link = ipr.link("get", index=oif)[0]
    except NetlinkError:
        return None, None
    name, mtu = link.get_attr("IFLA_IFNAME"), link.get_attr("IFLA_MTU")
    metrics = route.get_attr("RTA_METRICS")
    if metrics is not None and metrics.get_attr("RTAX_MTU"):
        mtu = metrics.get_attr("RTAX_MTU")
    if name == "lo":  # a local address: no underlay path through it
        return None, None
    return name, mtu


def evpn_underlay(ipr: IPRoute, cfg: Config) -> tuple[str | None, int | None]:
    """The EVPN VXLAN devices' underlay: they reach many VTEPs, so the narrowest of the routes
    towards the BGP peers (the fabric's next hops) and the interface holding the VTEP address."""
    found: list[tuple[str, int]] = []
    for peer in cfg.peers:
        name, mtu = egress(ipr, str(peer.address))
        if name is not None and mtu is not None:
            found.append((name, mtu))
    if not found:
        vtep = str(cfg.vtep)
        family = socket.AF_INET6 if ":" in vtep else socket.AF_INET
        for addr in ipr.get_addr(family=family):
            if addr.get_attr("IFA_ADDRESS") == vtep:
                link = ipr.link("get", index=addr["index"])[0]
                if link.get_attr("IFLA_IFNAME") != "lo":
                    found.append((link.get_attr("IFLA_IFNAME"), link.get_attr("IFLA_MTU")))
    if not found:
        return None, None
    return min(found, key=lambda item: item[1])


class TunnelManager:
    """Create/adopt/repair the static tunnels. Shares the DeviceManager's IPRoute."""

    def __init__(self, ipr: IPRoute, dump_links: Callable[[], Iterable[Link]]) -> None:
        self.ipr = ipr
        # Whole-namespace scans go through the raw link dump (links.py): pyroute2 decodes
        # ~12 KiB of objects per link, in reference cycles that only a full collection frees
        # (the daemon's raised gc thresholds make that rare), which at 4,000 VNIs (8,000
        # links) was ~270 MiB of RSS after start-up (issue 17).
        self._dump_links = dump_links
        self._warned: set[str] = set()  # logged once, not at every periodic set-up
        # The names set up last time; None before the first set-up, which scans every link
        # once for evpnd's tunnels (made before a restart). Later set-ups (every reconcile
        # interval) look up only these names: pyroute2's link dump costs ~0.5 s per call at a
        # few hundred devices (DESIGN), too much for a periodic pass at 500 VNIs.
        self._names: set[str] | None = None

    def _index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def _link(self, index: int):
        return self.ipr.link("get", index=index)[0]

    def _set(self, index: int, **kw) -> None:
        try:
            self.ipr.link("set", index=index, **kw)
        except NetlinkError as exc:
            log.warning("link set failed", index=index, settings=str(kw), error=str(exc))

    # -- the whole set -------------------------------------------------------------------------

    def setup(self, cfg: Config, dm: DeviceMap, known: dict[str, Link] | None = None) -> None:
        """Every configured tunnel into shape, the stale ones (evpnd's, no longer configured)
        removed, MTU plans and warnings recorded in the map. Problems are collected per tunnel:
        one bad tunnel never stops the rest. `known`: a link dump just taken, for the first
        set-up's scan for stale tunnels."""
        self.remove_stale(cfg, known)
        vtep = str(cfg.vtep)
        for t in cfg.static_tunnels:
            try:
                entry = self._setup_one(cfg, t, vtep, dm)
            except (TunnelError, NetlinkError, OSError) as exc:
                dm.problems.append(f"tunnel {t.name}: {exc}")
                log.error("tunnel not usable", name=t.name, error=str(exc))
                dm.mtu.append({"device": t.name, "type": t.type, "remote": str(t.remote),
                               "status": f"not usable: {exc}"})  # fmt: skip
                continue
            dm.mtu.append(entry)
        if cfg.static_tunnels:  # (a VNI's own ports are its VXLAN device and access ports)
            dm.mtu_warnings.extend(mtu_.warnings([], self._bridge_port_mtus(cfg, dm)))
        for w in dm.mtu_warnings:
            if w not in self._warned:
                log.warning("mtu", warning=w)
        self._warned = set(dm.mtu_warnings)

    def _bridge_port_mtus(self, cfg: Config, dm: DeviceMap) -> dict[str, dict[str, int]]:
        """Port MTUs of the bridges a static tunnel joined (one link dump)."""
        bridges = {
            dev.bridge: dev.bridge_name
            for dev in dm.vnis.values()
            if not dev.l3 and any(t.bridge == dev.bridge_name for t in cfg.static_tunnels)
        }
        out: dict[str, dict[str, int]] = {name: {} for name in bridges.values()}
        for link in self._dump_links():
            if link.master in bridges:
                out[bridges[link.master]][link.name] = link.mtu
        return out

    def _setup_one(self, cfg: Config, t: StaticTunnelConfig, vtep: str, dm: DeviceMap) -> dict:
        local = str(t.local) if t.local is not None else vtep
        iface, iface_mtu = egress(self.ipr, str(t.remote))
        ovh = mtu_.overhead(t.type, t.remote.version, key=t.key is not None)
        plan = mtu_.plan(
            t.name, ovh, iface, iface_mtu,
            override_underlay=cfg.underlay_mtu, set_mtu=t.mtu, remote=str(t.remote),
        )  # fmt: skip
        index, how = self._ensure(t, local, plan.overlay_mtu)
        status = "ok" if iface is not None else "remote unreachable (no route)"
        if iface is None:
            dm.problems.append(f"tunnel {t.name}: no route to remote {t.remote}")
        vni = None
        if t.l2:
            assert t.bridge is not None
            vni = next(v.vni for v in cfg.l2vnis if v.bridge == t.bridge)
            dev = dm.vnis.get(vni)
            if dev is None:
                raise TunnelError(f"the bridge {t.bridge} of VNI {vni} is not usable")
            if self._link(index).get_attr("IFLA_MASTER") != dev.bridge:
                self._set(index, master=dev.bridge)
            try:  # the site's MACs are learned on this port (unlike the EVPN VXLAN port)
                self.ipr.brport("set", index=index, learning=1)
            except NetlinkError as exc:
                log.warning("bridge port settings failed", name=t.name, error=str(exc))
        else:
            self._routes(cfg, t, index, dm)
        self._set(index, state="up")
        dm.tunnels[index] = TunnelPort(t.name, t.type, vni, t.advertise)
        for w in mtu_.warnings([plan], {}):
            dm.mtu_warnings.append(w)
        return {**plan.as_dict(), "local": local, "ownership": how, "status": status}

    # -- one device ----------------------------------------------------------------------------

    def _ensure(self, t: StaticTunnelConfig, local: str, mtu: int) -> tuple[int, str]:
        """(ifindex, "created" | "owned" | "adopted")."""
        kind = linux_kind(t)
        index = self._index(t.name)
        if index is not None:
            link = self._link(index)
            info = link.get_attr("IFLA_LINKINFO")
            have = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            owned = (link.get_attr("IFLA_IFALIAS") or "") == alias_for(t.name)
            drift = self._drift(t, local, link) if have == kind else f"is a {have}, not {kind}"
            if drift and not owned:
                raise TunnelError(f"{t.name} exists (not made by evpnd) and {drift}")
            if drift:  # ours: made again to the configuration's shape
                log.warning("tunnel drifted; recreating", name=t.name, drift=drift)
                self.ipr.link("del", index=index)
                index = None
            else:
                if link.get_attr("IFLA_MTU") != mtu:
                    self._set(index, mtu=mtu)
                return index, "owned" if owned else "adopted"
        self.ipr.link("add", ifname=t.name, mtu=mtu, **self._create_args(t, local, kind))
        index = self._index(t.name)
        if index is None:
            raise TunnelError(f"{t.name} was not created")
        self._set(index, ifalias=alias_for(t.name))
        log.info("tunnel created", name=t.name, kind=kind, remote=str(t.remote), mtu=mtu)
        return index, "created"

    @staticmethod
    def _create_args(t: StaticTunnelConfig, local: str, kind: str) -> dict:
        remote = str(t.remote)
        v6 = t.remote.version == 6
        if kind == "geneve":  # a geneve device has no local address: routing picks the source
            key = "geneve_remote6" if v6 else "geneve_remote"
            return {"kind": kind, "geneve_id": t.vni, key: remote, "geneve_port": GENEVE_PORT}
        if kind == "vxlan":
            return {
                "kind": kind,
                "vxlan_id": t.vni,
                ("vxlan_group6" if v6 else "vxlan_group"): remote,
                ("vxlan_local6" if v6 else "vxlan_local"): local,
                "vxlan_port": VXLAN_PORT,
                "vxlan_learning": 0,
            }
        prefix = "ip6gre" if v6 else "gre"
        args: dict = {"kind": kind, f"{prefix}_remote": remote, f"{prefix}_local": local}
        if v6:
            args[f"{prefix}_flags"] = IP6_TNL_F_IGN_ENCAP_LIMIT
        if t.key is not None:
            for side in ("i", "o"):
                args[f"{prefix}_{side}key"] = t.key
                args[f"{prefix}_{side}flags"] = GRE_KEY_FLAG
        return args

    @staticmethod
    def _drift(t: StaticTunnelConfig, local: str, link) -> str | None:
        """How an existing device differs from the configured tunnel (None: it does not)."""
        info = link.get_attr("IFLA_LINKINFO")
        data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
        if data is None:
            return "has no tunnel attributes"

        def first(*names: str):
            for name in names:
                value = data.get_attr(name)
                if value is not None:
                    return value
            return None

        if t.type == "geneve":
            remote, vni = (
                first("IFLA_GENEVE_REMOTE", "IFLA_GENEVE_REMOTE6"),
                first("IFLA_GENEVE_ID"),
            )
            key, have_local = None, None
        elif t.type == "vxlan":
            remote, vni = first("IFLA_VXLAN_GROUP", "IFLA_VXLAN_GROUP6"), first("IFLA_VXLAN_ID")
            key, have_local = None, first("IFLA_VXLAN_LOCAL", "IFLA_VXLAN_LOCAL6")
        else:
            remote = first("IFLA_GRE_REMOTE", "IFLA_IP6GRE_REMOTE")
            have_local = first("IFLA_GRE_LOCAL", "IFLA_IP6GRE_LOCAL")
            key, vni = first("IFLA_GRE_OKEY", "IFLA_IP6GRE_OKEY") or None, None
        if remote is None or ipaddress.ip_address(str(remote)) != t.remote:
            return f"has remote {remote}, configured {t.remote}"
        if vni != t.vni:
            return f"has VNI {vni}, configured {t.vni}"
        if (key or None) != t.key:
            return f"has key {key}, configured {t.key}"
        if have_local is not None and ipaddress.ip_address(str(have_local)) != ipaddress.ip_address(
            local
        ):
            return f"has local {have_local}, configured {local}"
        return None

    # -- GRE (L3): the site's prefixes ---------------------------------------------------------

    def _routes(self, cfg: Config, t: StaticTunnelConfig, index: int, dm: DeviceMap) -> None:
        l3 = next(v for v in cfg.l3vnis if tunnel_table(v) == t.table)
        dev = dm.vnis.get(l3.vni)
        if dev is None or dev.table is None:
            raise TunnelError(f"L3VNI {l3.vni} (table {t.table}) is not usable")
        if dev.vrf is not None and self._link(index).get_attr("IFLA_MASTER") != dev.vrf:
            self._set(index, master=dev.vrf)  # replies from the site look up the tenant's table
        self._set(index, state="up")  # a route through a down device is refused
        want = {str(net) for net in t.prefixes}
        for net in sorted(want):
            self.ipr.route("replace", dst=net, table=dev.table, oif=index, proto=RTPROT_EVPND)
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in self.ipr.get_routes(family=family, table=dev.table):
                if r.get_attr("RTA_OIF") != index or r["proto"] != RTPROT_EVPND:
                    continue
                prefix = f"{r.get_attr('RTA_DST')}/{r['dst_len']}"
                if prefix not in want:  # a prefix that left the tunnel's configuration
                    self.ipr.route("del", dst=prefix, table=dev.table, oif=index)

    # -- removal ------------------------------------------------------------------------------

    def remove_stale(self, cfg: Config, known: dict[str, Link] | None = None) -> list[str]:
        """Delete evpnd's tunnels that are no longer configured (reload, or while it was
        down). Devices without evpnd's mark are never touched."""
        keep = {t.name for t in cfg.static_tunnels}
        found: list[tuple[int, str, str]] = []  # index, name, alias
        if self._names is None:
            scan = known.values() if known is not None else self._dump_links()
            found = [(link.index, link.name, link.alias) for link in scan]
        else:
            for n in self._names - keep:
                if (i := self._index(n)) is not None:
                    found.append((i, n, self._link(i).get_attr("IFLA_IFALIAS") or ""))
        self._names = keep
        removed = []
        for index, name, alias in found:
            if alias.startswith(TUNNEL_ALIAS) and alias == alias_for(name) and name not in keep:
                try:
                    self.ipr.link("del", index=index)
                    removed.append(name)
                except NetlinkError as exc:
                    log.warning("tunnel removal failed", name=name, error=str(exc))
        if removed:
            log.info("static tunnels removed", names=removed)
        return removed


class TunnelError(Exception):
    pass
