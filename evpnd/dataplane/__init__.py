"""The dataplane adapter: the only package that talks netlink (pyroute2 and raw rtnetlink)."""

from evpnd.dataplane.dataplane import Dataplane
from evpnd.dataplane.netlink import RTPROT_EVPND

__all__ = ["RTPROT_EVPND", "Dataplane"]
