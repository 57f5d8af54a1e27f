"""vxlan_mode single on this host's kernel: it has `vnifilter` VXLAN devices (Linux 5.18+) but
no VLAN-filtering bridge. The raw messages evpnd builds for what pyroute2 lacks (single_msgs.py:
the external+vnifilter device, RTM_NEWTUNNEL, FDB entries with NDA_SRC_VNI) are accepted by
the real kernel and read back by iproute2 as `bridge vni add` / `bridge fdb add ... src_vni`
would have made them. Without VLAN-filtering bridges, the daemon's dataplane reports single
mode as a device problem and keeps running. The whole mode runs in the VM tier
(tests/vm/test_single_vxlan.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evpnd.config import parse_config
from evpnd.core.desired import DesiredState
from evpnd.dataplane import Dataplane
from evpnd.dataplane import single_msgs as msg

pytestmark = pytest.mark.netns

SEND = """
from evpnd.dataplane import netlink as nl, single_msgs as msg
import socket
req = nl.Requester()
op = nl.Op(nl.RTM_NEWLINK, nl.NLM_F_CREATE | nl.NLM_F_EXCL | nl.NLM_F_ACK,
           msg.vxlan_link("vxlan0", "10.0.0.1", 4789, 1450))
req.run([op]); assert op.error == 0, op.error
index = socket.if_nametoindex("vxlan0")
enc = nl.FdbEncoder()
ops = [nl.Op(msg.RTM_NEWTUNNEL, nl.NLM_F_CREATE | nl.NLM_F_ACK, msg.vni_filter(index, v))
       for v in (100, 200)]
ops.append(nl.Op(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_APPEND | nl.NLM_F_ACK,
                 enc.fdb(index, nl.ZERO_MAC, "10.0.0.2", nl.NTF_SELF, nl.NUD_PERMANENT)
                 + msg.flood_suffix(200)))
ops.append(nl.Op(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_REPLACE | nl.NLM_F_ACK,
                 enc.fdb(index, "02:00:00:00:00:01", "10.0.0.2",
                         nl.NTF_SELF | nl.NTF_EXT_LEARNED, nl.NUD_REACHABLE)
                 + msg.flood_suffix(100)))
req.run(ops)
print([o.error for o in ops])
"""


def test_raw_vnifilter_messages_are_what_iproute2_reads_back(lab):
    ns = lab.netns("svd")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    out = subprocess.run(ns.cmd(sys.executable, "-c", SEND), capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 0, 0, 0]", out.stdout
    details = ns.ip("-d", "link", "show", "vxlan0")
    assert "external" in details and "vnifilter" in details and "nolearning" in details
    assert "mtu 1450" in details and "dstport 4789" in details and "local 10.0.0.1" in details
    vnis = json.loads(ns.run(["bridge", "-j", "vni", "show", "dev", "vxlan0"]))
    assert [v["vni"] for v in vnis[0]["vnis"]] == [100, 200], vnis
    fdb = json.loads(ns.run(["bridge", "-j", "fdb", "show", "dev", "vxlan0"]))
    got = {(r["mac"], r["dst"], r.get("src_vni")) for r in fdb if "dst" in r}
    assert got == {("00:00:00:00:00:00", "10.0.0.2", 200), ("02:00:00:00:00:01", "10.0.0.2", 100)}


READ_BACK = """
import json, socket
from evpnd.dataplane import netlink as nl, single_msgs as msg
from evpnd.dataplane.devices import DeviceError, DeviceManager
from evpnd.dataplane.single_vxlan import SingleVxlan
dev = DeviceManager()
single = SingleVxlan(dev)
index = socket.if_nametoindex("vxlan0")
ranges = single._vni_filter("vxlan0", index).ranges
vlans, tunnels, flags = single._port_vlans()
try:  # an external device made without vnifilter: a device problem naming it
    single._vni_filter("vxlan1", socket.if_nametoindex("vxlan1"))
    plain = "read"
except DeviceError as exc:
    plain = str(exc)
print(json.dumps({"ranges": ranges, "flags": flags.get(index), "writes": dev.writes,
                  "sent": dev.requester.messages_sent, "plain": plain}))
