"""`evpnctl mtu` (+ --probe) without a network: what is probed, the search for the size that
passes (ping replaced by a path of a known MTU: the real probe runs in
tests/netns/test_tunnels_mtu.py), and the table."""

from __future__ import annotations

import pytest

from evpnd.api.models import MtuReply
from evpnd.cli import mtu_probe, tables
from evpnd.cli.evpnctl import build_parser, plan
from evpnd.dataplane.mtu import overhead
from evpnd.dataplane.mtu import plan as mtu_plan

VX = {**mtu_plan("vx100", overhead("vxlan", 4), "uplink", 1400).as_dict(), "vni": 100,
      "local": "10.0.1.1", "status": "ok"}  # fmt: skip
SITE = {**mtu_plan("site-s", overhead("geneve", 6), "s0", 1500, remote="fd00:3::2").as_dict(),
        "local": "fd00:3::1", "ownership": "created", "status": "ok"}  # fmt: skip
DOWN = {"device": "site-x", "type": "gre", "remote": "192.0.2.9", "status": "not usable: x"}
FAR = {**mtu_plan("site-far", overhead("vxlan", 4), None, None, remote="192.0.2.99").as_dict(),
       "local": "10.0.1.1", "status": "remote unreachable (no route)"}  # fmt: skip


def test_targets_each_remote_at_its_full_encapsulated_size():
    vnis = {"vnis": [{"vxlan_device": "vx100", "remote_vteps": ["10.0.2.2", "10.0.3.3"]},
                     {"vxlan_device": "vx999", "remote_vteps": ["10.9.9.9"]}]}  # fmt: skip
    found = mtu_probe.targets_from({"devices": [VX, SITE, DOWN, FAR]}, vnis)
    assert found == {
        "10.0.2.2": (1400, ["vx100"], "10.0.1.1"),
        "10.0.3.3": (1400, ["vx100"], "10.0.1.1"),
        "fd00:3::2": (1500, ["site-s"], "fd00:3::1"),
    }


def test_a_remote_without_a_route_is_reported_not_probed():
    (res,) = mtu_probe.unreachable_from({"devices": [VX, SITE, DOWN, FAR]})
    assert (res.remote, res.devices, res.size, res.no_route, res.black_hole) == (
        "192.0.2.99", ["site-far"], 1500, True, False
    )  # fmt: skip
    text = tables.render_mtu_probe([res.as_dict()])
    assert "NO ROUTE (not probed)" in text and "BLACK HOLE" not in text


@pytest.mark.parametrize("path_mtu,family_min", [(1300, 68), (1400, 68)])
def test_search_finds_the_largest_size_that_passes(monkeypatch, path_mtu, family_min):
    sent: list[int] = []

    def fake_ping(remote, size, source=None, timeout=1.0):
        sent.append(size)
        return size <= path_mtu

    monkeypatch.setattr(mtu_probe, "ping", fake_ping)
    monkeypatch.setattr(mtu_probe.shutil, "which", lambda name: "/bin/ping")
    (res,) = mtu_probe.probe({"10.0.2.2": (1400, ["vx100"], "10.0.1.1")})
    if path_mtu >= 1400:
        assert (res.passed, res.black_hole, res.path_mtu, sent) == (True, False, 1400, [1400])
    else:
        assert (res.passed, res.black_hole, res.path_mtu) == (False, True, 1300)
        assert sent[1] == family_min and len(sent) <= 14  # a binary search, not a sweep


def test_ipv6_search_starts_at_1280(monkeypatch):
    monkeypatch.setattr(mtu_probe, "ping", lambda remote, size, source=None: size <= 1280)
    assert mtu_probe.search("fd00::2", 1500, None) == 1280
    monkeypatch.setattr(mtu_probe, "ping", lambda remote, size, source=None: False)
    assert mtu_probe.search("fd00::2", 1500, None) is None


def test_tables_show_the_breakdown_source_status_and_warnings():
    reply = MtuReply.model_validate({"devices": [VX, SITE, DOWN], "warnings": ["br100: w"]})
    text = tables.render_mtu(reply)
    assert "ip 20 + udp 8 + vxlan 8 + eth 14 = 50" in text
    assert "ip 40 + udp 8 + geneve 8 + eth 14 = 70" in text
    assert "uplink 1400" in text and "1350" in text and "derived" in text
    assert "not usable: x" in text and text.endswith("warning: br100: w")
    probe = tables.render_mtu_probe([
        mtu_probe.ProbeResult("10.0.2.2", ["vx100"], None, 1400, False, 1300, True).as_dict(),
        mtu_probe.ProbeResult("10.0.3.2", ["site-s"], None, 1500, True, 1500, False).as_dict(),
    ])  # fmt: skip
    assert "BLACK HOLE" in probe and "1300" in probe and " ok " in probe


def test_evpnctl_mtu_parses():
    ns = build_parser().parse_args(["mtu", "--json"])
    assert plan(ns)[:2] == ("show mtu", {}) and ns.json and not ns.probe
    assert build_parser().parse_args(["mtu", "--probe"]).probe
