"""The kernel features the project depends on exist in the full-kernel tier, made with pyroute2
as the dataplane makes devices: VRF (L3VNIs with `vrf:`), geneve and gretap (static tunnels)."""

from __future__ import annotations

import pytest
from pyroute2 import NetNS

pytestmark = pytest.mark.netns

KINDS = {
    "vrf": {"vrf_table": 1001},
    "geneve": {"geneve_id": 7, "geneve_remote": "192.0.2.2"},
    "gretap": {"gre_local": "192.0.2.1", "gre_remote": "192.0.2.2"},
    "vxlan": {"vxlan_id": 9, "vxlan_port": 4789, "vxlan_local": "192.0.2.1"},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_device_kind_can_be_created_with_pyroute2(lab, kind):
    ns = lab.netns("kind")
    with NetNS(ns.name) as ipr:
        ipr.link("add", ifname="t-dev", kind=kind, **KINDS[kind])
        link = ipr.link("get", ifname="t-dev")[0]
        assert link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == kind
        ipr.link("set", ifname="t-dev", state="up")
        if kind == "vrf":
            data = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            assert data.get_attr("IFLA_VRF_TABLE") == 1001
