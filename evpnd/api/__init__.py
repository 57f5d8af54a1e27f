"""The control API: the one package that serves evpnd's unix socket (DESIGN rule 3).

    evpnctl --JSON line--> server.py --> protocol.py (validate) --> queries.py --> models.py
                                                                     reads ApiContext

The daemon hands the server an ApiContext (evpnd.daemon.Daemon is one). Queries only READ the
core's state, inside the event loop, between turns of the owner task; the one mutation
(clear dup-addr) is queued to the owner task by `clear_duplicates`.

Modules: protocol (wire format, argument models), models (reply models = published JSON
schema), queries (core state -> replies), server (socket, access control), tables (text
rendering for evpnctl), schema (writes docs/schema/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from evpnd.api.server import ApiServer
    from evpnd.config import Config
    from evpnd.core import Core


class ApiContext(Protocol):
    """What the API reads. Attributes are read on every request (the config changes on reload).

    The core is read through its typed views only, `core.views` (evpnd.core.views.CoreViews:
    routes, peers, vni_state, mac_table, explain, duplicates, kernel_routes, ...).
    """

    cfg: Config
    core: Core
    started_at: float  # time.time() when the daemon started
    reloads: int  # successful SIGHUP reloads

    def speaker_status(self) -> dict[str, Any]:
        """Speaker.status(): {"exabgp_pid"|"pid": int, "restarts": int,
        "peers": {address: {"state", "uptime", "last_error", ...}}}; missing keys are fine."""
        ...

    def dataplane_stats(self) -> dict[str, Any]:
        """Dataplane.stats(): ops, errors, last reconcile duration, owned counts."""
        ...

    def kernel_diff(self) -> dict[str, Any]:
        """Dataplane.kernel_diff(): {"missing"|"extra"|"different": [entry]} or
        {"entries": [entry]}, entry = {"kind", "vni", "key", "wanted", "kernel"} or a tuple
        (kind, vni, key, wanted, kernel). Empty when converged."""
        ...

    def policy_status(self) -> dict[str, Any]:
        """PolicyEnforcer.status(): the PolicyReply fields (evpnd/api/models.py)."""
        ...

    def policy_verdict(
        self, src: str, dst: str, proto: str | None, port: int | None
    ) -> dict[str, Any] | None:
        """The policy's verdict for a flow ({action, rule, src_groups, dst_groups}); None
        without a policy."""
        ...

    async def clear_duplicates(self, vni: int | None, mac: str | None) -> dict[str, Any]:
        """Thaw duplicate MACs through the owner task; returns when it is done."""
        ...

    async def clear_peer(self, peer: str | None) -> list[str]:
        """Release peers held down over their max_routes (all for None) through the owner
        task -> the peers released."""
        ...


async def start_api(ctx: ApiContext, cfg: Config) -> ApiServer:
    """Create the control socket at cfg.api.socket and serve it until `await server.close()`."""
    from evpnd.api.server import start_api as _start

    return await _start(ctx, cfg)


__all__ = ["ApiContext", "start_api"]
