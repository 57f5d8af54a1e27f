"""End to end from a BGP peer into the kernel FDB: evpnd + ExaBGP against FRR 8.4, same machine.

    .venv/bin/python benchmarks/e2e_fdb.py [N ...]     (root; default 10000 100000)

A sender (benchmarks/bgp_blaster.py: a minimal BGP speaker that writes pre-encoded UPDATEs of
~110 NLRIs as fast as TCP allows, so that the receiver is what is timed) in one namespace holds N
type-2 routes for VNI 100 and waits passively. The device under test in another namespace -- the
evpnd daemon, then FRR's zebra+bgpd with advertise-all-vni -- connects and installs them. Timed:

  install   from the sender seeing the session Established (it then writes everything) to the
            N-th remote MAC appearing
            in the DUT's kernel (RTM_NEWNEIGH with a VXLAN `dst`, counted by a netlink listener
            inside the DUT's namespace; one per MAC even though both install two entries)
  withdraw  from closing the sender (the session goes down: the DUT must remove everything it
            learned from it) to the N-th such MAC deleted
  RSS       peak resident memory (VmHWM) of evpnd + ExaBGP, of zebra + bgpd

Prints figures, not pass/fail. Targets (issue 4): evpnd no slower than FRR, under 250 MiB.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from evpnd.lab.evpnd_node import EvpndNode  # noqa: E402
from evpnd.lab.frr import Frr, evpn_leaf_conf  # noqa: E402
from evpnd.lab.netns import Lab, Netns  # noqa: E402
from tests.netns.speaker_lab import add_vni, pair  # noqa: E402

# Runs inside the DUT's namespace: counts distinct MACs of VXLAN (dst) FDB adds, then deletes,
# printing the monotonic time at which each count reaches N.
COUNTER = r"""
import socket, struct, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(socket.SOL_SOCKET, 33, 256 << 20)  # SO_RCVBUFFORCE: never drop a notification
s.bind((0, 4))  # RTMGRP_NEIGH
print("ready", flush=True)
added, deleted, phase = set(), set(), 28
while True:
    data = s.recv(1 << 20)
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind in (28, 29) and data[off + 16] == 7:  # RTM_NEW/DELNEIGH, AF_BRIDGE
            a, mac, dst = off + 28, None, False
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype == 1:
                    dst = True
                elif atype == 2:
                    mac = data[a + 4:a + 10]
                a += (alen + 3) & ~3
            if dst and mac and mac != bytes(6):
                (added if kind == 28 else deleted).add(mac)
        off += (length + 3) & ~3
    if phase == 28 and len(added) >= n:
        print("added", time.monotonic(), flush=True)
        phase = 29
    if phase == 29 and len(deleted) >= n:
        print("deleted", time.monotonic(), flush=True)
        break
"""


def vm_hwm(pid: int) -> int:
    """Peak RSS of a process in KiB."""
    for line in FsPath(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One line from a child's stdout, without blocking the event loop for long."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    import select

    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if ready:
            return proc.stdout.readline().strip()
    raise TimeoutError("counter said nothing")


async def wait_line(proc: subprocess.Popen, timeout: float) -> str:
    return await asyncio.to_thread(read_line, proc, timeout)


def start_dut(kind: str, lab: Lab, ns: Netns) -> tuple[list[int], object]:
    if kind == "evpnd":
        cfg = {
            "router_id": "192.0.2.1",
            "asn": 65001,
            "vtep": "192.0.2.1",
            "peers": [{"address": "10.0.1.2", "remote_as": 65002, "hold_time": 30}],
            "l2vnis": [{"vni": 100, "bridge": "br100"}],
            "log_level": "info",
        }
        node = EvpndNode(ns, cfg)
        lab.on_cleanup(node.remove)
        node.start()
        return [node.proc.pid], node
    add_vni(ns, 100, "192.0.2.1")
    conf = evpn_leaf_conf(65001, "192.0.2.1", [("10.0.1.2", 65002)])
    frr = Frr(ns, conf)
    lab.on_cleanup(frr.remove)
    frr.start()
    return [p.pid for p in frr.procs], frr


def dut_pids(kind: str, pids: list[int], handle) -> list[int]:
    if kind == "evpnd":
        exabgp = handle.data("show peers").get("exabgp_pid")
        return pids + ([exabgp] if exabgp else [])
    return pids


BLASTER = str(FsPath(__file__).resolve().parent / "bgp_blaster.py")


async def run_one(kind: str, n: int) -> dict:
    lab = Lab(prefix="be2e")
    try:
        p = pair(lab)
        counter = subprocess.Popen(
            p.a.cmd(sys.executable, "-c", COUNTER, str(n)), stdout=subprocess.PIPE, text=True
        )
        lab.on_cleanup(counter.kill)
        assert await wait_line(counter, 30) == "ready"
        blaster = subprocess.Popen(
            p.b.cmd(sys.executable, BLASTER, str(n), "--listen", "10.0.1.2"),
            stdout=subprocess.PIPE,
            text=True,
        )
        lab.on_cleanup(blaster.kill)
        assert (await wait_line(blaster, 120)).startswith("ready")
        pids, handle = start_dut(kind, lab, p.a)
        up = float((await wait_line(blaster, 120)).split()[1])
        line = await wait_line(counter, 300)
        assert line.startswith("added"), line
        install = float(line.split()[1]) - up
        rss = sum(vm_hwm(pid) for pid in dut_pids(kind, pids, handle)) / 1024
        t0 = time.monotonic()
        blaster.kill()  # the session drops: the DUT must remove everything it learned from it
        line = await wait_line(counter, 300)
        assert line.startswith("deleted"), line
        withdraw = float(line.split()[1]) - t0
        return {"kind": kind, "n": n, "install": install, "withdraw": withdraw, "rss": rss}
    finally:
        lab.cleanup()


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    for n in sizes:
        for kind in ("evpnd", "frr"):
            r = asyncio.run(run_one(kind, n))
            print(
                f"{kind:5} {n:>7} type-2 from a BGP peer into the kernel FDB: install "
                f"{r['install']:.2f} s, withdraw (session down) {r['withdraw']:.2f} s, "
                f"peak RSS {r['rss']:.0f} MiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
