"""Local learning: bridge FDB entries on access ports and SVI neighbours become LocalMac events.

Pure: fed parsed netlink messages (from the start-up dump and from the monitor), returns events.
A neighbour (IP -> MAC) is reported only while its MAC is a local one: the kernel also resolves
addresses of remote hosts when ARP suppression has no entry, and those must never be advertised
as local (RFC 7432 section 10: MAC/IP routes are for locally attached hosts).
"""

from __future__ import annotations

import ipaddress

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.model import DeviceMap, LocalMac

_PRESENT = (
    nl.NUD_REACHABLE | nl.NUD_STALE | nl.NUD_DELAY | nl.NUD_PROBE | nl.NUD_PERMANENT | nl.NUD_NOARP
)


class LocalLearner:
    def __init__(self) -> None:
        self.macs: dict[int, dict[str, bool]] = {}  # vni -> local MAC -> sticky
        self.ips: dict[int, dict[str, str]] = {}  # vni -> IP -> MAC (neighbours seen on the SVI)
        # vni -> MAC -> its IPs in `ips`: a MAC's neighbours looked up, not searched for among
        # every neighbour of the VNI (that made learning N MACs with N neighbours cost N x N)
        self.mac_ips: dict[int, dict[str, set[str]]] = {}
        self.reported: set[tuple[int, str]] = set()  # (vni, IP) reported present
        self.ignored = 0

    def on_port_fdb(self, n: nl.Neigh, vni: int, dm: DeviceMap) -> list[LocalMac]:
        """A bridge entry on an access port of the VNI's bridge."""
        mac = n.mac
        if mac is None or not (n.master or n.flags & nl.NTF_MASTER):  # kernel: NDA_MASTER only
            return []
        if n.vlan and n.vlan != dm.vnis[vni].vlan:
            return []  # a VLAN's (per-VNI bridges); vxlan_mode single: another VNI's VLAN
        if n.state & nl.NUD_PERMANENT or n.flags & nl.NTF_EXT_LEARNED:
            return []  # the port's or bridge's own address, another controller's
        return self.port_mac(vni, mac, n.deleted, bool(n.state & nl.NUD_NOARP), dm)

    def port_mac(
        self, vni: int, mac: str, deleted: bool, noarp: bool, dm: DeviceMap
    ) -> list[LocalMac]:
        """A MAC learned (or lost) on an access port of the VNI: on_port_fdb's entries once
        filtered, and the monitor's fast path (NetlinkBackend.read_events) directly."""
        if int(mac[:2], 16) & 1:
            self.ignored += 1  # multicast source addresses are invalid (IEEE 802.3)
            return []
        macs = self.macs.get(vni)
        if macs is None:
            macs = self.macs[vni] = {}
        out: list[LocalMac] = []
        if deleted:
            if macs.pop(mac, None) is None:
                return []
            return self._gone(vni, mac)
        sticky = noarp or mac in dm.vnis[vni].sticky
        if macs.get(mac) == sticky:
            return []
        macs[mac] = sticky
        out = [LocalMac(vni, mac, None, True, sticky)]
        ips = self.mac_ips.get(vni)
        if ips and mac in ips:
            for ip in sorted(ips[mac]):
                self.reported.add((vni, ip))
                out.append(LocalMac(vni, mac, ip, present=True, sticky=sticky))
        return out

    def _gone(self, vni: int, mac: str) -> list[LocalMac]:
        """A local MAC is not local any more: it, and the neighbours reported on it."""
        out = [LocalMac(vni, mac, None, present=False)]
        ips = self.mac_ips.get(vni)
        if ips and mac in ips:
            for ip in sorted(ips[mac]):
                if (vni, ip) in self.reported:
                    self.reported.discard((vni, ip))
                    out.append(LocalMac(vni, mac, ip, present=False))
        return out

    def on_tunnel_fdb(self, vni: int, mac: str) -> list[LocalMac]:
        """evpnd installed a remote entry for a local MAC: a path with a higher sequence number
        won (RFC 7432 section 15.1) and the bridge entry points at the tunnel now (evpnd's own
        writes raise no events). The MAC is not local any more, so that the next frame from an
        access port (the host moved back) is news again."""
        if self.macs.get(vni, {}).pop(mac, None) is None:
            return []
        return self._gone(vni, mac)

    def on_neigh(self, n: nl.Neigh, vni: int) -> list[LocalMac]:
        """A neighbour on the VNI's bridge that evpnd did not install."""
        ip = n.dst
        if ip is None:
            return []
        addr = ipaddress.ip_address(ip)
        if addr.is_link_local or addr.is_multicast:
            return []
        ips = self.ips.setdefault(vni, {})
        by_mac = self.mac_ips.setdefault(vni, {})
        present = not n.deleted and bool(n.state & _PRESENT) and n.mac is not None
        old = ips.get(ip)
        out: list[LocalMac] = []
        if old is not None and (not present or old != n.mac):
            del ips[ip]
            on_old = by_mac.get(old)
            if on_old is not None:
                on_old.discard(ip)
                if not on_old:
                    del by_mac[old]
            if (vni, ip) in self.reported:
                self.reported.discard((vni, ip))
                out.append(LocalMac(vni, old, ip, present=False))
        if present and n.mac is not None:
            ips[ip] = n.mac
            by_mac.setdefault(n.mac, set()).add(ip)
            sticky = self.macs.get(vni, {}).get(n.mac)
            if sticky is not None and (vni, ip) not in self.reported:
                self.reported.add((vni, ip))
                out.append(LocalMac(vni, n.mac, ip, present=True, sticky=sticky))
        return out

    def vanished(self, vni: int, macs: set[str], ips: set[str], dm: DeviceMap) -> list[LocalMac]:
        """After a re-dump (e.g. events were lost): withdraw what the dump no longer shows."""
        out: list[LocalMac] = []
        for ip in [ip for ip in self.ips.get(vni, {}) if ip not in ips]:
            gone = nl.Neigh(True, 0, 0, 0, 0, None, ip, 0, 0, None)
            out += self.on_neigh(gone, vni)
        for mac in [m for m in self.macs.get(vni, {}) if m not in macs]:
            gone = nl.Neigh(True, nl.AF_BRIDGE, 0, 0, nl.NTF_MASTER, mac, None, 0, 0, None)
            out += self.on_port_fdb(gone, vni, dm)
        return out

    def forget_vni(self, vni: int) -> None:
        self.macs.pop(vni, None)
        self.ips.pop(vni, None)
        self.mac_ips.pop(vni, None)
        self.reported = {r for r in self.reported if r[0] != vni}

    def counts(self) -> dict[str, int]:
        return {
            "local_macs": sum(map(len, self.macs.values())),
            "local_ips": len(self.reported),
        }
