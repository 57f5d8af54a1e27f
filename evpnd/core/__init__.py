"""The pure EVPN core: (event, now) -> Effects + desired kernel state.

Nothing under this package imports asyncio, pyroute2, exabgp, pydantic or yaml (enforced by
tests/unit/test_purity.py). The daemon feeds it events and carries out what it returns.
"""

from evpnd.core.core import Core
from evpnd.core.origination import Effects

__all__ = ["Core", "Effects"]
