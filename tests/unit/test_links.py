"""evpnd/dataplane/links.py (issue 17): the batched device plan writes only what is missing or
differs, names a problem by config field path, and the link parser reads what the kernel
sends (a message built here, laid out as the kernel's); `show status` shows the scale figures."""

from __future__ import annotations

import struct

from evpnd.api import protocol as p
from evpnd.api import queries
from evpnd.cli import tables
from evpnd.dataplane import links
from tests.unit.test_api_world import make_world


def alias(vni: int) -> str:
    return f"evpnd:vni={vni}"


def good(vni: int, br: int, vx: int) -> dict[str, links.Link]:
    return {
        f"br{vni}": links.Link(br, f"br{vni}", "bridge", True, 1450, 0, alias(vni)),
        f"vx{vni}": links.Link(
            vx,
            f"vx{vni}",
            "vxlan",
            True,
            1450,
            br,
            alias(vni),
            vxlan_id=vni,
            vxlan_local="10.0.0.1",
            port_learning=False,
            port_neigh_suppress=True,
        ),  # fmt: skip
    }


def wants(*vnis: int) -> list[links.Want]:
    return [links.Want(v, f"l2vnis[{i}]", f"br{v}", f"vx{v}") for i, v in enumerate(vnis)]


def test_nothing_written_when_every_device_is_as_wanted():
    have = {**good(100, 10, 11), **good(200, 20, 21)}
    assert links.plan_creations(wants(100, 200), have, alias, "10.0.0.1", 1450).steps == []
    fix = links.plan_corrections(wants(100, 200), have, set(), alias, "10.0.0.1", 1450)
    assert fix.steps == []


def test_missing_devices_created_and_corrections_only_where_different():
    have = good(200, 20, 21)
    plan = links.plan_creations(wants(100, 200), have, alias, "10.0.0.1", 1450)
    assert [(s.vni, s.what, s.path) for s in plan.steps] == [
        (100, "bridge created", "l2vnis[0].bridge"),
        (100, "vxlan device created", "l2vnis[0].vxlan_device"),
    ]
    have["vx200"].master = 0  # taken out of its bridge by someone
    have["vx200"].up = False
    fix = links.plan_corrections(wants(200), have, set(), alias, "10.0.0.1", 1450)
    assert [s.what for s in fix.steps] == ["vxlan set ['master']", "bridge port set", "vxlan up"]
    # An adopted bridge keeps its own MTU and alias; a created one gets evpnd's.
    have["br200"].mtu, have["br200"].alias = 9000, ""
    adopted = links.plan_corrections(wants(200), good(200, 20, 21) | {"br200": have["br200"]},
                                     set(), alias, "10.0.0.1", 1450)  # fmt: skip
    assert adopted.steps == []
    mine = links.plan_corrections(wants(200), good(200, 20, 21) | {"br200": have["br200"]},
                                  {"br200"}, alias, "10.0.0.1", 1450)  # fmt: skip
    assert [s.what for s in mine.steps] == ["bridge set ['alias', 'mtu']"]


def test_foreign_devices_are_problems_by_field_path():
    have = {
        "br100": links.Link(5, "br100", "veth"),
        "vx200": links.Link(6, "vx200", "vxlan", vxlan_id=999),
        "vx300": links.Link(7, "vx300", "macvlan"),
    }
    plan = links.plan_creations(wants(100, 200, 300), have, alias, "10.0.0.1", 1450)
    assert plan.steps == []
    assert plan.problems == {
        100: "l2vnis[0].bridge: br100 exists but is a veth, not a bridge",
        200: "l2vnis[1].vxlan_device: vx200 exists with VNI 999, configured 200",
        300: "l2vnis[2].vxlan_device: vx300 exists but is a macvlan, not vxlan",
    }


def test_parse_link_reads_a_vxlan_bridge_port():
    """An RTM_NEWLINK body as the kernel lays it out: ifinfomsg, attributes, one LINKINFO
    with the vxlan data and the bridge port (slave) data."""
    at, nest = links._attr, links._nest
    data = at(links.IFLA_VXLAN_ID, struct.pack("=I", 7)) + links._local("10.0.0.1")
    data += at(links.IFLA_VXLAN_LEARNING, b"\0")
    port = at(links.IFLA_BRPORT_LEARNING, b"\0") + at(links.IFLA_BRPORT_NEIGH_SUPPRESS, b"\1")
    info = at(links.IFLA_INFO_KIND, b"vxlan\0") + nest(links.IFLA_INFO_DATA, data)
    info += at(links.IFLA_INFO_SLAVE_KIND, b"bridge\0") + nest(links.IFLA_INFO_SLAVE_DATA, port)
    body = struct.pack("=BxHiII", 0, 1, 42, links.IFF_UP, 0)
    body += at(links.IFLA_IFNAME, b"vx7\0") + at(links.IFLA_MTU, struct.pack("=I", 1450))
    body += at(links.IFLA_IFALIAS, alias(7).encode()) + at(
        links.IFLA_ADDRESS, bytes([2, 0, 0, 0, 0, 7])
    )
    body += at(links.IFLA_MASTER, struct.pack("=I", 3)) + nest(links.IFLA_LINKINFO, info)
    link = links.parse_link(body, 0, len(body))
    assert (link.index, link.name, link.up, link.mtu, link.master) == (42, "vx7", True, 1450, 3)
    assert link.alias == alias(7) and link.address == "02:00:00:00:00:07"
    assert (link.kind, link.vxlan_id, link.vxlan_local, link.vxlan_learning) == (
        "vxlan",
        7,
        "10.0.0.1",
        False,
    )
    assert link.port_learning is False and link.port_neigh_suppress is True


def test_show_status_has_the_scale_figures():
    w = make_world()
    problem = "vni 37: l2vnis[2].bridge: br37 exists but is a veth"
    w.stats = {"last_periodic_cpu_seconds": 0.25, "last_full_seconds": 0.05, "full_passes": 3,
               "messages_sent": 4, "device_writes": 2, "device_problems": [problem],
               "monitor_filter": "ebpf-task"}  # fmt: skip
    reply = queries.show_status(w, p.StatusArgs())
    assert reply.full_pass_cpu_seconds == 0.25 and reply.kernel_writes == 6
    assert reply.monitor_filter == "ebpf-task"
    text = tables.render_status(reply)
    assert (
        "full pass: 0.250 s CPU, 0.050 s, 3 passes; 6 kernel writes; monitor filter ebpf-task"
        in text
    )
    assert (
        text.splitlines()[-1]
        == "device problem: vni 37: l2vnis[2].bridge: br37 exists but is a veth"
    )
