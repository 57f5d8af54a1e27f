"""Small fabrics for end-to-end tests: leaves (evpnd or FRR) joined by veth, hosts behind them.

Underlay: every leaf pair shares a /30 (or, with family=6, an IPv6-only /64); each leaf's VTEP is
its address on that link, so no underlay routing is needed. Hosts are namespaces with one
interface on a leaf's access port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evpnd.lab.evpnd_node import EvpndNode
from evpnd.lab.frr import Frr, evpn_leaf_conf
from evpnd.lab.netns import Lab, Netns, wait_for


@dataclass
class Host:
    ns: Netns
    mac: str
    ip: str  # without prefix length


@dataclass
class Leaf:
    ns: Netns
    vtep: str
    asn: int
    router_id: str = ""  # BGP router id (IPv4); the VTEP when empty (an IPv4 underlay)
    node: EvpndNode | None = None
    frr: Frr | None = None
    hosts: list[Host] = field(default_factory=list)

    def fdb(self, dev: str) -> list[str]:
        return [ln for ln in self.ns.run(["bridge", "fdb", "show", "dev", dev]).splitlines() if ln]

    def remote_macs(self, dev: str) -> dict[str, str]:
        """MAC -> VTEP of the `dst` FDB entries on a vxlan device (excluding flood entries)."""
        out = {}
        for line in self.fdb(dev):
            m = re.match(r"([0-9a-f:]{17}) dst (\S+)", line)
            if m and m.group(1) != "00:00:00:00:00:00":
                out[m.group(1)] = m.group(2)
        return out

    def flood(self, dev: str) -> set[str]:
        out = set()
        for line in self.fdb(dev):
            m = re.match(r"00:00:00:00:00:00 dst (\S+)", line)
            if m:
                out.add(m.group(1))
        return out


def host_mac(leaf_index: int, host_index: int) -> str:
    return f"02:aa:00:00:{leaf_index:02x}:{host_index:02x}"


def add_host(
    lab: Lab, leaf: Leaf, name: str, port: str, ip: str, mac: str, ipv6: bool = True
) -> Host:
    """A host namespace with eth0 (MAC, IP/24) wired to `port` on the leaf. ipv6=False: a host
    that speaks only when a test makes it (a link coming up otherwise sends router
    solicitations and DAD probes at once, and the leaf learns the host from them)."""
    ns = lab.netns(name)
    if not ipv6:
        for conf in ("all", "default"):
            ns.run(["sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1"])
    lab.link(ns, "eth0", leaf.ns, port)
    ns.ip("link", "set", "eth0", "address", mac)
    ns.ip("addr", "add", f"{ip}/24", "dev", "eth0")
    host = Host(ns, mac, ip)
    leaf.hosts.append(host)
    return host


def four_hosts(lab: Lab, a: Leaf, b: Leaf) -> dict[str, Host]:
    """The two-VNI fabric's hosts: h1 (VNI 100, port p1) and h4 (VNI 200, p4) behind leaf A,
    h2 (VNI 100, p2) and h3 (VNI 200, p3) behind B, all in 10.100.0.0/24 (so only the VNI
    keeps h1 from h3). Goes with `two_vnis`."""
    return {
        "h1": add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1)),
        "h4": add_host(lab, a, "h4", "p4", "10.100.0.4", host_mac(1, 4)),
        "h2": add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2)),
        "h3": add_host(lab, b, "h3", "p3", "10.100.0.3", host_mac(2, 3)),
    }


def two_vnis(leaf: str, **vni100: object) -> list[dict]:
    """`l2vnis` of leaf "a" or "b" of the `four_hosts` fabric: VNI 100 (br100) and VNI 200
    (br200) on that leaf's two access ports; `vni100` adds keys to VNI 100 (an SVI, ...)."""
    p100, p200 = ("p1", "p4") if leaf == "a" else ("p2", "p3")
    return [
        {"vni": 100, "bridge": "br100", "access_ports": [p100], **vni100},
        {"vni": 200, "bridge": "br200", "access_ports": [p200]},
    ]


