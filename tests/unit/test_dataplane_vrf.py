"""The pure parts of VRF L3VNIs: which table the VRF uses and which bridges it holds. The VRF
itself is made and exercised in the full-kernel tier (tests/vm), since this kernel has no VRF."""

from __future__ import annotations

import pytest

from evpnd.config import parse_config
from evpnd.dataplane.devices import DeviceError, vrf_members, vrf_table


def cfg(**l3):
    return parse_config(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "vtep": "10.0.0.1",
            "l2vnis": [
                {"vni": 100, "bridge": "br100"},
                {"vni": 101, "bridge": "tenant-b"},
                {"vni": 102, "bridge": "br102"},
            ],
            "l3vnis": [{"vni": 5000, **l3}],
        }
    )


def test_table_is_the_configured_one_else_the_vni():
    assert vrf_table(cfg(vrf="vrf-blue", table=42).l3vnis[0]) == 42
    assert vrf_table(cfg(vrf="vrf-blue").l3vnis[0]) == 5000


def test_an_adopted_vrf_keeps_its_table_unless_another_is_configured():
    assert vrf_table(cfg(vrf="vrf-blue").l3vnis[0], existing=7) == 7
    assert vrf_table(cfg(vrf="vrf-blue", table=7).l3vnis[0], existing=7) == 7
    with pytest.raises(DeviceError, match="uses table 7, configured 42"):
        vrf_table(cfg(vrf="vrf-blue", table=42).l3vnis[0], existing=7)


def test_members_are_the_l3_bridge_and_the_svis_of_its_l2vnis_only():
    c = cfg(vrf="vrf-blue", l2vnis=[101, 100])
    assert vrf_members(c, c.l3vnis[0]) == ["br5000", "tenant-b", "br100"]
    c = cfg(vrf="vrf-blue", bridge="l3br")
    assert vrf_members(c, c.l3vnis[0]) == ["l3br"]
