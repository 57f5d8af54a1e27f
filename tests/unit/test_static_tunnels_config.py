"""`static_tunnels:` (issue 9): the contract's fields and every cross-field check, each bad
case exiting 2 with the file and the field named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evpnd.config import ConfigError, core_settings, parse_config

BASE = {
    "router_id": "192.0.2.1",
    "asn": 65001,
    "vtep": "192.0.2.1",
    "l2vnis": [{"vni": 100, "bridge": "br100", "access_ports": ["p1"]}],
    "l3vnis": [{"vni": 5000, "table": 5000, "l2vnis": [100]}],
}
GENEVE = {"name": "site-b", "type": "geneve", "remote": "203.0.113.9", "vni": 5001,
          "bridge": "br100"}  # fmt: skip
GRE = {"name": "site-c", "type": "gre", "remote": "203.0.113.10", "key": 42,
       "prefixes": ["10.9.0.0/16"], "table": 5000}  # fmt: skip


def cfg_with(*tunnels: dict, **extra):
    return parse_config({**BASE, "static_tunnels": list(tunnels), **extra}, "test.yaml")


def problems(*tunnels: dict, **extra) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        cfg_with(*tunnels, **extra)
    return info.value.problems


def test_the_contract_as_the_issue_gives_it():
    full = {**GENEVE, "local": "192.0.2.1", "advertise": False, "mtu": None}
    cfg = cfg_with(full, GRE, {"name": "site-d", "type": "gretap", "remote": "203.0.113.11",
                               "key": 7, "bridge": "br100", "advertise": True, "mtu": 1400},
                   {"name": "site-e", "type": "vxlan", "remote": "203.0.113.12", "vni": 77,
                    "bridge": "br100"})  # fmt: skip
    g, r, t, v = cfg.static_tunnels
    assert (g.type, str(g.remote), g.vni, g.bridge, g.l2) == (
        "geneve",
        "203.0.113.9",
        5001,
        "br100",
        True,
    )
    assert (r.type, r.key, [str(p) for p in r.prefixes], r.table, r.l2) == (
        "gre",
        42,
        ["10.9.0.0/16"],
        5000,
        False,
    )
    assert (t.mtu, t.advertise, t.key) == (1400, True, 7)
    assert v.vni == 77 and cfg.underlay_mtu is None  # derived unless set


def test_ipv6_remote_with_an_ipv6_vtep():
    # no table-only L3VNI: with an IPv6 VTEP an L3VNI needs a VRF (config.vtep_family_problems)
    cfg = cfg_with({**GENEVE, "remote": "2001:db8::9"}, vtep="2001:db8::1", l3vnis=[])
    assert str(cfg.static_tunnels[0].remote) == "2001:db8::9"


@pytest.mark.parametrize(
    "tunnel,field,reason",
    [
        ({**GENEVE, "type": "ipip"}, "static_tunnels[0].type", "'geneve'"),
        ({**GENEVE, "vni": None}, "static_tunnels[0].vni", "required for type geneve"),
        ({**GENEVE, "type": "vxlan", "vni": None}, "static_tunnels[0].vni", "required"),
        ({**GENEVE, "type": "vxlan", "vni": 100}, "static_tunnels[0].vni", "EVPN VNI"),
        ({**GRE, "vni": 5}, "static_tunnels[0].vni", "not allowed for type gre"),
        ({**GRE, "bridge": "br100"}, "static_tunnels[0].bridge", "L2 field"),
        ({**GENEVE, "key": 4}, "static_tunnels[0].key", "not allowed for type geneve"),
        ({**GENEVE, "prefixes": ["10.9.0.0/16"]}, "static_tunnels[0].prefixes", "L3 field"),
        ({**GENEVE, "table": 5000}, "static_tunnels[0].table", "L3 field"),
        ({**GENEVE, "bridge": "br7"}, "static_tunnels[0].bridge", "no L2VNI's bridge"),
        ({**GENEVE, "bridge": None}, "static_tunnels[0].bridge", "required"),
        ({**GRE, "table": 7}, "static_tunnels[0].table", "belongs to no L3VNI"),
        ({**GRE, "table": None}, "static_tunnels[0].table", "required"),
        ({**GRE, "prefixes": []}, "static_tunnels[0].prefixes", "required"),
        ({**GENEVE, "name": "br100"}, "static_tunnels[0].name", "also used by l2vnis[0]"),
        ({**GENEVE, "name": "vx100"}, "static_tunnels[0].name", "also used by l2vnis[0]"),
        ({**GENEVE, "name": "br5000"}, "static_tunnels[0].name", "also used by l3vnis[0]"),
        ({**GENEVE, "name": "p1"}, "static_tunnels[0].name", "access_ports"),
        ({**GENEVE, "remote": "192.0.2.1"}, "static_tunnels[0].remote", "our own VTEP"),
        (
            {**GENEVE, "local": "192.0.2.7", "remote": "192.0.2.7"},
            "static_tunnels[0].remote",
            "our own",
        ),
        ({**GENEVE, "remote": "2001:db8::9"}, "static_tunnels[0].remote", "address family"),
        ({**GENEVE, "mtu": 10}, "static_tunnels[0].mtu", "greater than or equal to 68"),
        ({**GENEVE, "vni": True}, "static_tunnels[0].vni", "valid integer"),
        ({**GENEVE, "colour": 1}, "static_tunnels[0].colour", "unknown field"),
    ],
)
def test_each_bad_tunnel_names_its_field(tunnel, field, reason):
    found = problems(tunnel)
    assert any(f == field and reason in r for f, r in found), found


def test_two_tunnels_with_one_name_or_one_endpoint():
    found = problems(GENEVE, {**GENEVE, "vni": 6000})
    assert ("static_tunnels[1].name", "interface site-b is also used by static_tunnels[0]") in found
    found = problems(GENEVE, {**GENEVE, "name": "other"})
    assert any(f == "static_tunnels[1].remote" and "same type" in r for f, r in found)


def test_two_vxlan_tunnels_with_one_vni():
    vx = {**GENEVE, "type": "vxlan"}
    found = problems(vx, {**vx, "name": "other", "remote": "203.0.113.50"})
    assert ("static_tunnels[1].vni", "VNI 5001 is also used by static_tunnels[0]") in found


def test_underlay_mtu_is_an_optional_override():
    assert cfg_with(underlay_mtu=9000).underlay_mtu == 9000
    assert problems(underlay_mtu=500)[0][0] == "underlay_mtu"


def test_advertised_gre_prefixes_become_type5_of_the_l3vni_owning_the_table():
    quiet = core_settings(cfg_with(GRE))
    assert quiet.l3vnis[0].advertise_prefixes == ()
    loud = core_settings(cfg_with({**GRE, "advertise": True}))
    assert loud.l3vnis[0].advertise_prefixes == ("10.9.0.0/16",)


def test_a_bad_tunnel_exits_2_naming_file_and_field(tmp_path):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**BASE, "static_tunnels": [{**GENEVE, "type": "ipip"}]}))
    res = subprocess.run(
        [sys.executable, "-m", "evpnd.cli.daemon_main", "--check-config", "-c", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 2, res
    assert f"{path}: static_tunnels[0].type:" in res.stderr and "Traceback" not in res.stderr
