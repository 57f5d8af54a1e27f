"""The configuration model (evpnd.config): the example leaf, auto RD/RT, field errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from evpnd.config import ConfigError, L2VniConfig, load_config, parse_config

ROOT = Path(__file__).parent.parent.parent
LEAF = ROOT / "config" / "leaf.yaml"
CONFIGS = ROOT / "tests" / "fixtures" / "configs"

BASE = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "192.0.2.1"}


def problems(data: object) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "test.yaml")
    assert info.value.file == "test.yaml"
    return info.value.problems


def test_example_leaf_loads_with_the_contract_shape():
    cfg = load_config(LEAF)
    assert cfg.router_id == ipaddress.IPv4Address("192.0.2.11")
    assert cfg.asn == 65011 and str(cfg.vtep) == "192.0.2.11"
    assert [str(p.address) for p in cfg.peers] == ["10.0.1.2", "10.0.2.2"]
    spine2 = cfg.peers[1]
    assert spine2.password and spine2.ttl_security == 1 and str(spine2.local_address) == "10.0.2.1"
    assert [v.vni for v in cfg.l2vnis] == [100, 200]
    assert [v.device for v in cfg.l2vnis] == ["vx100", "vxlan200"]
    assert cfg.l2vnis[0].access_ports == ["eth1", "eth2"]
    assert str(cfg.l2vnis[0].svi_address) == "10.100.0.1/24"
    assert cfg.l2vnis[1].sticky_macs == ["02:00:00:00:02:01"]
    (l3,) = cfg.l3vnis
    assert (l3.vni, l3.table, l3.l2vnis) == (5000, 5000, [100, 200])
    assert l3.router_mac == "02:00:00:00:50:0b"
    assert [str(p) for p in l3.advertise_prefixes] == ["10.201.0.0/24"]
    assert (l3.device, l3.bridge_name) == ("vx5000", "br5000")
    assert cfg.l3vni_of(100) is l3 and cfg.l3vni_of(200) is l3
    assert cfg.duplicate_detection.max_moves == 5 and cfg.duplicate_detection.time == 180


def test_auto_rd_and_rt_follow_frr():
    """RD router-id:index (index of the VNI, from 1); RT ASN:VNI (DESIGN rule 6)."""
    cfg = load_config(LEAF)
    assert cfg.rd_for(100) == "192.0.2.11:1"
    assert cfg.rd_for(200) == "192.0.2.11:200"  # explicit
    assert cfg.rd_for(5000) == "192.0.2.11:3"
    assert cfg.export_rts_for(100) == ["65011:100"]
    assert cfg.export_rts_for(5000) == ["65011:5000"]
    assert cfg.import_rts_for(100) is None  # auto: any RT whose number is the VNI
    assert cfg.export_rts_for(200) == ["65000:200"] == cfg.import_rts_for(200)
    with pytest.raises(KeyError):
        cfg.rd_for(999)


def test_auto_rt_of_a_four_byte_asn_uses_its_low_16_bits_like_frr():
    cfg = parse_config({**BASE, "asn": 4200000000})
    assert cfg.auto_rt(100) == f"{4200000000 & 0xFFFF}:100" == "59904:100"


def test_normalization():
    cfg = parse_config(
        {
            **BASE,
            "l2vnis": [
                {
                    "vni": 10,
                    "bridge": "br10",
                    "rd": "65000:010",
                    "export_rts": ["65000:010"],
                    "sticky_macs": ["AA:BB:CC:DD:EE:FF"],
                }
            ],
        }
    )
    item = cfg.l2vnis[0]
    assert (item.rd, item.export_rts, item.sticky_macs) == (
        "65000:10",
        ["65000:10"],
        ["aa:bb:cc:dd:ee:ff"],
    )
    assert isinstance(item, L2VniConfig)


def test_minimal_fixture_has_defaults():
    cfg = load_config(CONFIGS / "minimal.yaml")
    assert cfg.peers == [] and cfg.l2vnis == [] and cfg.exabgp.graceful_restart == 0
    assert cfg.peers == [] and cfg.api.socket == Path("/run/evpnd/evpnd.sock")


@pytest.mark.parametrize(
    "data,field,reason",
    [
        ({**BASE, "asn": "x"}, "asn", "valid integer"),
        ({**BASE, "asn": True}, "asn", "valid integer"),
        ({**BASE, "asn": 0}, "asn", "greater than or equal to 1"),
        ({**BASE, "colour": "red"}, "colour", "unknown field"),
        (
            {**BASE, "l2vnis": [{"vni": 0, "bridge": "b"}]},
            "l2vnis[0].vni",
            "greater than or equal to 1",
        ),
        ({**BASE, "l2vnis": [{"vni": 1 << 24, "bridge": "b"}]}, "l2vnis[0].vni", "16777215"),
        ({**BASE, "l2vnis": [{"vni": 7}]}, "l2vnis[0].bridge", "required"),
        ({**BASE, "l2vnis": [{"vni": 7, "bridge": "b" * 16}]}, "l2vnis[0].bridge", "pattern"),
        ({**BASE, "l2vnis": [{"vni": 7, "bridge": "b", "rd": "x"}]}, "l2vnis[0].rd", "ADMIN"),
        (
            {**BASE, "l2vnis": [{"vni": 7, "bridge": "b", "import_rts": ["1.1.1.1:99999"]}]},
            "l2vnis[0].import_rts",
            "65535",
        ),
        (
            {**BASE, "l2vnis": [{"vni": 7, "bridge": "b", "svi_address": "nonsense"}]},
            "l2vnis[0].svi_address",
            "IPv4 or IPv6",
        ),
        ({**BASE, "vtep": "192.0.2.300"}, "vtep", "IPv4 or IPv6"),
        ({**BASE, "router_id": "2001:db8::1"}, "router_id", "IPv4"),
        (
            {**BASE, "peers": [{"address": "10.0.0.1", "remote_as": 1, "hold_time": 2}]},
            "peers[0].hold_time",
            "RFC 4271",
        ),
        (
            {**BASE, "peers": [{"address": "10.0.0.1", "remote_as": 1, "password": 'a";}'}]},
            "peers[0].password",
            "without quotes",
        ),
        (
            {**BASE, "peers": [{"address": "10.0.0.1", "remote_as": 1, "password": "x" * 81}]},
            "peers[0].password",
            "80 bytes",
        ),
        (
            {**BASE, "l3vnis": [{"vni": 9, "table": 9, "router_mac": "02:00"}]},
            "l3vnis[0].router_mac",
            "not a MAC",
        ),
        ({**BASE, "l3vnis": [{"vni": 9}]}, "l3vnis[0]", "routing table"),
        (
            {**BASE, "l3vnis": [{"vni": 9, "table": 9, "l2vnis": [100]}]},
            "l3vnis[0].l2vnis[0]",
            "not configured",
        ),
    ],
)
def test_field_errors_name_the_field(data, field, reason):
    found = problems(data)
    assert any(f == field and reason in r for f, r in found), found


def test_cross_checks():
    dup_vni = problems({**BASE, "l2vnis": [{"vni": 5, "bridge": "a"}, {"vni": 5, "bridge": "b"}]})
    assert ("l2vnis[1].vni", "duplicate VNI 5 (also l2vnis[0].vni)") in dup_vni
    peer = {"address": "10.0.0.1", "remote_as": 1}
    assert problems({**BASE, "peers": [peer, peer]})[0][0] == "peers[1].address"
    same_bridge = problems(
        {**BASE, "l2vnis": [{"vni": 5, "bridge": "br"}, {"vni": 6, "bridge": "br"}]}
    )
    assert same_bridge == [("l2vnis[1]", "interface br is also used by l2vnis[0]")]


@pytest.mark.parametrize("data", [None, [], "text", 5])
def test_top_level_must_be_a_mapping(data):
    (problem,) = problems(data)
    assert problem[0] == "" and "mapping" in problem[1]


def test_render_names_file_field_and_reason():
    err = ConfigError("/etc/evpnd/evpnd.yaml", [("asn", "bad"), ("", "general")])
    assert err.render() == "/etc/evpnd/evpnd.yaml: asn: bad\n/etc/evpnd/evpnd.yaml: general"


def test_l3vni_of_is_indexed_per_config():
    """l3vni_of answers from an index of the Config it is asked about (issue 17): another
    Config (a reload) is answered from its own lists, and an L2VNI no L3VNI lists has none."""
    l2 = [{"vni": v, "bridge": f"br{v}"} for v in (100, 200, 300)]
    one = parse_config(
        {**BASE, "l2vnis": l2, "l3vnis": [{"vni": 5000, "table": 5000, "l2vnis": [100, 200]}]},
        "one.yaml",
    )
    two = parse_config(
        {**BASE, "l2vnis": l2, "l3vnis": [{"vni": 6000, "table": 6000, "l2vnis": [200, 300]}]},
        "two.yaml",
    )
    assert one.l3vni_of(100).vni == 5000 and one.l3vni_of(300) is None
    assert two.l3vni_of(100) is None and two.l3vni_of(300).vni == 6000
    assert one.l3vni_of(200).vni == 5000 and two.l3vni_of(200).vni == 6000
