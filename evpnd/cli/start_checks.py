"""What only the running host can tell about a valid config, checked before the daemon starts
(issue 16: no configuration a user can write ends the daemon with a traceback). Each problem is
(field, reason), printed like a config error: `FILE: FIELD: REASON`, exit 2.

- the VTEP against this namespace's addresses (evpnd.dataplane.vtep_host);
- the directories evpnd writes to (runtime_dir, the API socket's): created here, as the daemon
  would, so that a path that cannot exist (under /proc, below a file) is named, not raised.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from evpnd.config import Config


def _directory_problem(path: Path) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {path}: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def start_problems(cfg: Config) -> list[tuple[str, str]]:
    from evpnd.dataplane.devices import local_addresses
    from evpnd.dataplane.vtep_host import vtep_host_problem

    problems: list[tuple[str, str]] = []
    # only the VTEP's family: the check compares against those (and 8,000 devices' IPv6
    # link-locals need not be read for an IPv4 VTEP)
    vtep = vtep_host_problem(
        str(cfg.vtep), local_addresses(socket.AF_INET6 if cfg.vtep.version == 6 else socket.AF_INET)
    )
    if vtep is not None:
        problems.append(("vtep", vtep))
    for field, directory in (
        ("runtime_dir", cfg.runtime_dir),
        ("api.socket", cfg.api.socket.parent),
    ):
        problem = _directory_problem(Path(directory))
        if problem is not None:
            problems.append((field, problem))
    return problems
