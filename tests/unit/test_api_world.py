"""A small but real EVPN world for the API tests: a real Core fed with real events.

Not a fake: the state the queries read is what evpnd.core computes from evpnd.core.events. Only the
edges (speaker status, dataplane stats and kernel diff) are canned, as the daemon's context
would return them; `clear_duplicates` calls the core directly, as the owner task does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from evpnd.config import Config, core_settings, parse_config
from evpnd.core import Core
from evpnd.core.events import LocalMac, PeerOpen, PeerState, RouteUpdate
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey

ME, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
MAC_LOCAL = "02:aa:00:00:01:01"  # learned here, with an IP
MAC_REMOTE = "02:aa:00:00:02:01"  # behind B, with an IP
MAC_MOVED = "02:aa:00:00:01:05"  # was behind B (seq 3), then learned here: we advertise seq 4
MAC_DUP = "02:aa:00:00:0d:0d"  # flip-flopped between here and B: duplicate, frozen
MAC_STALE = "02:aa:00:00:03:01"  # behind C, whose session went down (graceful restart)
MAC_FOREIGN = "02:aa:00:00:09:09"  # an RT nobody imports: rejected_no_vni

CONFIG = {
    "router_id": ME,
    "asn": 65001,
    "vtep": ME,
    "peers": [
        {"address": B, "remote_as": 65002, "description": "leaf b"},
        {"address": C, "remote_as": 65003},
    ],
    "l2vnis": [{"vni": 100, "bridge": "br100"}, {"vni": 200, "bridge": "br200"}],
    "l3vnis": [
        {"vni": 5000, "table": 5000, "l2vnis": [100], "advertise_prefixes": ["10.9.0.0/24"]}
    ],
    "duplicate_detection": {"max_moves": 2, "time": 60},
    "exabgp": {"graceful_restart": 120},
}


def attrs(asn: int, vni: int, seq: int = 0, **kw) -> Attributes:
    return Attributes(
        route_targets=(f"{asn}:{vni}",),
        encap=8,
        as_path=(asn,),
        mobility_seq=seq,
        has_mobility=seq > 0,
        **kw,
    )


def type2(peer: str, rd: str, mac: str, ip: str | None = None, seq: int = 0, asn: int = 65002):
    return Path(MacIpKey(rd, 0, mac, ip), peer, peer, vni=100, attrs=attrs(asn, 100, seq))


@dataclass
class World:
    """An ApiContext (see evpnd/api/__init__.py) around a real Core."""

    cfg: Config
    core: Core
    started_at: float = field(default_factory=lambda: time.time() - 3725)
    reloads: int = 0
    diff: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    status: dict = field(default_factory=lambda: {"exabgp_pid": 4242, "restarts": 1})
    cleared: list = field(default_factory=list)

    def speaker_status(self) -> dict:
        return self.status

    def dataplane_stats(self) -> dict:
        return self.stats

    def kernel_diff(self) -> dict:
        return self.diff

    async def clear_duplicates(self, vni: int | None, mac: str | None) -> dict:
        self.cleared.append((vni, mac))
        self.core.clear_duplicates(time.time(), vni=vni, mac=mac)
        return {"cleared": True}

    async def clear_peer(self, peer: str | None) -> list[str]:
        return self.core.clear_peer(time.time(), peer)

    def apply(self, event) -> None:
        self.core.apply(event, time.time())


def make_world() -> World:
    cfg = parse_config(CONFIG)
    core = Core(core_settings(cfg))
    w = World(cfg, core)
    core.start(time.time())
    w.apply(PeerState(B, "up"))
    w.apply(PeerOpen(C, 120, {"l2vpn evpn": True}))  # C negotiated graceful restart
    w.apply(PeerState(C, "up"))
    imet = Path(ImetKey(f"{B}:1", 0, B), B, B, vni=100,
                attrs=attrs(65002, 100, pmsi=Pmsi(6, 100, B)))  # fmt: skip
    prefix = Path(PrefixKey(f"{B}:3", 0, "10.8.0.0/24"), B, B, vni=5000,
                  attrs=attrs(65002, 5000, router_mac="02:00:00:00:00:02"))  # fmt: skip
    foreign = Path(MacIpKey(f"{B}:9", 0, MAC_FOREIGN, None), B, B, vni=999,
                   attrs=attrs(65002, 999))  # fmt: skip
    w.apply(RouteUpdate(B, [
        type2(B, f"{B}:1", MAC_REMOTE),
        type2(B, f"{B}:1", MAC_REMOTE, "10.1.0.21"),
        type2(B, f"{B}:1", MAC_MOVED, seq=3),
        type2(B, f"{B}:1", MAC_DUP),
        imet, prefix, foreign,
    ]))  # fmt: skip
    w.apply(RouteUpdate(C, [type2(C, f"{C}:1", MAC_STALE, asn=65003)]))
    w.apply(LocalMac(100, MAC_LOCAL))
    w.apply(LocalMac(100, MAC_LOCAL, ip="10.1.0.11"))
    w.apply(LocalMac(100, MAC_MOVED))
    # MAC_DUP: learned here (move 1), then B claims it with a higher sequence (move 2): frozen.
    w.apply(LocalMac(100, MAC_DUP))
    w.apply(RouteUpdate(B, [type2(B, f"{B}:1", MAC_DUP, seq=5)]))
    w.apply(PeerState(C, "down"))  # graceful restart: C's paths stay, stale
    return w


def test_world_is_consistent():
    w = make_world()
    core = w.core
    assert core.mobility.duplicates() == [(100, MAC_DUP)]
    assert core.rib.stale.get(C)
    assert core.counters["rejected_no_vni"] == 1
    fresh = core.compute_desired()
    assert fresh.fdb == core.desired.fdb and fresh.neigh == core.desired.neigh
