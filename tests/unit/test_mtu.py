"""The overlay MTU arithmetic (evpnd.dataplane.mtu): every type over both families, the
breakdown `evpnctl mtu` shows, the precedence of set/override/derived, the warnings."""

from __future__ import annotations

import pytest

from evpnd.dataplane.mtu import overhead, plan, warnings


@pytest.mark.parametrize(
    "kind,family,key,options,total",
    [
        ("vxlan", 4, False, 0, 50),
        ("vxlan", 6, False, 0, 70),
        ("geneve", 4, False, 0, 50),
        ("geneve", 6, False, 0, 70),
        ("geneve", 4, False, 8, 58),
        ("geneve", 6, False, 252, 322),
        ("gretap", 4, False, 0, 38),
        ("gretap", 6, False, 0, 58),
        ("gretap", 4, True, 0, 42),
        ("gretap", 6, True, 0, 62),
        ("gre", 4, False, 0, 24),
        ("gre", 6, False, 0, 44),
        ("gre", 4, True, 0, 28),
        ("gre", 6, True, 0, 48),
    ],
)
def test_overhead_of_every_type_and_family(kind, family, key, options, total):
    assert overhead(kind, family, key, options).total == total


def test_the_breakdown_names_each_part():
    assert overhead("vxlan", 4).as_dict() == {
        "type": "vxlan", "family": 4, "outer_ip": 20, "udp": 8, "header": 8,
        "inner_ethernet": 14, "key": 0, "options": 0, "total": 50,
    }  # fmt: skip
    gre = overhead("gre", 6, key=True)
    assert (gre.outer_ip, gre.udp, gre.header, gre.inner_ethernet, gre.key) == (40, 0, 4, 0, 4)
    tap = overhead("gretap", 4)
    assert (tap.udp, tap.header, tap.inner_ethernet) == (0, 4, 14)
    gen = overhead("geneve", 6, options=16)
    assert (gen.udp, gen.header, gen.options, gen.total) == (8, 8, 16, 86)


@pytest.mark.parametrize(
    "args",
    [("ipip", 4), ("vxlan", 5), ("vxlan", 4, True), ("gre", 4, False, 4), ("geneve", 4, False, 6)],
)
def test_nonsense_is_refused(args):
    with pytest.raises(ValueError):
        overhead(*args)


def test_derived_from_the_egress_interface():
    p = plan("vx100", overhead("vxlan", 4), "eth0", 1400)
    assert (p.underlay_interface, p.underlay_mtu, p.overlay_mtu, p.source) == (
        "eth0", 1400, 1350, "derived"
    )  # fmt: skip
    jumbo = plan("gt", overhead("gretap", 6, key=True), "eth1", 9000)
    assert jumbo.overlay_mtu == 9000 - 62


def test_no_route_falls_back_to_1500_the_override_and_set_mtu_win():
    assert plan("g", overhead("geneve", 4), None, None).overlay_mtu == 1450
    over = plan("g", overhead("geneve", 4), "eth0", 1400, override_underlay=9000)
    assert (over.overlay_mtu, over.source) == (8950, "underlay_mtu")
    fixed = plan("g", overhead("geneve", 4), "eth0", 1400, set_mtu=1300, remote="203.0.113.9")
    assert (fixed.overlay_mtu, fixed.source, fixed.as_dict()["remote"]) == (
        1300,
        "set",
        "203.0.113.9",
    )


def test_warnings_small_mtu_oversized_setting_and_mixed_bridge():
    small = plan("vx100", overhead("vxlan", 4), "eth0", 1400)
    ok = plan("vx200", overhead("vxlan", 4), "eth0", 9000)
    too_big = plan("gt", overhead("gretap", 4), "eth0", 1500, set_mtu=1500)
    out = warnings(
        [small, ok, too_big], {"br100": {"vx100": 1350, "p1": 1500}, "br200": {"vx200": 8950}}
    )
    assert any(
        w.startswith("vx100: overlay MTU 1350 < 1500 (underlay eth0 MTU 1400 - 50") for w in out
    )
    assert any(w.startswith("gt: mtu 1500 set, but the underlay carries only 1462") for w in out)
    assert (
        "br100: ports with different MTUs (p1 1500, vx100 1350); the bridge takes the least" in out
    )
    assert not any(w.startswith(("vx200", "br200")) for w in out)
