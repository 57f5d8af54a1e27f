"""VTEP family checks (issue 16): the config's side (evpnd.config.vtep_family_problems) and the
host's (evpnd.dataplane.vtep_host, given the host's addresses)."""

from __future__ import annotations

import pytest

from evpnd.config import ConfigError, parse_config
from evpnd.dataplane.vtep_host import vtep_host_problem

V6 = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "2001:db8::1"}


def problems(data: dict) -> list[tuple[str, str]]:
    try:
        parse_config(data)
    except ConfigError as exc:
        return exc.problems
    return []


def test_ipv6_vtep_with_ipv6_sessions_and_a_vrf_is_fine():
    peer = {"address": "2001:db8::2", "remote_as": 65002, "local_address": "2001:db8::1"}
    l3 = {"vni": 5000, "vrf": "vrf-a", "l2vnis": [100]}
    cfg = {**V6, "peers": [peer], "l2vnis": [{"vni": 100, "bridge": "br100"}], "l3vnis": [l3]}
    assert problems(cfg) == []


def test_ipv6_vtep_with_some_ipv6_session_is_fine():
    peers = [
        {"address": "10.0.0.2", "remote_as": 2, "local_address": "10.0.0.1"},
        {"address": "2001:db8::2", "remote_as": 2},  # no local_address: may be IPv6
    ]
    assert problems({**V6, "peers": peers}) == []


@pytest.mark.parametrize(
    ("extra", "field", "text"),
    [
        ({"peers": [{"address": "10.0.0.2", "remote_as": 2, "local_address": "10.0.0.1"}]},
         "vtep", "every peer's local_address is IPv4"),
        ({"l2vnis": [{"vni": 100, "bridge": "br100"}],
          "l3vnis": [{"vni": 5000, "table": 5000, "l2vnis": [100]}]},
         "l3vnis[0].vrf", "needs the L3VNI in a VRF"),
        ({"vtep": "fe80::1"}, "vtep", "link-local"),
        ({"vtep": "::1"}, "vtep", "loopback"),
        ({"vtep": "127.0.0.1"}, "vtep", "loopback"),
        ({"vtep": "ff02::1"}, "vtep", "multicast"),
        ({"vtep": "224.0.0.1"}, "vtep", "multicast"),
        ({"vtep": "::"}, "vtep", "unspecified"),
        ({"vtep": "::ffff:10.0.0.1"}, "vtep", "IPv4 address in IPv6 form"),
    ],
)  # fmt: skip
def test_unusable_vtep_is_named(extra, field, text):
    found = problems({**V6, **extra})
    assert len(found) == 1 and found[0][0] == field and text in found[0][1], found


def test_ipv4_vtep_over_ipv6_sessions_stays_allowed():
    peer = {"address": "2001:db8::2", "remote_as": 2, "local_address": "2001:db8::1"}
    assert problems({**V6, "vtep": "192.0.2.1", "peers": [peer]}) == []


def test_host_check_compares_canonical_spellings():
    have = {"2001:db8::1", "10.0.0.1", "::1"}
    assert vtep_host_problem("2001:0db8:0:0::1", have) is None
    assert vtep_host_problem("10.0.0.1", have) is None
    msg = vtep_host_problem("2001:db8::2", have)
    assert msg is not None and "2001:db8::2 is not an address" in msg and "2001:db8::1" in msg
    assert "no IPv6 address" in str(vtep_host_problem("2001:db8::2", {"10.0.0.1", "::1"}))
    assert vtep_host_problem("10.0.0.9", have) is None  # IPv4: a warning only


def test_compatible_ipv4_in_ipv6_vtep_is_refused():
    found = problems({**V6, "vtep": "::a00:1"})
    assert [f for f, _ in found] == ["vtep"] and "IPv4 address in IPv6 form" in found[0][1]


def test_kernel_and_bgp_text_of_an_accepted_vtep_is_the_configs_spelling():
    """The core compares VTEPs as text: the config's (ipaddress) and the wire's/kernel's
    (inet_ntop, in compact.py and netlink.py) agree for every IPv6 VTEP the config accepts,
    zero runs of every length and position and ties included (RFC 5952 both)."""
    import ipaddress
    import random
    import socket

    rng = random.Random(16)
    samples = []
    for _ in range(20_000):
        groups = [rng.choice((0, 0, 0, 1, 0xDB8, rng.randrange(1 << 16))) for _ in range(8)]
        samples.append(bytes(b for g in groups for b in g.to_bytes(2, "big")))
    checked = 0
    for raw in samples:
        addr = ipaddress.IPv6Address(raw)
        if addr.ipv4_mapped or raw[:12] == bytes(12):
            continue  # refused as VTEPs (test above)
        assert socket.inet_ntop(socket.AF_INET6, raw) == str(addr), raw.hex()
        checked += 1
    assert checked > 15_000


def test_start_checks_name_directories_that_cannot_be_made(tmp_path):
    from evpnd.cli.start_checks import start_problems

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = parse_config({
        **V6, "vtep": "192.0.2.1", "runtime_dir": str(blocker / "run"),
        "api": {"socket": str(tmp_path / "ok" / "evpnd.sock")},
    })  # fmt: skip
    found = start_problems(cfg)
    assert [f for f, _ in found] == ["runtime_dir"], found
    assert found[0][1].startswith(f"cannot create {blocker / 'run'}: Not a directory"), found
    assert (tmp_path / "ok").is_dir()  # made, as the daemon would
