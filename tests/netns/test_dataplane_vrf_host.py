"""An L3VNI with `vrf:` on a kernel without VRF support (this host): the VNI is reported in the
dataplane's device problems, nothing is made for it, and the rest of the dataplane works. With
VRF support the same configuration is exercised in the full-kernel tier (tests/vm)."""

from __future__ import annotations

import subprocess

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import FDB, ROUTE, DesiredState, RouteNextHop
from evpnd.dataplane import Dataplane

pytestmark = pytest.mark.netns


def has_vrf(ns) -> bool:
    probe = subprocess.run(
        ns.cmd("ip", "link", "add", "vrfprobe", "type", "vrf", "table", "9"), capture_output=True
    )
    if probe.returncode == 0:
        ns.ip("link", "del", "vrfprobe")
    return probe.returncode == 0


async def test_vrf_l3vni_without_kernel_vrf_is_a_device_problem_not_a_crash(lab):
    ns = lab.netns("dp")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    cfg = parse_config(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "vtep": "10.0.0.1",
            "sweep_hold_time": 0,
            "l2vnis": [{"vni": 100, "bridge": "br100", "svi_address": "10.1.0.1/24"}],
            "l3vnis": [{"vni": 200, "vrf": "vrf-blue", "l2vnis": [100]}],
        }
    )
    desired = DesiredState()
    desired.fdb[100] = {"02:00:00:00:00:02": "10.0.0.2"}
    desired.routes[200] = {"10.2.0.0/24": RouteNextHop("10.0.0.2", "02:ee:00:00:00:02")}
    desired.dirty |= {(FDB, 100, "02:00:00:00:00:02"), (ROUTE, 200, "10.2.0.0/24")}
    if has_vrf(ns):
        pytest.fail("this kernel has VRFs: the VM tier's tests/vm cover VRF L3VNIs there")
    dp = Dataplane(cfg, lambda e: None, netns=ns.name)
    await dp.start(desired)
    try:
        stats = dp.stats()
        assert stats["vnis"] == [100]
        assert len(stats["device_problems"]) == 1
        assert stats["device_problems"][0].startswith("vni 200: ")
        links = ns.ip("-br", "link")
        assert "br200" not in links and "vx200" not in links and "vrf-blue" not in links
        assert "br100" in links and "master" not in ns.ip("link", "show", "br100")
        # The L2VNI is programmed; the L3VNI's route is not, and nothing failed.
        assert "02:00:00:00:00:02 dst 10.0.0.2" in ns.run(["bridge", "fdb", "show", "dev", "vx100"])
        await dp.reconcile_all()
        assert dp.stats()["errors"] == 0
    finally:
        await dp.stop()
