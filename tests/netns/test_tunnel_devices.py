"""Static tunnels' life cycle on this host's kernel with `type: vxlan` (issue 9): created and
marked, drift repaired, removed on reload, a person's device adopted but never changed or
deleted, an unreachable remote reported without stopping the rest, and the learner telling a
tunnel port from an access port."""

from __future__ import annotations

import asyncio
import json

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import DesiredState
from evpnd.core.events import LocalMac
from evpnd.dataplane import Dataplane
from evpnd.lab.netns import Netns
from tests.collect import collect

pytestmark = pytest.mark.netns

SITE_MAC = "02:bb:00:00:00:09"


def config(*tunnels: dict, **extra):
    return parse_config({
        "router_id": "10.0.0.1", "asn": 65001, "vtep": "10.0.0.1", "sweep_hold_time": 0,
        "l2vnis": [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}],
        "static_tunnels": list(tunnels), **extra,
    })  # fmt: skip


def tunnel(name: str = "site-a", remote: str = "10.0.0.9", vni: int = 5001, **extra) -> dict:
    return {"name": name, "type": "vxlan", "remote": remote, "vni": vni, "bridge": "br100",
            **extra}  # fmt: skip


def leaf(lab) -> Netns:
    ns = lab.netns("tun")
    ns.ip("link", "add", "p1", "type", "veth", "peer", "name", "h1")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    ns.ip("link", "set", "u0", "mtu", "1400")
    for dev in ("u0", "u1", "h1"):
        ns.ip("link", "set", dev, "up")
    return ns


def details(ns: Netns, dev: str) -> dict:
    return json.loads(ns.ip("-d", "-j", "link", "show", dev))[0]


def names(ns: Netns) -> set[str]:
    return {d["ifname"] for d in json.loads(ns.ip("-j", "link", "show"))}


async def test_created_marked_repaired_and_removed_on_reload(lab):
    ns = leaf(lab)
    dp = Dataplane(config(tunnel(), tunnel("site-b", "10.0.0.10", 5002)), lambda e: None,
                   netns=ns.name)  # fmt: skip
    await dp.start(DesiredState())
    try:
        dev = details(ns, "site-a")
        data = dev["linkinfo"]["info_data"]
        assert (data["id"], data["remote"], data["local"], data["port"]) == (
            5001, "10.0.0.9", "10.0.0.1", 4789
        )  # fmt: skip
        assert dev["ifalias"] == "evpnd:tunnel=site-a" and dev["master"] == "br100"
        assert dev["mtu"] == 1350 and "UP" in dev["flags"]  # u0 is 1400
        # a person deletes it: recreated at once (the link event)
        ns.ip("link", "del", "site-a")
        for _ in range(100):
            if "site-a" in names(ns):
                break
            await asyncio.sleep(0.05)
        assert details(ns, "site-a")["ifalias"] == "evpnd:tunnel=site-a"
        # a person changes the remote of evpnd's device: made again as configured
        ns.ip("link", "set", "site-b", "type", "vxlan", "remote", "10.0.0.77")
        assert details(ns, "site-b")["linkinfo"]["info_data"]["remote"] == "10.0.0.77"
        await dp._kernel_resetup()
        assert details(ns, "site-b")["linkinfo"]["info_data"]["remote"] == "10.0.0.10"
        # site-b leaves the configuration: removed; site-a stays untouched
        index = details(ns, "site-a")["ifindex"]
        await dp.reconfigure(config(tunnel()))
        assert "site-b" not in names(ns) and details(ns, "site-a")["ifindex"] == index
        assert dp.stats()["device_problems"] == []
    finally:
        await dp.stop()


