"""The dataplane adapter: the only package that talks netlink (pyroute2 and raw rtnetlink).

    devices.py   bridges + VXLAN devices per VNI (and an L3VNI's VRF), created (ifalias
                 `evpnd:vni=N`) or adopted
    netlink.py   raw rtnetlink: batched writes matched back by sequence number, dumps, parsers,
                 the monitor socket (a BPF filter drops the echo of evpnd's own adds)
    mirror.py    evpnd's objects as the kernel holds them (pure)
    plan.py      desired vs mirror -> netlink operations; ownership rules; kernel_diff (pure)
    learning.py  bridge FDB on access ports + SVI neighbours -> LocalMac events (pure)
    worker.py    the one thread doing blocking netlink work (optionally inside a netns)
    dataplane.py the Dataplane: life cycle, reconciliation passes, event handling

Ownership marks (DESIGN rule 5): FDB entries `extern_learn`; neighbours `extern_learn` +
`proto 235` (RTPROT_EVPND); routes `proto 235` in the L3VNI tables (with `vrf:`, the VRF's);
flood entries (`00:00:00:00:00:00 dst VTEP self permanent`) belong to the VXLAN device evpnd
manages.
"""

from evpnd.dataplane.dataplane import Dataplane
from evpnd.dataplane.netlink import RTPROT_EVPND

__all__ = ["RTPROT_EVPND", "Dataplane"]