"""

# VNIs in the filter: a run of consecutive ones (one range in the dump) and 2,500 with gaps
# (more than one dump message: each carries at most a page's worth of entries)
VNIS = [*range(100, 110), *range(10_000, 15_000, 2)]


def test_vni_filter_and_port_flags_read_back_from_the_kernel(lab, tmp_path):
    """What single mode's device check reads instead of writing (issue 17): the VNI filter as
    `bridge vni show` has it, and the VXLAN port's flags as `bridge link set` left them, both
    read with raw dumps that write nothing."""
    ns = lab.netns("svdrb")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    ns.ip("link", "add", "vxlan0", "type", "vxlan", "external", "vnifilter", "local", "10.0.0.1",
          "dstport", "4789", "nolearning")  # fmt: skip
    ns.ip("link", "add", "vxlan1", "type", "vxlan", "external", "local", "10.0.0.1", "dstport",
          "4790")  # fmt: skip
    ns.ip("link", "add", "br0", "type", "bridge")
    ns.ip("link", "set", "vxlan0", "master", "br0")
    batch = tmp_path / "vnis.batch"
    batch.write_text("".join(f"vni add dev vxlan0 vni {v}\n" for v in VNIS))
    ns.run(["bridge", "-batch", str(batch)], timeout=120)
    ns.run(["bridge", "link", "set", "dev", "vxlan0", "learning", "off", "neigh_suppress", "on",
            "vlan_tunnel", "on"])  # fmt: skip

    def read_back() -> dict:
        out = subprocess.run(ns.cmd(sys.executable, "-c", READ_BACK), capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    got = read_back()
    assert got["writes"] == 0 and got["sent"] == 0, got
    covered = msg.VniRanges([tuple(r) for r in got["ranges"]])
    assert [v for v in range(90, 15_010) if v in covered] == VNIS
    assert [100, 109] in got["ranges"], got["ranges"][:5]  # consecutive VNIs: one range
    shown = json.loads(ns.run(["bridge", "-j", "vni", "show", "dev", "vxlan0"]))[0]["vnis"]
    assert sum(v.get("vniEnd", v["vni"]) - v["vni"] + 1 for v in shown) == len(VNIS)
    assert not msg.port_flags_differ({int(k): v for k, v in got["flags"].items()}), got["flags"]
    assert got["plain"] == ("vxlan1 exists without vnifilter (an external device made without "
                            "it cannot filter VNIs)"), got["plain"]  # fmt: skip
    # a person turns learning on: the read-back sees it (the device check would set it again)
    ns.run(["bridge", "link", "set", "dev", "vxlan0", "learning", "on"])
    flags = {int(k): v for k, v in read_back()["flags"].items()}
    assert flags[msg.IFLA_BRPORT_LEARNING] == 1 and msg.port_flags_differ(flags)


def has_vlan_filtering(ns) -> bool:
    probe = subprocess.run(ns.cmd("ip", "link", "add", "brprobe", "type", "bridge",
                                  "vlan_filtering", "1"), capture_output=True)  # fmt: skip
    if probe.returncode == 0:
        ns.ip("link", "del", "brprobe")
    return probe.returncode == 0


async def test_single_mode_without_vlan_filtering_is_a_device_problem_not_a_crash(lab):
    ns = lab.netns("svd2")
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1")
    ns.ip("addr", "add", "10.0.0.1/24", "dev", "u0")
    if has_vlan_filtering(ns):
        pytest.fail("this kernel has VLAN-filtering bridges: tests/vm covers single mode there")
    cfg = parse_config({
        "router_id": "10.0.0.1", "asn": 65001, "vtep": "10.0.0.1", "sweep_hold_time": 0,
        "vxlan_mode": "single",
        "l2vnis": [{"vni": 100, "bridge": "br0", "vlan": 10},
                   {"vni": 200, "bridge": "br0", "vlan": 20}],
        "l3vnis": [{"vni": 5000, "table": 5000}],
    })  # fmt: skip
    dp = Dataplane(cfg, lambda e: None, netns=ns.name)
    await dp.start(DesiredState())
    try:
        stats = dp.stats()
        assert stats["vnis"] == [5000]  # the L3VNI's own devices are made as ever
        (problem,) = stats["device_problems"]
        assert problem.startswith("vxlan_mode single: l2vnis[0]: "), problem
        assert "br0" not in ns.ip("-br", "link")
    finally:
        await dp.stop()
