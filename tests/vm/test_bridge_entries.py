"""On a kernel with bridge VLAN support (Debian's), a bridge port gets VLAN 1 by default even with
VLAN filtering off, and an FDB entry added without a VLAN is then added twice: once without a
VLAN and once for VLAN 1. The bridges evpnd creates have no default PVID, so each remote MAC
costs one bridge entry, as on a kernel without VLAN support."""

from __future__ import annotations

import asyncio

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import FDB, DesiredState
from evpnd.dataplane import Dataplane

pytestmark = pytest.mark.netns

MACS = [f"02:bb:00:00:00:{i:02x}" for i in range(1, 6)]


async def started_dataplane(lab, name: str):
    """A namespace with the VTEP address on a veth, and a started Dataplane for VNI 100 in it."""
    ns = lab.netns(name)
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    for dev in ("u0", "u1"):
        ns.ip("link", "set", dev, "up")
    cfg = parse_config(
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "vtep": "10.0.0.1",
            "sweep_hold_time": 0,
            "l2vnis": [{"vni": 100, "bridge": "br100"}],
        }
    )
    desired = DesiredState()
    dp = Dataplane(cfg, lambda e: None, netns=ns.name)
    await dp.start(desired)
    return ns, dp, desired


async def test_one_bridge_entry_per_remote_mac(lab):
    ns, dp, desired = await started_dataplane(lab, "brent")
    try:
        desired.fdb[100] = {mac: "10.0.0.2" for mac in MACS}
        desired.dirty |= {(FDB, 100, mac) for mac in MACS}
        dp.wanted_changed()
        await asyncio.wait_for(dp.idle(), 20)
        lines = ns.run(["bridge", "fdb", "show", "br", "br100"]).splitlines()
        for mac in MACS:
            master = [ln for ln in lines if ln.startswith(mac) and "master br100" in ln]
            assert len(master) == 1, master  # not a second copy for "vlan 1"
            assert "vlan" not in master[0], master
        tunnel = ns.run(["bridge", "fdb", "show", "dev", "vx100"])
        assert all(f"{mac} dst 10.0.0.2" in tunnel for mac in MACS), tunnel
    finally:
        await dp.stop()


async def test_a_batch_of_many_datagrams_lands_whole(lab):
    """3,000 remote MACs in one pass: about 150 KB of messages, sent as datagrams of at most
    16 KiB in one sendmmsg (evpnd/dataplane/mmsg.py); on Debian's kernel every MAC gets its
    tunnel entry and one bridge entry, and no operation fails."""
    from evpnd.dataplane import netlink as nl

    macs = [f"02:cc:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(3000)]
    ns, dp, desired = await started_dataplane(lab, "brmany")
    try:
        desired.fdb[100] = {mac: f"10.0.0.{2 + i % 8}" for i, mac in enumerate(macs)}
        desired.dirty |= {(FDB, 100, mac) for mac in macs}
        dp.wanted_changed()
        await asyncio.wait_for(dp.idle(), 120)
        st = dp.stats()
        assert st["errors"] == 0 and st["messages_sent"] >= len(macs)
        assert st["messages_sent"] * 48 > 8 * nl.Requester.DATAGRAM_BYTES  # many datagrams
        tunnel = ns.run(["bridge", "fdb", "show", "dev", "vx100"])
        assert sum(" dst 10.0.0." in ln for ln in tunnel.splitlines()) == len(macs)
        bridge = ns.run(["bridge", "fdb", "show", "br", "br100"]).splitlines()
        assert sum("02:cc:" in ln and "master br100" in ln for ln in bridge) == len(macs)
    finally:
        await dp.stop()
