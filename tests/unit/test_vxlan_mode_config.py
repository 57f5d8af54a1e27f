"""`vxlan_mode: single` and the per-L2VNI `vlan:` (issue 9 item 5): the default keeps the
per-VNI devices, every bad combination exits 2 naming the field."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from evpnd.config import ConfigError, parse_config
from evpnd.vxlan_mode import single_names

BASE = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "192.0.2.1"}
L2 = [
    {"vni": 100, "bridge": "br0", "vlan": 10, "access_ports": ["h1"]},
    {"vni": 200, "bridge": "br0", "vlan": 20, "access_ports": ["h2"]},
]


def problems(**cfg) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, **cfg}, "test.yaml")
    return info.value.problems


def test_default_is_per_vni_and_unchanged():
    cfg = parse_config({**BASE, "l2vnis": [{"vni": 100, "bridge": "br100"}]}, "t.yaml")
    assert cfg.vxlan_mode == "per-vni"
    assert cfg.l2vnis[0].vlan is None and cfg.l2vnis[0].device == "vx100"


def test_single_mode_shares_one_bridge_and_one_vxlan_device():
    cfg = parse_config({**BASE, "vxlan_mode": "single", "l2vnis": L2}, "t.yaml")
    assert [v.vlan for v in cfg.l2vnis] == [10, 20]
    assert single_names(cfg) == ("br0", "vxlan0")
    named = [{**v, "vxlan_device": "vxd"} for v in L2]
    cfg = parse_config({**BASE, "vxlan_mode": "single", "l2vnis": named}, "t.yaml")
    assert single_names(cfg) == ("br0", "vxd")


@pytest.mark.parametrize(
    ("mode", "l2vnis", "field", "reason"),
    [
        ("single", [L2[0], {**L2[1], "vlan": None}], "l2vnis[1].vlan", "required"),
        ("single", [L2[0], {**L2[1], "vlan": 10}], "l2vnis[1].vlan", "duplicate VLAN 10"),
        ("per-vni", [{"vni": 100, "bridge": "br100", "vlan": 10}], "l2vnis[0].vlan",
         "only with vxlan_mode: single"),
        ("single", [L2[0], {**L2[1], "bridge": "br1"}], "l2vnis[1].bridge", "one bridge"),
        ("single", [L2[0], {**L2[1], "vxlan_device": "vxd"}], "l2vnis[1].vxlan_device",
         "one VXLAN device"),
        ("single", [L2[0], {**L2[1], "svi_address": "10.0.0.1/24"}], "l2vnis[1].svi_address",
         "not supported"),
    ],
)  # fmt: skip
def test_each_bad_combination_names_its_field(mode, l2vnis, field, reason):
    l2vnis = [{k: v for k, v in item.items() if v is not None} for item in l2vnis]
    found = problems(vxlan_mode=mode, l2vnis=l2vnis)
    assert any(f == field and reason in why for f, why in found), found


def test_vlan_range_and_mode_values():
    assert any(f == "l2vnis[0].vlan" for f, _ in problems(
        vxlan_mode="single", l2vnis=[{**L2[0], "vlan": 4095}]))  # fmt: skip
    assert any(f == "vxlan_mode" for f, _ in problems(vxlan_mode="shared", l2vnis=L2))


def test_shared_devices_are_no_clash_but_an_l3vni_on_them_is():
    ok = parse_config({**BASE, "vxlan_mode": "single", "l2vnis": L2,
                       "l3vnis": [{"vni": 5000, "table": 5000}]}, "t.yaml")  # fmt: skip
    assert ok.l3vnis[0].device == "vx5000"
    found = problems(
        vxlan_mode="single",
        l2vnis=L2,
        l3vnis=[{"vni": 5000, "table": 5000, "vxlan_device": "vxlan0"}],
    )
    assert any(f == "l3vnis[0]" and "vxlan0" in why for f, why in found), found


def test_a_missing_vlan_exits_2_naming_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    bad = [L2[0], {k: v for k, v in L2[1].items() if k != "vlan"}]
    path.write_text(yaml.safe_dump({**BASE, "vxlan_mode": "single", "l2vnis": bad}))
    res = subprocess.run(
        [sys.executable, "-m", "evpnd.cli.daemon_main", "--check-config", "-c", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 2, res
    assert f"{path}: l2vnis[1].vlan:" in res.stderr and "Traceback" not in res.stderr


def test_show_vni_names_the_shared_device():
    cfg = parse_config({**BASE, "vxlan_mode": "single", "l2vnis": L2}, "t.yaml")
    assert [cfg.l2_device(v) for v in cfg.l2vnis] == ["vxlan0", "vxlan0"]
    per_vni = parse_config({**BASE, "l2vnis": [{"vni": 100, "bridge": "br100"}]}, "t.yaml")
    assert per_vni.l2_device(per_vni.l2vnis[0]) == "vx100"
