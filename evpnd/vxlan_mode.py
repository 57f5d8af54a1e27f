"""`vxlan_mode:` — per-VNI VXLAN devices (the default) or one VXLAN device for every L2VNI.

In `single` mode (FRR 8.4+'s "single VXLAN device", Cumulus' SVD) all L2VNIs share one
VLAN-aware bridge and one VXLAN device made with `external` (collect metadata) and `vnifilter`;
each L2VNI is a VLAN on that bridge (`vlan:`), mapped to its VNI by the bridge's per-VLAN tunnel
mapping. The checks here name the field that is wrong, as (field path, reason); config.py calls
them from `cross_check`. L3VNIs keep their own bridge and VXLAN device in both modes.

Pure: the standard library only (the config objects are passed in).
"""

from __future__ import annotations

from typing import Any

MODES = ("per-vni", "single")
SINGLE = "single"
DEFAULT_SINGLE_VXLAN = "vxlan0"  # the VXLAN device's name when no L2VNI gives vxlan_device


def single_names(cfg: Any) -> tuple[str, str]:
    """(bridge, VXLAN device) of single mode: every L2VNI names the same ones (checked)."""
    first = cfg.l2vnis[0] if cfg.l2vnis else None
    bridge = first.bridge if first is not None else "br0"
    vxlan = (first.vxlan_device if first is not None else None) or DEFAULT_SINGLE_VXLAN
    return bridge, vxlan


def owners(
    cfg: Any, per_vni: list[tuple[str, int, tuple[str, ...]]]
) -> list[tuple[str, int, tuple[str, ...]]]:
    """The device owners config.py checks for clashes: in single mode the L2VNIs own one bridge
    and one VXLAN device together (named once, as l2vnis[0]), not one pair each."""
    if getattr(cfg, "vxlan_mode", "per-vni") != SINGLE or not cfg.l2vnis:
        return per_vni
    rest = [o for o in per_vni if not o[0].startswith("l2vnis[")]
    return [("l2vnis[0]", cfg.l2vnis[0].vni, single_names(cfg)), *rest]


def problems(cfg: Any) -> list[tuple[str, str]]:
    """`vlan:` given where it means nothing, missing or duplicated where it is the key, and
    what single mode cannot do (one bridge: no per-VNI bridges, SVIs or VRF membership)."""
    out: list[tuple[str, str]] = []
    single = getattr(cfg, "vxlan_mode", "per-vni") == SINGLE
    if not single:
        for i, item in enumerate(cfg.l2vnis):
            if item.vlan is not None:
                out.append((f"l2vnis[{i}].vlan", "only with vxlan_mode: single"))
        return out
    seen: dict[int, str] = {}
    bridge, vxlan = single_names(cfg)
    for i, item in enumerate(cfg.l2vnis):
        here = f"l2vnis[{i}]"
        if item.vlan is None:
            out.append((f"{here}.vlan", "required with vxlan_mode: single (1-4094)"))
        elif item.vlan in seen:
            out.append((f"{here}.vlan", f"duplicate VLAN {item.vlan} (also {seen[item.vlan]})"))
        else:
            seen[item.vlan] = f"{here}.vlan"
        if item.bridge != bridge:
            out.append((f"{here}.bridge", f"vxlan_mode: single has one bridge ({bridge}, as "
                        "l2vnis[0].bridge): every L2VNI names it"))  # fmt: skip
        if (item.vxlan_device or DEFAULT_SINGLE_VXLAN) != vxlan:
            out.append((f"{here}.vxlan_device", f"vxlan_mode: single has one VXLAN device "
                        f"({vxlan}): give it on every L2VNI or on none"))  # fmt: skip
        if item.svi_address is not None:
            out.append((f"{here}.svi_address", "not supported with vxlan_mode: single"))
    for i, l3 in enumerate(cfg.l3vnis):
        if l3.l2vnis:
            out.append((f"l3vnis[{i}].l2vnis", "not supported with vxlan_mode: single"))
    return out
