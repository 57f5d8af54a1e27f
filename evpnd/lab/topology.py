"""containerlab topology files, read the way containerlab reads them (the subset we use).

The same `*.clab.yml` that `containerlab deploy` runs with Docker is what the namespace runner
(evpnd.lab.runner) runs without Docker, so the files users deploy are the files the tests run.

What a node is for comes from what is bound into it, as in the container:
- a bind to /etc/frr/frr.conf makes an FRR router (zebra + bgpd get that file),
- a bind to /etc/evpnd/evpnd.yaml makes an evpnd leaf (`evpnd -c` that file),
- anything else is a plain host: only its `exec` lines run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KNOWN_KINDS = {"linux"}  # Docker-free runner: every node is a Linux network namespace
FRR_CONF_TARGET = "/etc/frr/frr.conf"
FRR_DAEMONS_TARGET = "/etc/frr/daemons"
EVPND_CONF_TARGET = "/etc/evpnd/evpnd.yaml"
DEFAULT_MTU = 9500  # containerlab's default veth MTU
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,30}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")


class TopologyError(Exception):
    """A topology file the runner cannot use; the message names the file and the field."""


@dataclass(frozen=True)
class Bind:
    source: Path  # absolute, resolved against the topology file's directory
    target: str
    mode: str = "rw"


@dataclass
class Node:
    name: str
    kind: str
    image: str
    binds: list[Bind] = field(default_factory=list)
    exec: list[str] = field(default_factory=list)

    def bound(self, target: str) -> Path | None:
        for b in self.binds:
            if b.target == target:
                return b.source
        return None

    @property
    def role(self) -> str:
        """'frr', 'evpnd' or 'host', from the files bound into the node."""
        if self.bound(FRR_CONF_TARGET):
            return "frr"
        if self.bound(EVPND_CONF_TARGET):
            return "evpnd"
        return "host"


@dataclass(frozen=True)
class Endpoint:
    node: str
    ifname: str

    def __str__(self) -> str:
        return f"{self.node}:{self.ifname}"


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    mtu: int = DEFAULT_MTU


@dataclass
class Topology:
    name: str
    path: Path
    nodes: dict[str, Node]
    links: list[Link]

    @property
    def directory(self) -> Path:
        return self.path.parent

    def by_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == role]


def _endpoint(text: object, where: str) -> Endpoint:
    if not isinstance(text, str) or text.count(":") != 1:
        raise TopologyError(f"{where}: endpoint must look like 'node:ifname', got {text!r}")
    node, ifname = text.split(":")
    if not _IFNAME_RE.match(ifname):
        raise TopologyError(f"{where}: {ifname!r} is not a Linux interface name")
    return Endpoint(node, ifname)


def _bind(text: object, base: Path, where: str) -> Bind:
    if not isinstance(text, str) or ":" not in text:
        raise TopologyError(f"{where}: bind must look like 'source:target[:ro]', got {text!r}")
    parts = text.split(":")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) > 2 else "rw"
    src = Path(source)
    return Bind((src if src.is_absolute() else base / src).resolve(), target, mode)


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TopologyError(f"{where}: expected a list of strings")
    return list(value)


def parse_topology(data: object, path: Path) -> Topology:
    where = str(path)
    if not isinstance(data, dict):
        raise TopologyError(f"{where}: expected a mapping at the top")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TopologyError(f"{where}: name: missing or not a valid lab name: {name!r}")
    topo = data.get("topology")
    if not isinstance(topo, dict):
        raise TopologyError(f"{where}: topology: missing")
    kinds = topo.get("kinds") or {}
    defaults = topo.get("defaults") or {}
    raw_nodes = topo.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise TopologyError(f"{where}: topology.nodes: missing or empty")
    nodes: dict[str, Node] = {}
    for node_name, spec in raw_nodes.items():
        here = f"{where}: topology.nodes.{node_name}"
        spec = spec or {}
        if not isinstance(node_name, str) or not _NAME_RE.match(node_name):
            raise TopologyError(f"{here}: not a valid node name")
        if not isinstance(spec, dict):
            raise TopologyError(f"{here}: expected a mapping")
        kind = spec.get("kind") or defaults.get("kind")
        if kind not in KNOWN_KINDS:
            raise TopologyError(f"{here}.kind: {kind!r} is not one of {sorted(KNOWN_KINDS)}")
        kind_defaults = kinds.get(kind) or {}
        image = spec.get("image") or kind_defaults.get("image") or defaults.get("image") or ""
        # containerlab concatenates binds/exec from defaults, kind and node
        binds_raw = [
            *_str_list(defaults.get("binds"), f"{here}.binds"),
            *_str_list(kind_defaults.get("binds"), f"{here}.binds"),
            *_str_list(spec.get("binds"), f"{here}.binds"),
        ]
        exec_lines = [
            *_str_list(defaults.get("exec"), f"{here}.exec"),
            *_str_list(kind_defaults.get("exec"), f"{here}.exec"),
            *_str_list(spec.get("exec"), f"{here}.exec"),
        ]
        binds = [_bind(b, path.parent, f"{here}.binds") for b in binds_raw]
        nodes[node_name] = Node(node_name, kind, str(image), binds, exec_lines)
    links: list[Link] = []
    for i, spec in enumerate(topo.get("links") or []):
        here = f"{where}: topology.links[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("endpoints"), list):
            raise TopologyError(f"{here}: expected a mapping with 'endpoints'")
        eps = [_endpoint(e, f"{here}.endpoints") for e in spec["endpoints"]]
        if len(eps) != 2:
            raise TopologyError(f"{here}.endpoints: a link has exactly two endpoints")
        mtu = spec.get("mtu", DEFAULT_MTU)
        if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise TopologyError(f"{here}.mtu: not an MTU: {mtu!r}")
        links.append(Link(eps[0], eps[1], mtu))
    topology = Topology(name, path.resolve(), nodes, links)
    problems = check_topology(topology)
    if problems:
        raise TopologyError("\n".join(f"{where}: {p}" for p in problems))
    return topology


def check_topology(topo: Topology) -> list[str]:
    """Cross-field problems: links naming unknown nodes, interfaces used twice, missing files."""
    problems: list[str] = []
    used: dict[Endpoint, int] = {}
    for i, link in enumerate(topo.links):
        for ep in (link.a, link.b):
            if ep.node not in topo.nodes:
                problems.append(f"topology.links[{i}]: endpoint {ep} names no defined node")
            if ep in used:
                problems.append(f"topology.links[{i}]: {ep} is also used by links[{used[ep]}]")
            used.setdefault(ep, i)
    for node in topo.nodes.values():
        for b in node.binds:
            if not b.source.exists():
                problems.append(f"topology.nodes.{node.name}.binds: {b.source} does not exist")
        if node.role == "frr" and not node.image:
            problems.append(f"topology.nodes.{node.name}: FRR node without an image")
    return problems


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TopologyError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: invalid YAML: {exc}") from None
    return parse_topology(data, path)
