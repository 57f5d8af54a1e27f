"""Every containerlab topology in the tree is one the runner and containerlab can both use."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evpnd.config import load_config
from evpnd.lab.frr import split_frr_conf
from evpnd.lab.topology import (
    EVPND_CONF_TARGET,
    FRR_CONF_TARGET,
    KNOWN_KINDS,
    TopologyError,
    load_topology,
    parse_topology,
)

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = sorted((ROOT / "containerlab").glob("**/*.clab.yml"))


def test_there_are_topologies():
    names = {p.name for p in TOPOLOGIES}
    assert {"evpn-l2.clab.yml", "evpn-l3.clab.yml"} <= names


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_kinds_known_and_binds_exist(path: Path):
    topo = load_topology(path)  # raises on unknown kinds, missing files, bad endpoints
    assert topo.nodes
    for node in topo.nodes.values():
        assert node.kind in KNOWN_KINDS
        assert node.image, f"{node.name}: containerlab needs an image"
        for bind in node.binds:
            assert bind.source.is_file(), bind.source
            assert bind.source.is_relative_to(path.parent), "binds stay beside the topology"


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_links_name_defined_nodes_once(path: Path):
    raw = yaml.safe_load(path.read_text())
    nodes = set(raw["topology"]["nodes"])
    seen = set()
    for link in raw["topology"]["links"]:
        assert len(link["endpoints"]) == 2
        for ep in link["endpoints"]:
            node, ifname = ep.split(":")
            assert node in nodes, f"{ep} names no node"
            assert ep not in seen, f"{ep} used twice"
            assert ifname.startswith("eth") and ifname != "eth0", "eth0 is clab's management"
            seen.add(ep)


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_every_evpnd_yaml_loads(path: Path):
    topo = load_topology(path)
    evpnd_nodes = topo.by_role("evpnd")
    assert evpnd_nodes, "each topology exercises evpnd"
    for node in evpnd_nodes:
        cfg = load_config(node.bound(EVPND_CONF_TARGET))
        assert cfg.peers, f"{node.name}: no BGP peers"
        # the runner rewrites these per node; they must be the packaged defaults' shape
        assert cfg.api.socket.is_absolute() and cfg.runtime_dir.is_absolute()


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_frr_configs_have_bgp(path: Path):
    for node in load_topology(path).by_role("frr"):
        zebra, bgpd = split_frr_conf(node.bound(FRR_CONF_TARGET).read_text())
        assert "router bgp" in bgpd and "router bgp" not in zebra
        assert "l2vpn evpn" in bgpd


def test_l2_has_a_1500_underlay_link_and_mixed_leaves():
    topo = load_topology(ROOT / "containerlab/evpn-l2/evpn-l2.clab.yml")
    assert any(link.mtu == 1500 for link in topo.links)
    assert len(topo.by_role("evpnd")) >= 2 and len(topo.by_role("frr")) >= 2


def test_l3_advertises_type5():
    topo = load_topology(ROOT / "containerlab/evpn-l3/evpn-l3.clab.yml")
    for node in topo.by_role("evpnd"):
        cfg = load_config(node.bound(EVPND_CONF_TARGET))
        assert cfg.l3vnis and cfg.l3vnis[0].advertise_prefixes and cfg.l3vnis[0].table


def _topo(nodes: dict, links: list, tmp_path: Path) -> object:
    data = {"name": "t", "topology": {"nodes": nodes, "links": links}}
    return parse_topology(data, tmp_path / "t.clab.yml")


@pytest.mark.parametrize(
    "nodes, links, error",
    [
        ({"a": {"kind": "ceos"}}, [], "kind"),
        ({"a": {"kind": "linux"}}, [{"endpoints": ["a:eth1", "b:eth1"]}], "names no defined"),
        ({"a": {"kind": "linux"}}, [{"endpoints": ["a:eth1"]}], "exactly two"),
        ({"a": {"kind": "linux"}}, [{"endpoints": ["a-eth1", "a:eth2"]}], "node:ifname"),
        (
            {"a": {"kind": "linux"}, "b": {"kind": "linux"}},
            [{"endpoints": ["a:eth1", "b:eth1"]}, {"endpoints": ["a:eth1", "b:eth2"]}],
            "also used",
        ),
        ({"a": {"kind": "linux", "binds": ["nope.conf:/etc/frr/frr.conf"]}}, [], "not exist"),
        (
            {"a": {"kind": "linux"}, "b": {"kind": "linux"}},
            [{"endpoints": ["a:eth1", "b:eth1"], "mtu": 20}],
            "mtu",
        ),  # fmt: skip
    ],
)
def test_bad_topologies_are_rejected(nodes, links, error, tmp_path):
    with pytest.raises(TopologyError, match=error):
        _topo(nodes, links, tmp_path)


def test_roles_from_binds(tmp_path):
    (tmp_path / "frr.conf").write_text("router bgp 1\n")
    (tmp_path / "e.yaml").write_text("x: 1\n")
    topo = _topo(
        {
            "r": {"kind": "linux", "image": "frr", "binds": [f"frr.conf:{FRR_CONF_TARGET}"]},
            "e": {"kind": "linux", "binds": [f"e.yaml:{EVPND_CONF_TARGET}:ro"]},
            "h": {"kind": "linux"},
        },
        [],
        tmp_path,
    )
    assert {n.name: n.role for n in topo.nodes.values()} == {"r": "frr", "e": "evpnd", "h": "host"}
    assert topo.nodes["e"].binds[0].mode == "ro"


def test_split_frr_conf_shares_common_lines():
    zebra, bgpd = split_frr_conf(
        "hostname x\n!\ninterface eth1\n ip address 10.0.0.1/31\nrouter bgp 1\n neighbor a\n"
        "exit\nroute-map RM permit 10\n"
    )
    assert "hostname x" in zebra and "hostname x" in bgpd
    assert "interface eth1" in zebra and "interface eth1" not in bgpd
    assert " neighbor a" in bgpd and " neighbor a" not in zebra
    assert "route-map RM" in zebra and "route-map RM" in bgpd


# -- the runner's pure parts -----------------------------------------------------------------
def test_derived_evpnd_config_moves_only_runtime_paths(tmp_path):
    from evpnd.lab.runner import derive_evpnd_config

    src = ROOT / "containerlab/evpn-l2/leaf3/evpnd.yaml"
    out = tmp_path / "evpnd.yaml"
    out.write_text(derive_evpnd_config(src, tmp_path / "leaf3", tmp_path / "leaf3/evpnd.sock"))
    derived, original = load_config(out), load_config(src)
    assert derived.runtime_dir == tmp_path / "leaf3"
    assert derived.api.socket == tmp_path / "leaf3/evpnd.sock"
    assert derived.model_copy(update={"runtime_dir": original.runtime_dir, "api": original.api}) \
        == original  # fmt: skip


def test_expected_vteps_from_node_configs():
    from evpnd.lab.runner import expected_vteps

    topo = load_topology(ROOT / "containerlab/evpn-l2/evpn-l2.clab.yml")
    assert expected_vteps(topo) == {
        100: {"10.0.0.11": "leaf1", "10.0.0.12": "leaf2", "10.0.0.13": "leaf3"},
        200: {"10.0.0.11": "leaf1", "10.0.0.13": "leaf3"},
    }


def test_container_only_exec_lines_are_skipped():
    from evpnd.lab.netns import Netns
    from evpnd.lab.runner import exec_line

    ns = Netns("never-created")  # skipped lines never reach the namespace
    for line in ("apk add tcpdump", "/usr/lib/frr/frrinit.sh start", "evpnd -c /x.yaml"):
        assert exec_line(ns, line).startswith("skipped")


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_every_evpnd_vtep_is_put_on_an_interface_by_its_exec_lines(path: Path):
    """evpnd refuses to start with an IPv6 VTEP no interface holds (issue 16): the node's own
    exec lines must add it (for IPv4 too, for the same reason: it is the VXLAN source)."""
    for node in load_topology(path).by_role("evpnd"):
        vtep = str(load_config(node.bound(EVPND_CONF_TARGET)).vtep)
        added = [ln.split()[3].split("/")[0] for ln in node.exec if ln.startswith("ip addr add")]
        assert vtep in added, f"{node.name}: vtep {vtep} not in {added}"


def test_ipv6_topology_has_an_ipv6_only_underlay():
    topo = load_topology(ROOT / "containerlab/evpn-ipv6/evpn-ipv6.clab.yml")
    leaves = topo.by_role("evpnd")
    assert len(leaves) >= 2
    for node in leaves:
        cfg = load_config(node.bound(EVPND_CONF_TARGET))
        assert cfg.vtep.version == 6 and cfg.router_id.version == 4
        assert all(p.address.version == 6 and p.local_address is not None for p in cfg.peers)
    routers = [*leaves, *topo.by_role("frr"), topo.nodes["spine"]]
    for node in routers:  # no IPv4 address anywhere in the underlay
        for line in node.exec:
            if line.startswith("ip addr add") or line.startswith("ip route add"):
                assert ":" in line.split()[3], f"{node.name}: {line}"
    # FRR 8.4 cannot carry IPv6 VTEPs' type-3 routes (README, "IPv6 underlay"): none here
    assert topo.by_role("frr") == []
    # hosts: 1500 minus 70 bytes of VXLAN over IPv6, and a 1500-byte link to prove it
    hosts = [n for n in topo.by_role("host") if n.name != "spine"]
    host_mtus = {ln.split()[-1] for n in hosts for ln in n.exec if " mtu " in ln}
    assert host_mtus == {"1430"}
    assert any(link.mtu == 1500 for link in topo.links)
