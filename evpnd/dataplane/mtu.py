"""MTU arithmetic for every overlay device evpnd owns: the encapsulation's exact overhead and the
overlay MTU that the underlay path can carry without fragmenting (VXLAN sets DF by default over
IPv6 and the kernel drops an oversized inner frame, so a wrong MTU is a black hole).

overlay MTU = underlay MTU - overhead. The overlay MTU is the inner IP packet's size; what the
encapsulation adds on top of it:

    type     outer IP (v4/v6)  UDP  header            inner Ethernet  key  total v4/v6
    vxlan    20 / 40           8    8 (RFC 7348)      14              -    50 / 70
    geneve   20 / 40           8    8 + options       14              -    50 / 70 (+ options)
    gretap   20 / 40           -    4 (RFC 2784)      14              +4   38 / 58 (+4)
    gre      20 / 40           -    4                 -               +4   24 / 44 (+4)

IPv6 GRE devices are made with `encaplimit none`: otherwise ip6gre adds an 8-byte destination
options header (RFC 2473 tunnel encapsulation limit) that the table above does not count.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

IP_HEADER = {4: 20, 6: 40}
UDP_HEADER = 8
ETHERNET_HEADER = 14
TUNNEL_HEADER = {"vxlan": 8, "geneve": 8, "gretap": 4, "gre": 4}
UDP_TYPES = frozenset({"vxlan", "geneve"})
ETHERNET_TYPES = frozenset({"vxlan", "geneve", "gretap"})
GRE_KEY = 4
FALLBACK_UNDERLAY_MTU = 1500  # no route to the remote (yet): what a plain Ethernet link has
MINIMUM_GOOD = 1500  # hosts assume 1500; less needs their MTU lowered too (a warning)


@dataclass(frozen=True)
class Overhead:
    """The bytes one encapsulation adds, broken down as `evpnctl mtu` shows them."""

    type: str
    family: int
    outer_ip: int
    udp: int
    header: int  # the VXLAN/GENEVE/GRE header without options or key
    inner_ethernet: int
    key: int
    options: int

    @property
    def total(self) -> int:
        return (
            self.outer_ip + self.udp + self.header + self.inner_ethernet + self.key + self.options
        )

    def as_dict(self) -> dict[str, int | str]:
        return {**asdict(self), "total": self.total}


def overhead(kind: str, family: int, key: bool = False, options: int = 0) -> Overhead:
    """The overhead of `kind` over an IPv4 (4) or IPv6 (6) underlay. GENEVE options come in
    multiples of 4 bytes (RFC 8926 section 3.4: Opt Len counts 4-byte words, at most 252)."""
    if kind not in TUNNEL_HEADER:
        raise ValueError(f"unknown tunnel type {kind!r}")
    if family not in IP_HEADER:
        raise ValueError(f"unknown address family {family!r}")
    if key and kind not in ("gre", "gretap"):
        raise ValueError(f"{kind} has no GRE key")
    if options and kind != "geneve":
        raise ValueError(f"{kind} has no options")
    if options < 0 or options % 4 or options > 252:
        raise ValueError(f"GENEVE options are 0-252 bytes in 4-byte words, not {options}")
    return Overhead(
        type=kind,
        family=family,
        outer_ip=IP_HEADER[family],
        udp=UDP_HEADER if kind in UDP_TYPES else 0,
        header=TUNNEL_HEADER[kind],
        inner_ethernet=ETHERNET_HEADER if kind in ETHERNET_TYPES else 0,
        key=GRE_KEY if key else 0,
        options=options,
    )


@dataclass(frozen=True)
class MtuPlan:
    """One device's MTU: where it came from and what it is."""

    device: str
    overhead: Overhead
    underlay_interface: str | None  # egress of the route to the remote; None: not found
    underlay_mtu: int
    overlay_mtu: int
    source: str  # "derived" | "set" (the tunnel's mtu:) | "underlay_mtu" (the override)
    remote: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "type": self.overhead.type,
            "remote": self.remote,
            "underlay_interface": self.underlay_interface,
            "underlay_mtu": self.underlay_mtu,
            "overhead": self.overhead.as_dict(),
            "overlay_mtu": self.overlay_mtu,
            "source": self.source,
        }


def plan(
    device: str,
    ovh: Overhead,
    underlay_interface: str | None,
    interface_mtu: int | None,
    *,
    override_underlay: int | None = None,
    set_mtu: int | None = None,
    remote: str | None = None,
) -> MtuPlan:
    """Decide one device's MTU: the tunnel's own `mtu:` wins, then the `underlay_mtu`
    override, then the egress interface's MTU (derived), else the plain-Ethernet fallback."""
    if override_underlay is not None:
        underlay, source = override_underlay, "underlay_mtu"
    else:
        underlay, source = (interface_mtu or FALLBACK_UNDERLAY_MTU), "derived"
    overlay = underlay - ovh.total
    if set_mtu is not None:
        overlay, source = set_mtu, "set"
    return MtuPlan(device, ovh, underlay_interface, underlay, overlay, source, remote)


def warnings(plans: list[MtuPlan], bridge_ports: dict[str, dict[str, int]]) -> list[str]:
    """What an operator must hear about: overlay MTUs under 1500, a set MTU larger than the
    path carries, and a bridge whose ports (name -> MTU, access ports too) differ."""
    out: list[str] = []
    for p in plans:
        if p.overlay_mtu < MINIMUM_GOOD:
            out.append(
                f"{p.device}: overlay MTU {p.overlay_mtu} < {MINIMUM_GOOD} (underlay "
                f"{p.underlay_interface or '(no route, assumed)'} MTU {p.underlay_mtu} - "
                f"{p.overhead.total} bytes "
                f"of {p.overhead.type}): hosts need their MTU lowered"
            )
        if p.source == "set" and p.overlay_mtu > p.underlay_mtu - p.overhead.total:
            out.append(
                f"{p.device}: mtu {p.overlay_mtu} set, but the underlay carries only "
                f"{p.underlay_mtu - p.overhead.total}: full-size frames are dropped"
            )
    for bridge, mtus in sorted(bridge_ports.items()):
        if len(set(mtus.values())) > 1:
            listed = ", ".join(f"{d} {m}" for d, m in sorted(mtus.items()))
            out.append(
                f"{bridge}: ports with different MTUs ({listed}); the bridge takes the least"
            )
    return out
