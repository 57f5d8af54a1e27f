"""What a reload (SIGHUP) does with each setting: every top-level field of the config is either
applied on reload or refused by name. Refusing one refuses the whole reload (all-or-nothing):
the old configuration stays fully in force until the daemon is restarted.

The README's reload table is this module's two tables; tests/unit/test_reload_rules.py checks
that every Config field is in exactly one of them, so a new setting forces a decision.
"""

from __future__ import annotations

from pydantic import BaseModel

from evpnd.config import Config

# field -> who applies it on reload
APPLIED: dict[str, str] = {
    "router_id": "core (own routes re-originated) and ExaBGP (SIGUSR1)",
    "asn": "core and ExaBGP (SIGUSR1)",
    "vtep": "dataplane (vxlan local address), core, ExaBGP",
    "peers": "ExaBGP (SIGUSR1): added/removed/changed peers only, others stay up",
    "l2vnis": "dataplane (devices), core (routes); auto-RD indexes kept",
    "l3vnis": "dataplane (devices), core (routes); auto-RD indexes kept",
    "static_tunnels": "dataplane (tunnel devices, routes, MTUs)",
    "policy": "nftables: the whole ruleset in one transaction (established flows kept)",
    "duplicate_detection": "core",
    "exabgp": "ExaBGP (listen: restarted, all sessions reset; others SIGUSR1)",
    "underlay_mtu": "dataplane (device MTUs)",
    "sweep_hold_time": "dataplane",
    "log_level": "logging (unless --log-level was given on the command line)",
    "metrics": "metrics listener (closed and bound again if it changed)",
}

# field -> why it needs a restart
RESTART: dict[str, str] = {
    "api": "the control socket is bound (path, group, mode) at start",
    "runtime_dir": "ExaBGP's socket and configuration live there while it runs",
    "vxlan_mode": "the L2VNIs' devices change shape (per-VNI pairs vs one shared pair)",
}


def changed(old: Config, new: Config) -> list[str]:
    """Dotted paths of the settings that differ (one level into sub-models, e.g. api.socket)."""
    out: list[str] = []
    for name in type(new).model_fields:
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            continue
        if isinstance(a, BaseModel) and isinstance(b, BaseModel):
            out += [
                f"{name}.{sub}"
                for sub in type(b).model_fields
                if getattr(a, sub) != getattr(b, sub)
            ]
        else:
            out.append(name)
    return out


def refused(old: Config, new: Config) -> list[tuple[str, str]]:
    """(setting, reason) for each changed setting that a reload cannot apply."""
    out = []
    for path in changed(old, new):
        top = path.split(".", 1)[0]
        if top in RESTART:
            out.append((path, f"needs a restart: {RESTART[top]}"))
        elif top not in APPLIED:
            out.append((path, "not applied on reload: needs a restart"))
    return out
