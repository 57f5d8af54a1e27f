"""The interface between the dataplane's scheduling and a kernel: what a backend must offer.

The scheduler (scheduler.py), the managers (managers/) and the mirror never touch a socket;
the life cycle (dataplane.py) calls a Backend in the one worker thread (all but `read_events`,
which runs on the event loop when `monitor_fileno()` is readable). The one backend today is
netlink_backend.NetlinkBackend (raw rtnetlink for objects, pyroute2 for devices).

A second backend (Open vSwitch, say) implements this Protocol: `apply` executes the managers'
ops (or a backend brings its own managers and passes them to the Planner), `dump` fills a
Mirror from what the switch holds, `read_events` turns the switch's notifications into the
EventSink calls below, and `setup_devices` returns the DeviceMap the managers look VNIs up in.
New device kinds (static tunnels: geneve/gretap/gre, issue 9) extend `setup_devices` and the
DeviceMap; the scheduler does not change.

Pure: only types here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import DeviceMap

if TYPE_CHECKING:  # the netlink module's records are the event vocabulary
    from evpnd.config import Config
    from evpnd.dataplane.netlink import Neigh, Op, Route


class Dump(NamedTuple):
    """A snapshot: owned objects (and foreign ones blocking keys) in a fresh mirror, plus what
    local learning needs: bridge entries on access ports and the SVIs' neighbours."""

    mirror: Mirror
    ports: list[tuple[int, Neigh]]  # (vni, bridge entry on an access port)
    neighs: list[tuple[int, Neigh]]  # (vni, neighbour on the bridge evpnd did not install)


class EventSink(Protocol):
    """What a backend reports from its monitor (the life cycle implements it)."""

    dm: DeviceMap

    def fdb_deleted(self, vni: int, mac: str, vxlan_half: bool) -> None:
        """An owned remote-MAC entry (one half) went away: the withdrawal-storm fast path."""

    def port_fdb(self, vni: int, mac: str, deleted: bool, state: int) -> None:
        """An entry on an access port of an L2VNI's bridge: the local-learning fast path."""

    def neigh_event(self, n: Neigh) -> None:
        """Any other FDB entry or neighbour added, changed or deleted."""

    def route_event(self, r: Route) -> None: ...

    def link_event(self, deleted: bool, index: int, name: str, master: int) -> None: ...

    def overrun(self) -> None:
        """Events were lost: the mirror is unknown now."""


class Backend(Protocol):
    def setup_devices(self, cfg: Config) -> DeviceMap:
        """Create or adopt every configured VNI's devices (collect problems, don't raise)."""

    def remove_owned(self, names: list[str]) -> list[str]:
        """Delete the named devices if evpnd made them; the names deleted."""

    def remove_stale(self, cfg: Config) -> list[str]:
        """Delete devices evpnd made for VNIs no longer configured."""

    def dump(self, dm: DeviceMap) -> Dump: ...

    def dump_ports(self, ports: list[int]) -> list[Neigh]:
        """The bridge entries on these (new) access ports."""

    def apply(self, ops: list[Op]) -> bool:
        """Execute a batch; set each op's `error` (0: done). False if some outcomes are
        unknown (the caller re-dumps)."""

    def monitor_fileno(self) -> int: ...

    def read_events(self, sink: EventSink, limit: int = 4096) -> int:
        """Read pending notifications (at most `limit`) into the sink; the number read."""

    def stats(self) -> dict[str, float | str]: ...

    def close(self) -> None: ...
