"""The allowed import directions between evpnd's parts: core <- bgp, dataplane, api <- daemon.

Every module under evpnd/ is parsed (imports inside functions and under TYPE_CHECKING count
too) and every import of another part of evpnd is checked against ALLOWED. A part is the first
name under evpnd (evpnd.core.rib is in "core", evpnd.sdnotify is "sdnotify"). A new part must be
placed here, with its allowed directions, before it may import or be imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
PACKAGE = ROOT / "evpnd"

# Shared bases the edges may use: the validated configuration (the edges read their own
# settings from it; it builds the core's CoreSettings, hence config -> core) and logging.
BASES = {"config", "logs", "turns"}
ANYTHING = None  # the programs at the top wire everything together

ALLOWED: dict[str, set[str] | None] = {
    # the pure centre
    "routes": set(),  # EVPN route values: imports nothing else of evpnd
    "core": {"routes"},  # the pure core: routes only
    # shared bases
    "config": {"core", "routes", "policy", "static_tunnels", "vxlan_mode"},  # policy: its models
    "static_tunnels": set(),  # the static_tunnels: entries and their checks (config's part)
    "vxlan_mode": set(),  # vxlan_mode: single, its checks (config's part)
    "logs": {"journald"},  # structlog -> journald's native protocol under systemd
    "journald": set(),
    "sdnotify": set(),
    "memdebug": set(),  # the on-request memory report (standard library only)
    "turns": set(),  # the event loop's turn budget (time, not counts) the edges share
    # the edges: the core and routes, the bases; never each other
    "bgp": {"core", "routes", *BASES},
    "dataplane": {"core", "routes", *BASES},
    "api": {"core", "routes", *BASES},
    "metrics": {"core", "routes", *BASES},  # an edge like api (Prometheus scrapes)
    # network policy: a pure compiler and the nftables edge; fed plain data by the daemon
    "policy": {"core", "routes", "logs"},
    # the top: the daemon and the two programs, and the lab that drives them
    "daemon": ANYTHING,
    "reload_rules": {"config"},  # what a reload applies or refuses, per setting (the daemon's)
    "cli": ANYTHING,
    "lab": ANYTHING,
    # evpnctl's own tools (capture, trace): the operator's privileges, a client of the socket
    "capture": set(),
}

# These read the core through its surface only (`from evpnd.core import ...`): typed views,
# never the RIB, mobility or desired-state modules.
SURFACE_ONLY = {"api", "metrics"}


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """evpnd.core.rib -> core; evpnd -> '' (the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def evpnd_imports(path: Path) -> list[str]:
    """Every evpnd module this file imports, anywhere in it (resolved, absolute)."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            for alias in node.names:  # `from evpnd.core import views`: the module views
                sub = f"{name}.{alias.name}"
                found.append(sub if is_module(sub) else name)
    return [name for name in found if name == "evpnd" or name.startswith("evpnd.")]


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def bad_edges() -> list[str]:
    problems = []
    for path in all_modules():
        source = module_of(path)
        here = part_of(source)
        if here == "":
            continue  # evpnd/__init__.py
        if here not in ALLOWED:
            problems.append(f"{source}: part {here!r} has no place in ALLOWED")
            continue
        allowed = ALLOWED[here]
        for target in evpnd_imports(path):
            there = part_of(target)
            if there in ("", here):
                continue
            if allowed is not ANYTHING and there not in allowed:
                problems.append(f"{source} -> {target} ({here} may not import {there})")
            elif here in SURFACE_ONLY and there == "core" and target != "evpnd.core":
                problems.append(f"{source} -> {target} ({here} imports only evpnd.core)")
    return problems


def test_every_import_goes_an_allowed_direction():
    problems = bad_edges()
    assert not problems, "forbidden imports:\n  " + "\n  ".join(problems)


def test_every_part_is_placed():
    parts = {part_of(module_of(p)) for p in all_modules()} - {""}
    assert parts <= set(ALLOWED), f"parts missing from ALLOWED: {sorted(parts - set(ALLOWED))}"
    assert {"routes", "core", "bgp", "dataplane", "api", "daemon"} <= parts


def test_the_core_modules_import_each_other_one_way():
    """No cycle among evpnd.core's modules (TYPE_CHECKING imports included): the collaborators
    call one another in one direction (Core -> BgpInput -> LocalMacs -> Origination ->
    BestPathIndexes), so the modules never need each other both ways."""
    graph: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / "core").glob("*.py")):
        module = module_of(path)
        graph[module] = {t for t in evpnd_imports(path) if t.startswith("evpnd.core.")}
    graph["evpnd.core"] -= set(graph)  # the surface re-exports every module: not a cycle
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail, node]))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*trail, node])
        done.add(node)

    for module in graph:
        visit(module, [])


def test_the_checker_sees_edges_inside_functions_and_type_checking(tmp_path, monkeypatch):
    """The scan must see what the rules forbid wherever it is written."""
    fake = tmp_path / "evpnd"
    (fake / "bgp").mkdir(parents=True)
    (fake / "api").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "bgp" / "__init__.py").write_text("")
    (fake / "api" / "__init__.py").write_text("")
    (fake / "bgp" / "speaker.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from evpnd.dataplane import Dataplane\n"
        "def later():\n"
        "    from ..api import server\n"
    )
    (fake / "api" / "queries.py").write_text("from evpnd.core.rib import Rib\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "PACKAGE", fake)
    assert bad_edges() == [
        "evpnd.api.queries -> evpnd.core.rib (api imports only evpnd.core)",
        "evpnd.bgp.speaker -> evpnd.dataplane (bgp may not import dataplane)",
        "evpnd.bgp.speaker -> evpnd.api (bgp may not import api)",
    ]


def core_reads(path: Path) -> set[str]:
    """The attributes read on a `core` (ctx.core.X, self.core.X, core.X) in a file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute):
            inner = node.value
            name = getattr(inner, "attr", None) or getattr(inner, "id", None)
            if name == "core":
                found.add(node.attr)
    return found


def test_api_and_metrics_read_the_core_through_its_typed_views_only():
    """Not the RIB, mobility or desired state: `core.views` (evpnd.core.views.CoreViews)."""
    files = sorted((PACKAGE / "api").glob("*.py")) + [PACKAGE / "metrics.py"]
    reads = {str(p.relative_to(ROOT)): core_reads(p) - {"views"} for p in files}
    assert {name: sorted(r) for name, r in reads.items() if r} == {}
    assert core_reads(PACKAGE / "daemon.py") >= {"desired"}  # the scan does see reads
