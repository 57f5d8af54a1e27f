"""Network policy on Debian's kernel: bridge conntrack (nf_conntrack_bridge, missing on the
development host) for stateful return traffic, and routed policy in `table inet evpnd` over an
L3VNI with VRFs.

The policy edge runs as evpnd runs it (PolicyEnforcer: probe, compile, one libnftables
transaction) inside each leaf's namespace, in a child process (`ip netns exec`: nftables
acts on the caller's namespace); the endpoints EVPN would know are given as data, and for the
routed case the L3VNI is set up by the Dataplane from a desired state given by hand, as
tests/vm/test_vrf_traffic.py does. Full daemons under TCG would add minutes and no kernel
behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evpnd.core.desired import RMAC, ROUTE, DesiredState, RouteNextHop
from evpnd.dataplane import Dataplane
from evpnd.lab.netns import Netns
from tests.netns.test_dataplane_traffic import H1_MAC, H2_MAC, host, ping
from tests.vm.test_vrf_traffic import RMAC1, RMAC2, vrf_config

pytestmark = pytest.mark.netns

RUN_ENFORCER = """
import asyncio, json, sys
import structlog
from evpnd.policy.enforcer import PolicyEnforcer
from evpnd.policy.schema import PolicyConfig, policy_spec
args = json.loads(sys.argv[1])
spec = policy_spec(PolicyConfig.model_validate(args["policy"]),
                   {int(k): v for k, v in args["bridges"].items()}, tuple(args["l3"]))
endpoints = {int(k): {m: frozenset(ips) for m, ips in v.items()}
             for k, v in args["endpoints"].items()}
async def main():
    enf = PolicyEnforcer(spec, lambda: endpoints, structlog.get_logger("policy"))
    await enf.start()
    await enf.stop()
    print(json.dumps(enf.status()))
asyncio.run(main())
"""


def enforce(ns: Netns, policy: dict, bridges: dict, l3: list[str], endpoints: dict) -> dict:
    args = json.dumps({"policy": policy, "bridges": bridges, "l3": l3, "endpoints": endpoints})
    proc = subprocess.run(ns.cmd(sys.executable, "-c", RUN_ENFORCER, args), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def no_reply(ns: Netns, ip: str) -> bool:
    """One ping, no answer (TCG is slow: a generous process timeout, the answer wait is 2 s)."""
    proc = subprocess.run(ns.cmd("ping", "-n", "-c", "1", "-W", "2", ip), capture_output=True,
                          timeout=120)  # fmt: skip
    return proc.returncode != 0


def tcp_ok(ns: Netns, ip: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(({ip!r}, {port}), timeout=2).close()"
    return subprocess.run(ns.cmd(sys.executable, "-c", code), capture_output=True).returncode == 0


LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
while True:
    s.accept()[0].close()
"""


async def test_stateful_return_traffic_over_bridge_conntrack(lab):
    leaf = lab.netns("leaf")
    leaf.ip("link", "add", "br100", "type", "bridge")
    leaf.ip("link", "set", "br100", "up")
    h1 = host(lab, leaf, "h1", "p1", H1_MAC, "10.1.0.11")
    h2 = host(lab, leaf, "h2", "p2", H2_MAC, "10.1.0.12")
    for port in ("p1", "p2"):
        leaf.ip("link", "set", port, "master", "br100")
    lab.start(h2, [sys.executable, "-c", LISTEN, "8000"])
    lab.start(h1, [sys.executable, "-c", LISTEN, "9000"])
    assert await ping(h1, "10.1.0.12")
    policy = {
        "groups": {"a": {"vni": 100, "macs": [H1_MAC]}, "b": {"vni": 100, "macs": [H2_MAC]}},
        "rules": [
            {
                "name": "a-to-b-8000",
                "from": "a",
                "to": "b",
                "proto": "tcp",
                "ports": [8000],
                "action": "allow",
            }
        ],  # fmt: skip
        "default": "deny",
    }
    st = enforce(leaf, policy, {"100": "br100"}, [], {})
    assert st["bridge_conntrack"] is True, st
    assert st["problems"] == [], st
    # the SYN is allowed by the rule; the SYN-ACK (b -> a, no rule) only by conntrack
    assert tcp_ok(h1, "10.1.0.12", 8000)
    assert not tcp_ok(h2, "10.1.0.11", 9000)  # a new flow the other way: default deny
    assert no_reply(h1, "10.1.0.12")
    listing = leaf.run(["nft", "list", "chain", "bridge", "evpnd", "vni_100"])
    assert "ct state established,related accept" in listing, listing