async def test_a_tunnel_dropped_while_evpnd_was_down_is_removed_at_start(lab):
    """The first set-up scans every link (one raw dump) for evpnd's marked tunnels no longer
    configured; a person's device, even one named like evpnd's, is left alone."""
    ns = leaf(lab)
    dp = Dataplane(config(tunnel(), tunnel("site-b", "10.0.0.10", 5002)), lambda e: None,
                   netns=ns.name)  # fmt: skip
    await dp.start(DesiredState())
    await dp.stop()
    ns.ip("link", "add", "site-p", "type", "vxlan", "id", "5007", "remote", "10.0.0.70",
          "local", "10.0.0.1", "dstport", "4789")  # fmt: skip
    ns.ip("link", "set", "site-p", "alias", "evpnd:tunnel=site-b")  # not its own name's mark
    index = details(ns, "site-a")["ifindex"]
    dp = Dataplane(config(tunnel()), lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        assert "site-b" not in names(ns) and "site-p" in names(ns)
        assert details(ns, "site-a")["ifindex"] == index
        assert dp.stats()["device_problems"] == []
    finally:
        await dp.stop()


async def test_a_persons_device_is_adopted_never_changed_or_deleted(lab):
    ns = leaf(lab)
    ns.ip("link", "add", "site-a", "type", "vxlan", "id", "5001", "remote", "10.0.0.9",
          "local", "10.0.0.1", "dstport", "4789")  # fmt: skip
    ns.ip("link", "add", "site-x", "type", "vxlan", "id", "5009", "remote", "10.0.0.99",
          "local", "10.0.0.1", "dstport", "4789")  # fmt: skip
    dp = Dataplane(config(tunnel(), tunnel("site-x", "10.0.0.9", 5003)), lambda e: None,
                   netns=ns.name)  # fmt: skip
    await dp.start(DesiredState())
    try:
        dev = details(ns, "site-a")
        assert dev.get("ifalias") is None and dev["master"] == "br100"  # adopted, not marked
        rows = {r["device"]: r for r in dp.mtu()["devices"]}
        assert rows["site-a"]["ownership"] == "adopted"
        # configured differently from what the person made: reported, left as it is
        problems = dp.stats()["device_problems"]
        assert any(
            p.startswith("tunnel site-x: site-x exists (not made by evpnd)") for p in problems
        )
        assert details(ns, "site-x")["linkinfo"]["info_data"]["remote"] == "10.0.0.99"
        assert "not usable" in rows["site-x"]["status"]
        await dp.reconfigure(config())
        assert {"site-a", "site-x"} <= names(ns)  # never deleted: evpnd did not make them
    finally:
        await dp.stop()


async def test_unreachable_remote_is_reported_and_the_rest_works(lab):
    ns = leaf(lab)
    dp = Dataplane(config(tunnel("site-far", "192.0.2.99", 5002), tunnel()), lambda e: None,
                   netns=ns.name)  # fmt: skip
    await dp.start(DesiredState())
    try:
        rows = {r["device"]: r for r in dp.mtu()["devices"]}
        far = rows["site-far"]
        assert (
            far["status"] == "remote unreachable (no route)" and far["underlay_interface"] is None
        )
        assert far["overlay_mtu"] == 1450  # the 1500 fallback until a route appears
        assert "tunnel site-far: no route to remote 192.0.2.99" in dp.stats()["device_problems"]
        assert rows["site-a"]["status"] == "ok" and rows["vx100"]["overlay_mtu"] == 1350
        assert details(ns, "vx100")["master"] == "br100" and "site-far" in names(ns)
    finally:
        await dp.stop()


async def test_mac_over_a_tunnel_is_local_only_with_advertise_and_not_if_another_vtep_has_it(lab):
    ns = leaf(lab)
    events: list = []
    desired = DesiredState()
    cfg = config(tunnel(), tunnel("site-b", "10.0.0.10", 5002, advertise=True))
    dp = Dataplane(cfg, collect(events), netns=ns.name)
    await dp.start(desired)
    try:

        def learned(dev: str, mac: str) -> None:  # what the bridge does for a frame from dev
            ns.run(["bridge", "fdb", "replace", mac, "dev", dev, "master", "dynamic"])

        def local(mac: str) -> list[bool]:
            return [e.present for e in events if isinstance(e, LocalMac) and e.mac == mac]

        learned("site-a", SITE_MAC)  # advertise: false
        learned("site-b", "02:bb:00:00:00:0a")  # advertise: true
        learned("p1", "02:bb:00:00:00:0b")  # an access port
        await asyncio.sleep(0.5)
        assert local(SITE_MAC) == [] and local("02:bb:00:00:00:0a") == [True]
        assert local("02:bb:00:00:00:0b") == [True]
        # an access port's MAC moving behind a tunnel without advertise is no longer local
        learned("site-a", "02:bb:00:00:00:0b")
        await asyncio.sleep(0.5)
        assert local("02:bb:00:00:00:0b") == [True, False]
        # another VTEP advertises a site MAC (the core wants it remote; not yet written to the
        # kernel, whose bridge would move an extern_learn entry on learning anyway): this
        # gateway refuses to advertise it too
        desired.fdb[100] = {"02:bb:00:00:00:0c": "10.0.0.2"}
        learned("site-b", "02:bb:00:00:00:0c")
        await asyncio.sleep(0.5)
        assert local("02:bb:00:00:00:0c") == []
        assert dp.stats()["tunnel_macs_refused"] >= 1
    finally:
        await dp.stop()
