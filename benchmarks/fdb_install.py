"""FDB install/withdraw benchmark: N remote type-2 MACs from a DesiredState into the kernel.

Runs in a private network namespace (root). Measures the real path: desired state filled and
marked dirty -> Dataplane.wanted_changed() -> planned, batched raw netlink -> kernel, until the
pass is over; then verifies the count with a dump (not timed) and withdraws everything.
Prints figures, not pass/fail. Reference on this machine (from the issue): FRR 8.4 installs 100k
in ~2.2 s and withdraws in ~1.9 s; the kernel alone needs ~1.0 s for two entries per MAC.

Wall time depends on what else the 2 cores run; CPU seconds per thread are printed too (the
event loop thread plans and reads events, the worker thread sends; its CPU includes the kernel's
work done inside sendto), so a loaded run can still be read.

    .venv/bin/python benchmarks/fdb_install.py [N ...]   (default: 10000 100000)
    .venv/bin/python benchmarks/fdb_install.py 100000 --datagrams 16384 262144 --repeat 3
        the kernel's cost of the same writes in 16 KiB datagrams (evpnd's) and 256 KiB ones
        (evpnd's before issue 14's fix): "in sendto" is the kernel's time
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import time
import uuid

from evpnd.config import parse_config
from evpnd.core.desired import FDB, DesiredState
from evpnd.dataplane import Dataplane
from evpnd.dataplane import netlink as nl
from evpnd.logs import setup_logging


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def mac_of(i: int) -> str:
    return f"02:{(i >> 32) & 255:02x}:{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:" \
        f"{(i >> 8) & 255:02x}:{i & 255:02x}"  # fmt: skip


def kernel_count(dp: Dataplane, vx: int) -> tuple[int, int, float]:
    """(vxlan extern_learn entries, bridge extern_learn entries, seconds) from a fresh dump."""

    def count() -> tuple[int, int, float]:
        t0 = time.perf_counter()
        req = dp.backend.requester  # noqa: SLF001 - benchmark peeks at the worker's socket
        self_n = master_n = 0
        for mtype, buf, off, end in req.dump(nl.RTM_GETNEIGH, nl.fdb_dump_request(vx)):
            n = nl.parse_neigh(mtype, buf, off, end)
            if n.flags & nl.NTF_EXT_LEARNED:
                if n.flags & nl.NTF_SELF:
                    self_n += 1
                else:
                    master_n += 1
        return self_n, master_n, time.perf_counter() - t0

    return dp.worker.call_sync(count)


class Phase:
    """Wall time, loop-thread CPU, worker CPU and kernel (sendto) time of one phase."""

    def __init__(self, dp: Dataplane) -> None:
        self.dp = dp

    def __enter__(self) -> Phase:
        st = self.dp.stats()
        self.k0, self.w0, self.e0 = st["kernel_seconds"], st["worker_cpu_seconds"], st["events"]
        self.c0, self.t0 = time.thread_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.loop_cpu = time.thread_time() - self.c0
        st = self.dp.stats()
        self.kernel = st["kernel_seconds"] - self.k0
        self.worker = st["worker_cpu_seconds"] - self.w0
        self.events = st["events"] - self.e0
        self.planning = st["last_pass_planning_seconds"]

    def line(self, what: str, n: int) -> str:
        return (
            f"{what} {self.wall:.3f} s ({n / self.wall:,.0f} MAC/s) | loop thread CPU "
            f"{self.loop_cpu:.3f} s (planning {self.planning:.3f} s wall) | worker CPU "
            f"{self.worker:.3f} s of which in sendto {self.kernel:.3f} s | events read "
            f"{self.events}"
        )


async def run(n: int, vteps: int = 64) -> None:
    ns = f"evb-fdb-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cfg = parse_config(
            {
                "router_id": "10.0.0.1",
                "asn": 65001,
                "vtep": "10.0.0.1",
                "sweep_hold_time": 0,
                "l2vnis": [{"vni": 100, "bridge": "br100"}],
            }
        )
        desired = DesiredState()
        dp = Dataplane(cfg, lambda e: None, netns=ns, reconcile_interval=3600)
        await dp.start(desired)
        rss0 = rss_mb()
        t0 = time.perf_counter()
        table = desired.fdb.setdefault(100, {})
        for i in range(n):
            mac = mac_of(i)
            table[mac] = f"10.0.{(i % vteps) // 250}.{2 + (i % vteps) % 250}"
            desired.dirty.add((FDB, 100, mac))
        t_fill = time.perf_counter() - t0
        with Phase(dp) as install:
            dp.wanted_changed()
            await dp.idle()
        st = dp.stats()
        vx = dp.dm.vnis[100].vxlan
        self_n, master_n, t_dump = await asyncio.to_thread(kernel_count, dp, vx)
        rss1 = rss_mb()
        print(f"N={n} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print("  " + install.line("install ", n))
        print(
            f"    ops {st['last_pass_ops']}, errors {st['errors']}; kernel holds {self_n} vxlan"
            f" + {master_n} bridge extern_learn entries (verification dump {t_dump:.2f} s);"
            f" filling the desired state (the core's job) took {t_fill:.3f} s"
        )
        # Restart over the installed entries: one dump, no writes.
        await dp.stop()
        t0 = time.perf_counter()
        dp = Dataplane(cfg, lambda e: None, netns=ns, reconcile_interval=3600)
        await dp.start(desired)
        t_restart = time.perf_counter() - t0
        st = dp.stats()
        print(
            f"  restart over {n} installed: start() {t_restart:.3f} s (dump "
            f"{st['last_dump_seconds']} s), writes {st['ops']}, owned {st['owned']['fdb']} + "
            f"{st['owned']['bridge_fdb']}"
        )
        t0 = time.perf_counter()
        await dp.reconcile_all()  # the periodic full pass: diff everything, nothing to write
        print(
            f"  full reconcile pass over {n} (no changes): {time.perf_counter() - t0:.3f} s, "
            f"writes {dp.stats()['ops']}"
        )
        with Phase(dp) as withdraw:
            for i in range(n):
                mac = mac_of(i)
                del table[mac]
                desired.dirty.add((FDB, 100, mac))
            dp.wanted_changed()
            await dp.idle()
        await asyncio.sleep(0.3)  # the last delete notifications
        st = dp.stats()
        self_n, master_n, _ = await asyncio.to_thread(kernel_count, dp, vx)
        print("  " + withdraw.line("withdraw", n))
        print(
            f"    left in kernel {self_n + master_n}, overruns {st['overruns']}, "
            f"errors {st['errors']}"
        )
        print(
            f"  RSS {rss0:.0f} MB before, {rss1:.0f} MB with {n} installed "
            f"(max {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
        )
        await dp.stop()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument(
        "--datagrams",
        nargs="+",
        type=int,
        default=[nl.Requester.DATAGRAM_BYTES],
        help="largest datagram of a batch, bytes (evpnd/dataplane/mmsg.py); several: an A/B of "
        "the kernel's cost, e.g. 16384 262144 (262144: one datagram per 256 KiB, as before)",
    )
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    setup_logging("warning")
    for n in args.sizes:
        for _ in range(args.repeat):
            for size in args.datagrams:
                nl.Requester.DATAGRAM_BYTES = size
                if len(args.datagrams) > 1:
                    print(f"-- datagrams of at most {size:,} bytes")
                asyncio.run(run(n))


if __name__ == "__main__":
    main()
