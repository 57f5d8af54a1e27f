"""containerlab/evpn-ipv6 driven through the namespace runner (issue 16): an IPv6-only underlay
with three evpnd leaves in an iBGP full mesh over their IPv6 VTEPs, a plain IPv6 router as the
spine. Sessions over IPv6, flood lists of IPv6 VTEPs, pings inside VNIs and none across,
full-size frames over the 1500-byte link (70 bytes of VXLAN over IPv6), every leaf's MAC table.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from evpnd.lab import runner
from tests.netns.test_lab_l2 import nothing_left

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]

TOPOLOGY = Path(__file__).resolve().parents[2] / "containerlab/evpn-ipv6/evpn-ipv6.clab.yml"
HOSTS = {  # host: (address, MAC, VNI, leaf)
    "h1": ("10.20.0.1", "02:00:0a:14:00:01", 100, "leaf1"),
    "h2": ("10.20.0.2", "02:00:0a:14:00:02", 100, "leaf2"),
    "h3": ("10.20.0.3", "02:00:0a:14:00:03", 200, "leaf1"),
    "h4": ("10.20.0.4", "02:00:0a:14:00:04", 200, "leaf2"),
    "h5": ("10.20.0.5", "02:00:0a:14:00:05", 100, "leaf3"),
}
VTEPS = {"leaf1": "2001:db8:ffff::11", "leaf2": "2001:db8:ffff::12", "leaf3": "2001:db8:ffff::13"}
LEAVES_OF_VNI = {100: {"leaf1", "leaf2", "leaf3"}, 200: {"leaf1", "leaf2"}}
SAME_VNI = [("h1", "h2"), ("h2", "h5"), ("h5", "h1"), ("h3", "h4"), ("h4", "h3")]
ACROSS_VNI = [("h1", "h4"), ("h5", "h3")]


@pytest.fixture(scope="module")
def v6lab():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    name = f"v6t{uuid.uuid4().hex[:5]}"
    lines: list[str] = []
    try:
        lab = runner.up(TOPOLOGY, name=name, progress=lines.append)
        try:
            runner.wait_converged(lab, timeout=60, progress=lines.append)
        except runner.LabError as exc:
            pytest.fail(f"{exc}\n" + "\n".join(lab.log(n) for n in VTEPS)[-4000:])
        for src, dst in SAME_VNI:  # every host speaks once: every MAC is learned
            ping(lab, src, dst)
        yield lab
    finally:
        runner.down(name, progress=lines.append)
        assert not nothing_left(name), f"left behind: {nothing_left(name)}"


def ping(lab: runner.RunningLab, src: str, dst: str, tries: int = 10) -> bool:
    return any(lab.ns(src).ping(HOSTS[dst][0], count=1, timeout=1.0) for _ in range(tries))


def test_sessions_over_ipv6_and_flood_lists_of_ipv6_vteps(v6lab):
    assert runner.evpnd_sessions(v6lab) == {
        leaf: {v: "up" for other, v in VTEPS.items() if other != leaf} for leaf in VTEPS
    }
    assert runner.flood_lists_converged(v6lab) == []
    for vni, leaves in LEAVES_OF_VNI.items():
        for leaf in leaves:
            want = {VTEPS[other] for other in leaves - {leaf}}
            assert runner.flood_list(v6lab.ns(leaf), f"vx{vni}") == want, (leaf, vni)


@pytest.mark.parametrize("src, dst", SAME_VNI, ids=lambda x: x)
def test_ping_within_vni(v6lab, src, dst):
    assert ping(v6lab, src, dst), f"{src} cannot reach {dst}"


@pytest.mark.parametrize("src, dst", ACROSS_VNI, ids=lambda x: x)
def test_ping_across_vnis_fails(v6lab, src, dst):
    assert not ping(v6lab, src, dst, tries=2)


def test_full_size_frames_cross_the_1500_link(v6lab):
    # 1402 + 28 = 1430-byte IP packets: 1500 bytes with VXLAN over IPv6, the pinned link's MTU
    for src, dst in (("h1", "h2"), ("h3", "h4")):
        out = v6lab.ns(src).run(
            ["ping", "-c", "2", "-W", "1", "-M", "do", "-s", "1402", HOSTS[dst][0]], check=False
        )
        assert " 0% packet loss" in out, f"{src} -> {dst}: {out}"


def test_remote_macs_point_at_ipv6_vteps_everywhere(v6lab):
    for host, (_ip, mac, vni, leaf) in HOSTS.items():
        for other in LEAVES_OF_VNI[vni] - {leaf}:
            macs = runner.evpnd_json(v6lab, other, "show", "macs", "--vni", str(vni))["macs"]
            entry = next((m for m in macs if m["mac"] == mac), None)
            assert entry and entry["type"] == "remote" and entry["vtep"] == VTEPS[leaf], (
                host, other, entry,
            )  # fmt: skip
