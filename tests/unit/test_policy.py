"""Network policy's pure parts: the config section's checks, group members, the compiled
ruleset, the transaction that reconciles the kernel, the verdict (no root, no kernel)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from evpnd.config import ConfigError, parse_config
from evpnd.policy.compile import _cidrs, _ranges, compile_ruleset, group_members, verdict
from evpnd.policy.model import BRIDGE, FAMILIES, INET, Capabilities, GroupSpec, PolicySpec, RuleSpec
from evpnd.policy.reconcile import diff, keep_elements
from evpnd.policy.schema import policy_spec

BASE = {"router_id": "10.0.0.1", "asn": 65001, "vtep": "10.0.0.1",
        "l2vnis": [{"vni": 100, "bridge": "br100"}, {"vni": 200, "bridge": "br200"}]}  # fmt: skip
POLICY = {
    "groups": {
        "web": {"vni": 100, "prefixes": ["10.1.0.0/26"]},
        "db": {"vni": 100, "macs": ["02:00:00:00:00:10"]},
        "tenant-b": {"vni": 200},
    },
    "rules": [
        {
            "name": "web-to-db",
            "from": "web",
            "to": "db",
            "proto": "tcp",
            "ports": [5432],
            "action": "allow",
        },
        {
            "name": "no-ssh",
            "to": "any",
            "proto": "tcp",
            "ports": [22],
            "action": "deny",
            "log": True,
        },
    ],  # fmt: skip
    "default": "allow",
}
ENDPOINTS = {
    100: {
        "02:00:00:00:00:10": frozenset({"10.1.0.70"}),  # db by MAC: its IP joins
        "02:00:00:00:00:11": frozenset({"10.1.0.5"}),  # inside web's prefix: joins web
        "02:00:00:00:00:12": frozenset({"10.1.0.99"}),  # in no group
    },
    200: {f"02:00:00:00:02:{i:02x}": frozenset({f"10.2.0.{i}"}) for i in range(1, 11)},
}


def spec() -> PolicySpec:
    cfg = parse_config({**BASE, "policy": POLICY})
    out = policy_spec(cfg.policy, {v.vni: v.bridge for v in cfg.l2vnis})
    assert out is not None
    return out


def problems(policy: dict) -> list[tuple[str, str]]:
    try:
        parse_config({**BASE, "policy": policy})
    except ConfigError as exc:
        return exc.problems
    return []


def test_the_issue_example_is_valid():
    assert problems(POLICY) == []


def test_bad_policies_name_the_field():
    cases = [
        ({"rules": [{"name": "r", "from": "nope", "action": "allow"}]}, "policy.rules[0].from"),
        ({"groups": {"a-b": {"vni": 100}, "a_b": {"vni": 100}}}, "policy.groups.a_b"),
        ({"groups": {"any": {"vni": 100}}}, "policy.groups.any"),
        ({"rules": [{"name": "r", "proto": "tcp", "ports": [0], "action": "allow"}]},
         "policy.rules[0].ports[0]"),
        ({"rules": [{"name": "r", "proto": "icmp", "ports": [1], "action": "allow"}]},
         "policy.rules[0].ports"),
        ({"rules": [{"name": "r", "ports": [22], "action": "deny"}]}, "policy.rules[0].ports"),
        ({"groups": {"g": {"vni": 300}}}, "policy.groups.g.vni"),
        ({"groups": {"g": {"vni": 100, "macs": ["zz"]}}}, "policy.groups.g.macs"),
        ({"rules": [{"name": "r", "action": "allow"}, {"name": "r", "action": "deny"}]},
         "policy.rules[1].name"),
        ({"rules": [{"name": "r", "action": "permit"}]}, "policy.rules[0].action"),
        ({"rules": [{"name": "r", "action": "allow", "extra": 1}]}, "policy.rules[0].extra"),
    ]  # fmt: skip
    for policy, field in cases:
        found = problems(policy)
        assert found and any(f == field for f, _ in found), (policy, found)


def test_members_static_and_learned():
    s = spec()
    web = group_members(s.group("web"), ENDPOINTS)
    assert web.static == 1 and web.learned == 1
    assert web.macs == {"02:00:00:00:00:11"}
    assert [str(n) for n in web.ip4] == ["10.1.0.0/26"]  # the learned host is inside
    db = group_members(s.group("db"), ENDPOINTS)
    assert db.macs == {"02:00:00:00:00:10"} and [str(n) for n in db.ip4] == ["10.1.0.70/32"]
    tb = group_members(s.group("tenant-b"), ENDPOINTS)
    assert tb.static == 0 and tb.learned == 10 and len(tb.macs) == 10
    assert [str(n) for n in tb.ip4] == ["10.2.0.1/32", "10.2.0.2/31", "10.2.0.4/30",
                                        "10.2.0.8/31", "10.2.0.10/32"]  # fmt: skip


def test_compile_is_deterministic_and_reports_missing_bridge_conntrack():
    s = spec()
    one, probs, _ = compile_ruleset(s, ENDPOINTS, Capabilities(bridge_conntrack=False))
    two, _, _ = compile_ruleset(s, dict(reversed(list(ENDPOINTS.items()))),
                                Capabilities(bridge_conntrack=False))  # fmt: skip
    assert one == two
    assert [p.where for p in probs] == ["bridge"] and "nf_conntrack_bridge" in probs[0].reason
    _, probs, _ = compile_ruleset(s, ENDPOINTS, Capabilities())
    assert probs == []


def test_bridge_rules_stay_in_their_vni_chain():
    rs, _, _ = compile_ruleset(spec(), ENDPOINTS, Capabilities(), {100: frozenset({"vx100"})})
    chains = {c.name: c for c in rs[BRIDGE].chains}
    rules_100 = {r.rule for r in chains["vni_100"].rules}
    rules_200 = {r.rule for r in chains["vni_200"].rules}
    assert "web-to-db" in rules_100 and "web-to-db" not in rules_200
    assert "no-ssh" in rules_100 and "no-ssh" in rules_200  # to: any, from: any
    assert chains["vni_100"].rules[-1].rule == "default"
    ports = {s.name: s.elements for s in rs[BRIDGE].sets}
    assert ports["ports_100"] == {"vx100"} and ports["ports_200"] == frozenset()
    # routed: IP matches only, bridged IP returns early (br_netfilter)
    inet = {c.name: c for c in rs[INET].chains}
    assert all("mac" not in r.comment for r in inet["routed"].rules)
    assert [r.comment.split(":")[1] for r in inet["forward"].rules] == ["bridged", "bridged",
                                                                        "jump"]  # fmt: skip


def test_reconcile_only_what_differs():
    s = spec()
    caps = Capabilities(bridge_conntrack=False)
    rs, _, _ = compile_ruleset(s, ENDPOINTS, caps)
    create = diff(rs, {}, FAMILIES)
    assert create[0] == {"add": {"table": {"family": "bridge", "name": "evpnd"}}}
    assert diff(rs, rs, FAMILIES) == []  # a restart with nothing changed: no transaction
    # one endpoint leaves VNI 200: one element command per affected set, no table rebuilt
    fewer = {**ENDPOINTS, 200: dict(list(ENDPOINTS[200].items())[:-1])}
    rs2, _, _ = compile_ruleset(s, fewer, caps)
    cmds = diff(rs2, rs, FAMILIES)
    assert cmds and all("element" in next(iter(c.values())) for c in cmds)
    assert all("delete" in c or "add" in c for c in cmds)
    # during the hold time after a start nothing is deleted
    assert all("add" in c for c in diff(keep_elements(rs2, rs), rs, FAMILIES))
    # a rule changed (or deleted by hand): the table is rebuilt, in the same transaction
    changed = PolicySpec(s.groups, s.rules[:1], s.default, s.bridges)
    rs3, _, _ = compile_ruleset(changed, ENDPOINTS, caps)
    cmds = diff(rs3, rs, FAMILIES)
    assert cmds[0] == {"delete": {"table": {"family": "bridge", "name": "evpnd"}}}
    # no policy any more: evpnd's tables go, nothing else is named
    assert diff({}, rs, FAMILIES) == [
        {"delete": {"table": {"family": f, "name": "evpnd"}}} for f in FAMILIES
    ]


def test_refused_rules_are_left_out_and_reported():
    s = spec()
    rs, _, _ = compile_ruleset(s, ENDPOINTS, Capabilities())
    refused = next(r.comment for c in rs[BRIDGE].chains for r in c.rules if r.rule == "no-ssh")
    rs2, probs, _ = compile_ruleset(s, ENDPOINTS, Capabilities(), skip=frozenset({refused}))
    assert refused not in {r.comment for c in rs2[BRIDGE].chains for r in c.rules}
    assert any(p.where == "policy.rules[1]" and "no-ssh" in p.reason for p in probs)


def test_verdict_first_match_then_default():
    s = spec()
    _, _, mem = compile_ruleset(s, ENDPOINTS, Capabilities())
    v = verdict(s, mem, "02:00:00:00:00:11", "10.1.0.70", "tcp", 5432)
    assert v["action"] == "allow" and v["rule"] == "web-to-db"
    assert v["src_groups"] == ["web"] and v["dst_groups"] == ["db"]
    v = verdict(s, mem, "10.1.0.5", "10.1.0.70", "tcp", 22)
    assert v["action"] == "deny" and v["rule"] == "no-ssh"
    v = verdict(s, mem, "10.1.0.99", "10.1.0.70", "udp", 53)
    assert v == {"action": "allow", "rule": None, "src_groups": [], "dst_groups": ["db"]}
    deny = PolicySpec(s.groups, (), "deny", s.bridges)
    assert verdict(deny, mem, "10.1.0.5", "10.1.0.70", None, None)["action"] == "deny"


def test_rule_variants_follow_the_protocol():
    s = PolicySpec(
        (GroupSpec("a", 100), GroupSpec("b", 100)),
        (RuleSpec("icmp", "a", "b", "icmp", (), "deny"),),
        "allow",
        {100: "br100"},
    )
    rs, _, _ = compile_ruleset(s, {}, Capabilities())
    variants = [r.comment.split(":")[3] for c in rs[BRIDGE].chains for r in c.rules
                if r.rule == "icmp"]  # fmt: skip
    assert variants == ["mac-mac", "ip4-ip4"]  # no IPv6 variant of an ICMP (v4) rule


networks = st.lists(
    st.tuples(st.integers(0, 2**12 - 1), st.integers(20, 32)).map(
        lambda t: str(ipaddress.ip_network(f"10.0.{t[0] >> 8}.{t[0] & 255}/{t[1]}", strict=False))
    ),
    max_size=40,
)


@given(networks)
def test_integer_collapse_equals_ipaddress(values):
    v4, _ = _ranges(values)
    expected = list(ipaddress.collapse_addresses(ipaddress.ip_network(v) for v in values))
    assert _cidrs(v4, 32) == expected
