"""The pure EVPN core: (event, now) -> Effects + desired kernel state.

This module is the core's whole surface: the rest of evpnd imports from `evpnd.core` only
(evpnd.core.desired and evpnd.core.events stay importable for the edges that name the kinds).
Nothing under this package imports asyncio, pyroute2, exabgp, pydantic, yaml or evpnd.config
(tests/unit/test_purity.py); the daemon builds CoreSettings from its Config
(evpnd.config.core_settings), feeds the core events and carries out what it returns.
"""

from evpnd.core.core import Core
from evpnd.core.desired import (
    FDB,
    FLOOD,
    NEIGH,
    RMAC,
    ROUTE,
    DesiredState,
    DirtyKey,
    Frozen,
    RouteNextHop,
    compute_desired,
)
from evpnd.core.events import (
    CommandReply,
    EndOfRib,
    Event,
    LocalMac,
    LocalMacBatch,
    Notification,
    PeerOpen,
    PeerState,
    RouteUpdate,
)
from evpnd.core.journal import REJECT_REASONS, Notice
from evpnd.core.origination import Effects
from evpnd.core.settings import (
    CoreSettings,
    DadSettings,
    L2VniSettings,
    L3VniSettings,
    PeerLimitSettings,
)
from evpnd.core.views import (
    Candidate,
    CoreStats,
    ExplainVni,
    Explanation,
    HostRouteView,
    LocalMacView,
    MacRow,
    PathFlags,
    PeerRow,
    RouteCounts,
    RouteRow,
    VniState,
)

__all__ = [
    "FDB",
    "FLOOD",
    "NEIGH",
    "REJECT_REASONS",
    "RMAC",
    "ROUTE",
    "Candidate",
    "CommandReply",
    "Core",
    "CoreSettings",
    "CoreStats",
    "DadSettings",
    "DesiredState",
    "DirtyKey",
    "Effects",
    "EndOfRib",
    "Event",
    "ExplainVni",
    "Explanation",
    "Frozen",
    "HostRouteView",
    "L2VniSettings",
    "L3VniSettings",
    "LocalMac",
    "LocalMacBatch",
    "LocalMacView",
    "MacRow",
    "Notice",
    "Notification",
    "PathFlags",
    "PeerLimitSettings",
    "PeerOpen",
    "PeerRow",
    "PeerState",
    "RouteCounts",
    "RouteNextHop",
    "RouteRow",
    "RouteUpdate",
    "VniState",
    "compute_desired",
]
