"""DESIGN rule 1: the core imports no asyncio, no pyroute2, no exabgp; nor the configuration
layer (evpnd.config, pydantic, yaml): the daemon hands the core a plain CoreSettings.

Two checks, because each misses what the other sees: importing the module in a fresh
interpreter catches transitive imports; scanning its source catches imports inside functions
(which run only later) and dynamic imports by name.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
FORBIDDEN = ("asyncio", "pyroute2", "exabgp", "pydantic", "yaml")
FORBIDDEN_MODULES = ("evpnd.config",)
PURE_PACKAGES = ("routes", "core")  # every module in them, subpackages included

# The dataplane's I/O edges; every other module under evpnd/dataplane/ is pure, new ones too.
DATAPLANE_EDGES = {
    "netlink.py",  # sockets: batched writes, dumps, the monitor
    "netlink_backend.py",  # the Linux backend: netlink.py + devices.py
    "devices.py",  # pyroute2
    "tunnel_devices.py",  # pyroute2: the static tunnels (issue 9)
    "single_vxlan.py",  # pyroute2 + raw netlink: vxlan_mode single's devices (issue 9)
    "worker.py",  # the worker thread (asyncio executor)
    "dataplane.py",  # the asyncio life cycle
}
DATAPLANE_PURE = [
    p
    for p in (ROOT / "evpnd" / "dataplane").rglob("*.py")
    if p.name not in DATAPLANE_EDGES and p.parent.name != "__pycache__"
]

PURE_FILES = sorted(
    [
        *(p for pkg in PURE_PACKAGES for p in (ROOT / "evpnd" / pkg).rglob("*.py")),
        ROOT / "evpnd" / "bgp" / "codec.py",  # the bgp package is not pure as a whole
        *DATAPLANE_PURE,
        # network policy: the model, the compiler and the diff are pure (nft.py, enforcer.py
        # and schema.py, the pydantic section, are not)
        ROOT / "evpnd" / "policy" / "model.py",
        ROOT / "evpnd" / "policy" / "compile.py",
        ROOT / "evpnd" / "policy" / "reconcile.py",
    ]
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# The dataplane's pure modules may read the validated Config (its settings are theirs to act
# on); the core may not: it gets a plain CoreSettings. So the config rule is the core's only.
CONFIG_FREE = ("asyncio", "pyroute2", "exabgp")


def forbidden(name: str, path: Path | None = None) -> bool:
    if path is not None and path in DATAPLANE_PURE:
        return name.split(".")[0] in CONFIG_FREE
    if name.split(".")[0] in FORBIDDEN:
        return True
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


def test_the_pure_files_exist():
    """Listed explicitly: a missing file is a failure, not a silent skip."""
    missing = [str(p.relative_to(ROOT)) for p in PURE_FILES if not p.exists()]
    assert not missing, f"pure-core files missing: {missing}"
    assert len(PURE_FILES) >= 10
    names = {p.relative_to(ROOT / "evpnd" / "dataplane").as_posix() for p in DATAPLANE_PURE}
    assert {"mirror.py", "plan.py", "learning.py", "scheduler.py", "managers/fdb.py"} <= names


PROBE = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("path", PURE_FILES, ids=module_name)
def test_import_in_a_fresh_interpreter_loads_nothing_forbidden(path):
    module = module_name(path)
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert module in loaded
    bad = [name for name in loaded if forbidden(name, path)]
    assert not bad, f"importing {module} loads {bad}"


def imported_names(tree: ast.AST, module: str) -> list[str]:
    """Every module name an import statement or a call by literal name brings in."""
    names = []
    package = module if module.endswith(("routes", "bgp")) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            else:
                names.append(node.module or "")
        elif isinstance(node, ast.Call):
            func = node.func
            called = getattr(func, "attr", None) or getattr(func, "id", None)
            if called in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.append(arg.value)
    return names


@pytest.mark.parametrize("path", PURE_FILES, ids=module_name)
def test_source_has_no_forbidden_import_anywhere(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    names = imported_names(tree, module_name(path))
    bad = [name for name in names if forbidden(name, path)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_scan_sees_imports_inside_functions():
    source = (
        "import os\n"
        "def later():\n"
        "    import asyncio\n"
        "    from pyroute2 import IPRoute\n"
        "    importlib.import_module('exabgp.reactor')\n"
        "    from evpnd.config import Config\n"
        "    import yaml, pydantic.fields\n"
        "    from evpnd.configuration import x\n"
    )
    names = imported_names(ast.parse(source), "evpnd.core")
    assert sorted(n for n in names if forbidden(n)) == [
        "asyncio",
        "evpnd.config",
        "exabgp.reactor",
        "pydantic.fields",
        "pyroute2",
        "yaml",
    ]
