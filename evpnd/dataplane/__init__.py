"""The dataplane adapter: the only package that talks to the kernel (pyroute2 and raw
rtnetlink), shaped as pure parts driven by an asyncio life cycle through a backend.

Pure (no pyroute2, no asyncio; tests/unit/test_purity.py globs them):
    model.py       the device map (VNI <-> ifindex) and the core's kinds, re-exported: the one
                   place the dataplane imports the core from
    mirror.py      evpnd's objects as the kernel holds them
    managers/      one manager per object kind (fdb, flood, neigh, route, rmac): lookup, the
                   comparison of desired vs mirror, plan, apply-result, diff
    plan.py        the Planner: dispatches keys and finished ops to the managers; `diff`
    scheduler.py   dirty keys, full passes, the sweep hold time, chunking, outcome accounting
    backend.py     the Backend protocol (devices, dump, apply a batch, monitor events)
    learning.py    bridge FDB on access ports + SVI neighbours -> LocalMac events
Edges (I/O):
    netlink.py          raw rtnetlink: batched writes matched back by sequence number, dumps,
                        parsers, the monitor socket (a BPF filter drops the echo of own adds)
    netlink_backend.py  the Linux Backend: netlink.py for objects, devices.py for devices
    devices.py          bridges + VXLAN devices (+ an L3VNI's VRF) via pyroute2, created
                        (ifalias `evpnd:vni=N`) or adopted
    worker.py           the one thread doing blocking kernel work (optionally inside a netns)
    dataplane.py        the Dataplane: life cycle, passes run through the worker, events

Ownership marks (DESIGN rule 5): FDB entries `extern_learn`; neighbours `extern_learn` +
`proto 235` (RTPROT_EVPND); routes `proto 235` in the L3VNI tables (with `vrf:`, the VRF's);
flood entries (`00:00:00:00:00:00 dst VTEP self permanent`) belong to the VXLAN device evpnd
manages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evpnd.dataplane.netlink import RTPROT_EVPND

if TYPE_CHECKING:
    from evpnd.dataplane.dataplane import Dataplane

__all__ = ["RTPROT_EVPND", "Dataplane"]


def __getattr__(name: str) -> Any:
    """`Dataplane` on first use: importing a pure submodule runs this file, and must not load
    asyncio and pyroute2 with the life cycle."""
    if name == "Dataplane":
        from evpnd.dataplane.dataplane import Dataplane

        return Dataplane
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