def evpnd_config(leaf: Leaf, peers: list[Leaf], l2vnis: list[dict], **extra) -> dict:
    cfg = {
        "router_id": leaf.router_id or leaf.vtep,
        "asn": leaf.asn,
        "vtep": leaf.vtep,
        "peers": [{"address": p.vtep, "remote_as": p.asn, "hold_time": 9} for p in peers],
        "l2vnis": l2vnis,
        "sweep_hold_time": 5,
    }
    cfg.update(extra)
    return cfg


def two_leaves(lab: Lab, family: int = 4) -> tuple[Leaf, Leaf]:
    if family == 6:
        return two_leaves_v6(lab)
    a = Leaf(lab.netns("la"), "10.0.0.1", 65001)
    b = Leaf(lab.netns("lb"), "10.0.0.2", 65002)
    lab.link(a.ns, "uplink", b.ns, "uplink", "10.0.0.1/30", "10.0.0.2/30")
    return a, b


V6_UNDERLAY = "2001:db8:77::"


def two_leaves_v6(lab: Lab) -> tuple[Leaf, Leaf]:
    """Two leaves on an IPv6-only underlay (no IPv4 address on the link): VTEPs and BGP
    sessions are 2001:db8:77::1 and ::2. nodad: the addresses are usable at once (duplicate
    address detection would hold them tentative for a second or more, failing the bind)."""
    a = Leaf(lab.netns("la"), f"{V6_UNDERLAY}1", 65001, router_id="10.0.0.1")
    b = Leaf(lab.netns("lb"), f"{V6_UNDERLAY}2", 65002, router_id="10.0.0.2")
    lab.link(a.ns, "uplink", b.ns, "uplink")
    for leaf in (a, b):
        leaf.ns.ip("addr", "add", f"{leaf.vtep}/64", "dev", "uplink", "nodad")
    return a, b


def start_evpnd(lab: Lab, leaf: Leaf, cfg: dict) -> EvpndNode:
    node = EvpndNode(leaf.ns, cfg)
    lab.on_cleanup(node.remove)
    leaf.node = node
    node.start()
    return node


def make_frr_leaf(lab: Lab, leaf: Leaf, peers: list[Leaf], vnis: dict[int, list[str]]) -> Frr:
    """An FRR leaf with one bridge + vxlan per VNI (access ports from `vnis`)."""
    for vni, ports in vnis.items():
        ns = leaf.ns
        ns.ip("link", "add", f"br{vni}", "type", "bridge")
        ns.ip("link", "add", f"vx{vni}", "type", "vxlan", "id", str(vni), "local", leaf.vtep,
              "dstport", "4789", "nolearning")  # fmt: skip
        ns.ip("link", "set", f"vx{vni}", "master", f"br{vni}")
        ns.run(["bridge", "link", "set", "dev", f"vx{vni}", "learning", "off"])
        ns.run(["bridge", "link", "set", "dev", f"vx{vni}", "neigh_suppress", "on"])
        for port in ports:
            ns.ip("link", "set", port, "master", f"br{vni}")
        ns.ip("link", "set", f"vx{vni}", "up")
        ns.ip("link", "set", f"br{vni}", "up")
    conf = evpn_leaf_conf(leaf.asn, leaf.vtep, [(p.vtep, p.asn) for p in peers])
    frr = Frr(leaf.ns, conf).start()
    lab.on_cleanup(frr.remove)
    leaf.frr = frr
    return frr


def wait_ping(src: Host, dst: Host, timeout: float = 30.0) -> None:
    wait_for(lambda: src.ns.ping(dst.ip, timeout=0.5), timeout, interval=0.2,
             what=f"ping {src.ip} -> {dst.ip}")  # fmt: skip
