"""Builders shared by the core's unit tests: a small config and remote paths."""

from __future__ import annotations

from typing import Any

from evpnd.config import Config, core_settings, parse_config
from evpnd.core import Core
from evpnd.core.events import RouteUpdate
from evpnd.core.rib import ImportMap
from evpnd.routes.evpn import Attributes, ImetKey, MacIpKey, Path, Pmsi, PrefixKey

ROUTER_MAC = "02:00:00:00:50:00"


def make_cfg(**overrides: Any) -> Config:
    """Us: AS 65001, VTEP 192.0.2.1; L2VNIs 100 and 200 (100 in L3VNI 5000), auto RTs."""
    data: dict[str, Any] = {
        "router_id": "192.0.2.1",
        "asn": 65001,
        "vtep": "192.0.2.1",
        "l2vnis": [{"vni": 100, "bridge": "br100"}, {"vni": 200, "bridge": "br200"}],
        "l3vnis": [
            {
                "vni": 5000,
                "table": 5000,
                "router_mac": ROUTER_MAC,
                "l2vnis": [100],
                "advertise_prefixes": ["10.1.0.0/24"],
            }
        ],
    }
    data.update(overrides)
    return parse_config(data)


def make_core(now: float = 0.0, **overrides: Any) -> Core:
    core = Core(core_settings(make_cfg(**overrides)))
    core.start(now)
    core.desired.drain()
    return core


def peer_of(vtep: str) -> str:
    """Peers are named by address; by default each remote VTEP is its own peer 10.0.0.x."""
    if ":" in vtep:
        return "fd00::" + vtep.rsplit(":", 1)[1]
    return "10.0.0." + vtep.rsplit(".", 1)[1]


def t2(
    vtep: str,
    mac: str,
    ip: str | None = None,
    *,
    seq: int = 0,
    sticky: bool = False,
    vni: int = 100,
    rts: tuple[str, ...] | None = None,
    rd: str | None = None,
    peer: str | None = None,
    l3vni: int = 0,
    rmac: str | None = None,
    as_path: tuple[int, ...] | None = None,
    originator_id: str | None = None,
) -> Path:
    attrs = Attributes(
        route_targets=rts if rts is not None else (f"65002:{vni}",),
        encap=8,
        mobility_seq=seq,
        sticky=sticky,
        has_mobility=bool(seq or sticky),
        router_mac=rmac,
        as_path=as_path if as_path is not None else (65002,),
        originator_id=originator_id,
    )
    key = MacIpKey(rd or f"{vtep}:{vni}", 0, mac, ip)
    return Path(key, peer or peer_of(vtep), vtep, vni=vni, l3vni=l3vni, attrs=attrs)


def t3(
    vtep: str,
    *,
    vni: int = 100,
    rts: tuple[str, ...] | None = None,
    peer: str | None = None,
    pmsi_endpoint: str | None = None,
) -> Path:
    attrs = Attributes(
        route_targets=rts if rts is not None else (f"65002:{vni}",),
        encap=8,
        as_path=(65002,),
        pmsi=Pmsi(6, vni, pmsi_endpoint or vtep),
    )
    return Path(
        ImetKey(f"{vtep}:{vni}", 0, vtep), peer or peer_of(vtep), vtep, vni=vni, attrs=attrs
    )


def t5(
    vtep: str,
    prefix: str,
    *,
    vni: int = 5000,
    rmac: str | None = "02:aa:00:00:00:01",
    rts: tuple[str, ...] | None = None,
    peer: str | None = None,
) -> Path:
    attrs = Attributes(
        route_targets=rts if rts is not None else (f"65002:{vni}",),
        encap=8,
        router_mac=rmac,
        as_path=(65002,),
    )
    gw = "::" if ":" in prefix else "0.0.0.0"
    return Path(
        PrefixKey(f"{vtep}:{vni}", 0, prefix),
        peer or peer_of(vtep),
        vtep,
        vni=vni,
        gateway=gw,
        attrs=attrs,
    )


def announce(*paths: Path) -> list[RouteUpdate]:
    """One UPDATE per peer, in order."""
    out: list[RouteUpdate] = []
    for p in paths:
        if out and out[-1].peer == p.peer:
            out[-1].announced.append(p)
        else:
            out.append(RouteUpdate(p.peer, announced=[p]))
    return out


def withdraw(*paths: Path) -> list[RouteUpdate]:
    return [RouteUpdate(p.peer, withdrawn=[p.key]) for p in paths]


def apply_all(core: Core, updates: list, now: float = 0.0):
    from evpnd.core import Effects

    effects = Effects()
    for u in updates:
        effects.extend(core.apply(u, now))
    return effects


def assert_consistent(core: Core) -> None:
    assert core.desired.snapshot() == core.compute_desired().snapshot()


def rd_for(core: Core, vni: int) -> str:
    """The RD the core uses for one of its VNIs (from its settings)."""
    for item in (*core.settings.l2vnis, *core.settings.l3vnis):
        if item.vni == vni:
            return item.rd
    raise KeyError(vni)


def import_map(cfg: Config) -> ImportMap:
    settings = core_settings(cfg)
    return ImportMap(settings.l2vnis, settings.l3vnis)
