"""The pure parts of VRF L3VNIs: which table the VRF uses and which bridges it holds. The VRF
itself is made and exercised in the full-kernel tier (tests/vm), since this kernel has no VRF."""

from __future__ import annotations

import pytest

from evpnd.config import parse_config
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.devices import (
    VRF_DEFAULTS,
    DeviceError,
    DeviceMap,
    VniDevices,
    vrf_members,
    vrf_table,
)
from evpnd.dataplane.mirror import Mirror


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


def route(prefix: str, rtype: int, proto: int = 4) -> nl.Route:
    return nl.Route(False, 2, 200, proto, prefix, None, 0, False, rtype)


def test_the_vrf_catch_all_is_neither_owned_nor_a_conflict_for_a_type5_default():
    dm = DeviceMap()
    dm.add(VniDevices(200, True, 20, 21, "br200", "vx200", table=200, vrf_name="vrf-blue"))
    mirror = Mirror()
    for prefix in VRF_DEFAULTS:
        assert mirror.on_route(route(prefix, nl.RTN_UNREACHABLE), dm) is None
    assert mirror.foreign_routes.get(200, set()) == set() and mirror.routes.get(200, {}) == {}
    # Anything else someone put in the table is foreign, as in a plain L3VNI table.
    mirror.on_route(route("10.9.0.0/16", nl.RTN_UNREACHABLE), dm)
    mirror.on_route(route("0.0.0.0/0", nl.RTN_UNICAST), dm)
    assert mirror.foreign_routes[200] == {"10.9.0.0/16", "0.0.0.0/0"}


def test_route_type_is_parsed():
    body = nl.route_body(200, "10.2.0.0/24", "10.0.0.2", 5)
    assert nl.parse_route(nl.RTM_NEWROUTE, body, 0, len(body)).rtype == nl.RTN_UNICAST
