"""Helpers for the Speaker's network tests and benchmarks: namespaces, FRR peers, paths."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path as FsPath

from evpnd.bgp.speaker import Speaker
from evpnd.config import Config, parse_config
from evpnd.core.events import Event, PeerState, RouteUpdate
from evpnd.lab.frr import Frr, evpn_leaf_conf
from evpnd.lab.netns import Lab, Netns
from evpnd.routes.evpn import LOCAL_PEER, Attributes, MacIpKey, Path


@dataclass
class Pair:
    """Two namespaces on one veth: a = 10.0.1.1 (VTEP 192.0.2.1), b = 10.0.1.2 (192.0.2.2)."""

    a: Netns
    b: Netns


def pair(lab: Lab) -> Pair:
    a, b = lab.netns("a"), lab.netns("b")
    lab.link(a, "eth0", b, "eth0", "10.0.1.1/24", "10.0.1.2/24")
    a.ip("addr", "add", "192.0.2.1/32", "dev", "lo")
    b.ip("addr", "add", "192.0.2.2/32", "dev", "lo")
    a.ip("route", "add", "192.0.2.2/32", "via", "10.0.1.2")
    b.ip("route", "add", "192.0.2.1/32", "via", "10.0.1.1")
    return Pair(a, b)


def add_vni(ns: Netns, vni: int, vtep: str) -> None:
    """A bridge + vxlan device, as FRR's zebra wants to learn a VNI."""
    ns.ip("link", "add", f"br{vni}", "type", "bridge")
    ns.ip("link", "add", f"vx{vni}", "type", "vxlan", "id", str(vni), "local", vtep,
          "dstport", "4789", "nolearning")  # fmt: skip
    ns.ip("link", "set", f"vx{vni}", "master", f"br{vni}")
    ns.ip("link", "set", f"vx{vni}", "up")
    ns.ip("link", "set", f"br{vni}", "up")


def frr_peer(lab: Lab, ns: Netns, neighbors: list[tuple[str, int]], extra: str = "") -> Frr:
    frr = Frr(ns, evpn_leaf_conf(65002, "192.0.2.2", neighbors, extra=extra))
    lab.on_cleanup(frr.remove)
    return frr.start()


def speaker_config(tmp: FsPath, router_id: str = "192.0.2.1", asn: int = 65001, **kw) -> Config:
    data = {
        "router_id": router_id,
        "asn": asn,
        "vtep": router_id,
        "runtime_dir": str(tmp),
        "peers": kw.pop("peers", []),
        "log_level": "info",
    }
    data.update(kw)
    return parse_config(data)


def peer(address: str, remote_as: int, local: str | None = None, **kw) -> dict:
    out = {"address": address, "remote_as": remote_as, "hold_time": 9, **kw}
    if local:
        out["local_address"] = local
    return out


def mac_paths(n: int, vni: int = 100, rd: str = "192.0.2.1:1", nh: str = "192.0.2.1",
              seq: int = 0, base: int = 0) -> list[Path]:  # fmt: skip
    attrs = Attributes(route_targets=(f"65001:{vni}",), encap=8, mobility_seq=seq,
                       has_mobility=seq > 0)  # fmt: skip
    out = []
    for i in range(base, base + n):
        b = i.to_bytes(4, "big")
        mac = f"02:00:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"
        out.append(Path(MacIpKey(rd, 0, mac, None), LOCAL_PEER, nh, vni, attrs=attrs))
    return out


@dataclass
class Recorder:
    """The emit callback of a test: every event, plus a count of routes per peer."""

    events: list[Event] = field(default_factory=list)
    routes: dict[tuple[str, object], Path] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, RouteUpdate):
            for key in event.withdrawn:
                self.routes.pop((event.peer, key), None)
            for path in event.announced:
                self.routes[(event.peer, path.key)] = path
        elif isinstance(event, PeerState) and event.state == "down":
            for k in [k for k in self.routes if k[0] == event.peer]:
                del self.routes[k]

    def states(self, peer: str) -> list[str]:
        return [e.state for e in self.events if isinstance(e, PeerState) and e.peer == peer]

    def state(self, peer: str) -> str:
        states = self.states(peer)
        return states[-1] if states else "idle"

    def from_peer(self, peer: str) -> list[Path]:
        return [p for (who, _), p in self.routes.items() if who == peer]


async def until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def frr_evpn_routes(frr: Frr) -> dict:
    """{'[2]:[0]:[48]:[mac]' (with RD) -> path dicts} from `show bgp l2vpn evpn json`."""
    data = frr.json("show bgp l2vpn evpn json")
    out = {}
    for rd, routes in data.items():
        if not isinstance(routes, dict) or ":" not in rd:
            continue
        for prefix, entry in routes.items():
            if isinstance(entry, dict) and "paths" in entry:
                out[(rd, prefix)] = entry["paths"]
    return out


def frr_received(frr: Frr, neighbor: str) -> int:
    data = frr.json("show bgp l2vpn evpn summary json")
    peers = data.get("peers", {})
    return int(peers.get(neighbor, {}).get("pfxRcd", 0))


def make_speaker(cfg: Config, ns: Netns, rec: Recorder, **kw) -> Speaker:
    return Speaker(cfg, rec, wrapper=ns.cmd(), **kw)