async def test_routed_policy_in_inet_over_an_l3vni_with_vrfs(lab):
    l1, l2 = lab.netns("leaf1"), lab.netns("leaf2")
    lab.link(l1, "u0", l2, "u0", "10.0.0.1/24", "10.0.0.2/24")
    h1 = host(lab, l1, "h1", "p1", H1_MAC, "10.1.0.11")
    h2 = host(lab, l2, "h2", "p1", H2_MAC, "10.2.0.12")
    h1.ip("route", "add", "default", "via", "10.1.0.1")
    h2.ip("route", "add", "default", "via", "10.2.0.1")
    lab.start(h2, [sys.executable, "-c", LISTEN, "8000"])
    sides = []
    for leaf, vtep, vni, svi, rmac in (
        (l1, "10.0.0.1", 100, "10.1.0.1/24", RMAC1),
        (l2, "10.0.0.2", 101, "10.2.0.1/24", RMAC2),
    ):
        leaf.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        d = DesiredState()
        dp = Dataplane(vrf_config(vtep, vni, svi, rmac), lambda e: None, netns=leaf.name)
        await dp.start(d)
        sides.append((leaf, d, dp))
    try:
        for (_leaf, d, dp), prefix, vtep, rmac in (
            (sides[0], "10.2.0.0/24", "10.0.0.2", RMAC2),
            (sides[1], "10.1.0.0/24", "10.0.0.1", RMAC1),
        ):
            d.routes[200] = {prefix: RouteNextHop(vtep, rmac)}
            d.rmacs[200] = {vtep: rmac}
            d.dirty |= {(ROUTE, 200, prefix), (RMAC, 200, vtep)}
            dp.wanted_changed()
            await dp.idle()
        assert await ping(h1, "10.2.0.12")
        policy = {
            "groups": {
                "a": {"vni": 100, "prefixes": ["10.1.0.11/32"]},
                "b": {"vni": 100, "prefixes": ["10.2.0.0/24"]},  # routed: another subnet
            },
            "rules": [
                {
                    "name": "a-to-b-8000",
                    "from": "a",
                    "to": "b",
                    "proto": "tcp",
                    "ports": [8000],
                    "action": "allow",
                },
            ],  # fmt: skip
            "default": "deny",
        }
        st = enforce(l1, policy, {"100": "br100"}, ["br200", "vrf-blue"], {})
        assert st["inet_conntrack"] is True and st["problems"] == [], st
        assert no_reply(h1, "10.2.0.12")  # routed ICMP: default deny
        assert tcp_ok(h1, "10.2.0.12", 8000)  # allowed, and its return traffic by conntrack
        counters = json.loads(l1.run(["nft", "-j", "list", "chain", "inet", "evpnd", "routed"]))
        hits = [
            s["counter"]["packets"]
            for item in counters["nftables"]
            if "rule" in item and ":a-to-b-8000:" in item["rule"].get("comment", "")
            for s in item["rule"]["expr"]
            if "counter" in s
        ]
        assert sum(hits) >= 1, counters
        # allow everything routed again: the ping passes (the same transaction path)
        st = enforce(l1, {**policy, "default": "allow"}, {"100": "br100"},
                     ["br200", "vrf-blue"], {})  # fmt: skip
        assert await ping(h1, "10.2.0.12")
    finally:
        for _leaf, _d, dp in sides:
            await dp.stop()
