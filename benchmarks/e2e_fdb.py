"""End to end between a BGP peer and the kernel FDB: evpnd + ExaBGP against FRR 8.4, same run.

    .venv/bin/python benchmarks/e2e_fdb.py                 (root; the README table)
    .venv/bin/python benchmarks/e2e_fdb.py --sizes 10000 100000 --repeat 3 --md OUT.md
    .venv/bin/python benchmarks/e2e_fdb.py --scale         (1k..1M, evpnd and FRR; PNG plot)
    .venv/bin/python benchmarks/e2e_fdb.py --only evpnd --rows established

The sender (benchmarks/bgp_blaster.py: a minimal BGP speaker writing pre-encoded UPDATEs of ~110
NLRIs as fast as TCP allows, never the bottleneck) holds N type-2 routes for VNI 100 in one
namespace; the device under test (DUT) -- evpnd, then FRR's zebra+bgpd with advertise-all-vni --
runs in another. A netlink listener in the DUT's namespace counts FDB entries as the kernel gets
them; complete = every MAC has both its `self` entry (vxlan, with a `dst`) and its `master`
entry (bridge), which both daemons install. Both DUTs are started and settled (VNI known, API
up) before the sender listens: a leaf that is already running, as both are run in production.

Rows (each DUT fresh per row, the same sender):

  start        routes sent at session start: clock from the sender seeing Established (it then
               writes everything) to the last entry; withdraw = the sender closes the session
               (the DUT removes everything learned from it)
  established  routes sent over an established session (the sender waits 2 s after
               Established, then writes): clock from just before its first byte; withdraw =
               the same NLRIs in MP_UNREACH over the same session
  first entry  (in both) the first FDB entry after the first UPDATE was written
  rr2          two route reflectors (two senders) send the same N routes, established; install
               and withdraw as above, two paths per route
  advertise    N local MACs (`bridge -batch` on an access port) until the sender has received
               N type-2 routes; clock from the start of the batch (`batch`, printed per run:
               when `bridge -batch` returned, i.e. the kernel alone's share)
  restart      (evpnd) stop and start over N installed routes; kernel writes counted by the
               daemon (metric evpnd_kernel_operations) until the RIB holds N again: must be 0
  RSS / CPU    peak resident memory (VmHWM, summed over the DUT's process tree: evpnd + ExaBGP
               + relay; zebra + bgpd) and CPU seconds of the tree when the install completes;
               wcpu: the tree's CPU seconds from then to the end of the withdraw

--profile DIR records py-spy (on PATH) samples of evpnd's main process during the established
install and withdraw (collapsed stacks, one file each, threads apart); EVPND_MONITOR_FILTER=classic
in the environment runs evpnd with the classic monitor filter (docs/bench/echo_filter.md).

FRR as its users run it: `frr defaults datacenter` (the profile EVPN fabrics use: eBGP
advertisement-interval 0 instead of 30 s for eBGP, `no bgp ebgp-requires-policy`, 3/9 s timers),
zebra with a 90 MB netlink receive buffer, and the DUT settled before the session comes up.
The earlier version of this benchmark started FRR together with the sender, so FRR's own
start-up (zebra learning interfaces and VNIs, bgpd learning VNI 100) overlapped the clock;
`--cold` measures that variant. `E2E_FRR_EXTRA="bgp coalesce-time 0"` (lines for `router bgp`,
`;`-separated) tries other FRR settings: coalesce-time 0 and update-delay 0 changed nothing
beyond the noise on the loaded machine this was written on.

The machine this runs on is shared and loaded: compare evpnd/FRR ratios from the same run and
repeat (`--repeat`); the printed ranges are min-max over the repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

import evpnd.lab.evpnd_node as node_mod  # noqa: E402
from evpnd.lab.evpnd_node import EvpndNode  # noqa: E402
from evpnd.lab.frr import Frr, evpn_leaf_conf  # noqa: E402
from evpnd.lab.netns import Lab, Netns, wait_for  # noqa: E402
from tests.netns.speaker_lab import add_vni, pair  # noqa: E402

BLASTER = str(FsPath(__file__).resolve().parent / "bgp_blaster.py")
ROOT = FsPath(__file__).resolve().parent.parent
BASELINE = [""]  # --baseline TREE: a checkout of evpnd before a change, run as kind "before"
FRR_EXTRA = os.environ.get("E2E_FRR_EXTRA", "").replace(";", "\n")  # experiments: bgpd lines
PROFILE = [""]  # --profile DIR: py-spy samples of evpnd during the established install

# Runs inside the DUT's namespace. Counts distinct MACs of the `self` FDB entries (NDA_DST) and
# the `master` ones (NDA_MASTER, no NDA_DST) as they are added, then deleted. Prints `first T`
# at the first add, `added T` once both sets hold N, `deleted T` once both are empty again.
COUNTER = r"""
import socket, struct, sys, time
# Cheap per notification (it must never be the bottleneck: the first version, recv(1 MiB) and
# a walk over every attribute, took ~15 us each, a whole core at 100k routes, and finished the
# install ~0.9 s after the DUT): recv_into one buffer; the kernel writes LLADDR first and then
# DST (vxlan `self` entry) or MASTER (bridge entry), so those are read at fixed offsets, with
# the attribute walk as the fallback for any other layout. Blocking reads until the first
# entry (its time exact), then all that is queued every millisecond: a wake-up per
# notification cost the writer (the DUT) more the slower it wrote.
n = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(socket.SOL_SOCKET, 33, 256 << 20)  # SO_RCVBUFFORCE: never drop a notification
s.bind((0, 4))  # RTMGRP_NEIGH
print("ready", flush=True)
sets = {(28, 0): set(), (28, 1): set(), (29, 0): set(), (29, 1): set()}
phase, first = 28, True
buf = bytearray(1 << 16)
head = struct.Struct("=IH10xB11xHH6s2xHH").unpack_from  # nlmsghdr, ndm_family, attr 1, attr 2
attr = struct.Struct("=HH").unpack_from
nlmsg = struct.Struct("=IH").unpack_from
recv_into = s.recv_into
while True:
    try:  # after the first entry: wake every millisecond and read all that is queued, not
        size = recv_into(buf, 0, 0 if first else socket.MSG_DONTWAIT)  # once per notification
    except BlockingIOError:
        time.sleep(0.001)
        continue
    off = 0
    while off + 16 <= size:
        length, kind = nlmsg(buf, off)
        if length < 16:
            break
        if kind in (28, 29) and length >= 44 and buf[off + 16] == 7:  # RTM_*NEIGH, AF_BRIDGE
            _l, _k, _fam, alen, atype, mac, blen, btype = head(buf, off)
            if alen == 10 and atype == 2 and btype in (1, 9):
                dst, master = btype == 1, btype == 9
            else:  # another layout: walk the attributes
                a, mac, dst, master = off + 28, None, False, False
                while a + 4 <= off + length:
                    alen, atype = attr(buf, a)
                    if alen < 4:
                        break
                    if atype == 1:
                        dst = True
                    elif atype == 2:
                        mac = bytes(buf[a + 4:a + 10])
                    elif atype == 9:
                        master = True
                    a += (alen + 3) & ~3
            if mac and mac[0] == 2 and mac[1] == 0 and mac != bytes(6) and (dst or master):
                if first and kind == 28:
                    print("first", time.monotonic(), flush=True)
                    first = False
                sets[(kind, 0 if dst else 1)].add(mac)
        off += (length + 3) & ~3
    if phase == 28 and len(sets[(28, 0)]) >= n and len(sets[(28, 1)]) >= n:
        print("added", time.monotonic(), flush=True)
        phase = 29
    if phase == 29 and len(sets[(29, 0)]) >= n and len(sets[(29, 1)]) >= n:
        print("deleted", time.monotonic(), flush=True)
        break
"""


# ---- processes --------------------------------------------------------------------------------


def tree(pids: list[int]) -> list[int]:
    """The processes and all their descendants."""
    children: dict[int, list[int]] = {}
    for d in FsPath("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def vm_hwm(pid: int) -> int:
    """Peak RSS of a process in KiB."""
    try:
        for line in FsPath(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = FsPath(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def process_name(pid: int) -> str:
    """A short name for a DUT process: the Python script or module it runs, else its comm."""
    try:
        argv = FsPath(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        comm = FsPath(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    if not comm.startswith("python"):
        return comm  # zebra, bgpd
    for arg in argv[1:4]:
        text = arg.decode(errors="replace")
        for name in ("relay", "exabgp", "evpnd"):
            if name in text:
                return name
    return comm


def usage(pids: list[int]) -> tuple[float, float]:
    """(peak RSS MiB summed over the tree, CPU seconds of the tree)."""
    procs = [p for p in tree(pids) if not _is_wrapper(p)]
    return sum(vm_hwm(p) for p in procs) / 1024, sum(cpu_seconds(p) for p in procs)


def _is_wrapper(pid: int) -> bool:
    try:
        return FsPath(f"/proc/{pid}/comm").read_text().strip() in ("ip", "sudo")
    except OSError:
        return True


def baseline_command() -> list[str]:
    """evpnd from the --baseline tree: the venv's editable finder would import this tree's, so
    it is taken off sys.meta_path first (ExaBGP's extension and relay stay this tree's)."""
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)];"
        f"sys.path.insert(0, {BASELINE[0]!r}); sys.argv[0] = 'evpnd';"
        "from evpnd.cli.daemon_main import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code]


class Reader:
    """Lines from a child's stdout with a timeout, off the event loop (a thread per child:
    `select` on a buffered pipe misses lines already read into the buffer)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    async def line(self, timeout: float = 300) -> str:
        try:
            return await asyncio.to_thread(self.lines.get, True, timeout)
        except queue.Empty:
            raise TimeoutError("child said nothing") from None

    async def expect(self, word: str, timeout: float = 900) -> float:
        line = await self.line(timeout)
        if not line.startswith(word):
            raise RuntimeError(f"expected {word!r}, got {line!r}")
        return float(line.split()[-1])

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()


# ---- devices under test -----------------------------------------------------------------------


class Dut:
    def __init__(self, kind: str, lab: Lab, ns: Netns, peers: list[str]) -> None:
        self.kind, self.lab, self.ns, self.peers = kind, lab, ns, peers
        self.node: EvpndNode | None = None
        self.frr: Frr | None = None

    def start(self) -> None:
        if self.kind in ("evpnd", "before"):
            cfg = {
                "router_id": "192.0.2.1",
                "asn": 65001,
                "vtep": "192.0.2.1",
                "peers": [{"address": a, "remote_as": 65002, "hold_time": 30} for a in self.peers],
                "l2vnis": [{"vni": 100, "bridge": "br100"}],
                "log_level": "info",
                "metrics": {"enabled": True},
            }
            self.node = EvpndNode(self.ns, cfg)
            self.lab.on_cleanup(self.node.remove)
            if self.kind == "before":  # the tree before a change, same venv (--baseline)
                self.node_command = node_mod.evpnd_command
                node_mod.evpnd_command = baseline_command
            try:
                self.node.start(timeout=180)  # a loaded machine: slow to start
            finally:
                if self.kind == "before":
                    node_mod.evpnd_command = self.node_command
            return
        if "br100" not in self.ns.run(["ip", "-br", "link"]):
            add_vni(self.ns, 100, "192.0.2.1")
        conf = "frr defaults datacenter\n" + evpn_leaf_conf(
            65001, "192.0.2.1", [(a, 65002) for a in self.peers], extra=FRR_EXTRA
        )
        self.frr = Frr(self.ns, conf)
        self.lab.on_cleanup(self.frr.remove)
        self.frr.start(timeout=120)
        # settled: bgpd knows VNI 100 from zebra (else routes wait for it, then are re-imported)
        wait_for(lambda: "100" in self.frr.json("show bgp l2vpn evpn vni json"), 120, what="VNI")

    @property
    def pids(self) -> list[int]:
        if self.node is not None:
            assert self.node.proc is not None
            return [self.node.proc.pid]
        assert self.frr is not None
        return [p.pid for p in self.frr.procs]

    def usage(self) -> tuple[float, float]:
        return usage(self.pids)

    def kernel_ops(self) -> int:
        out = self.ns.run(
            [sys.executable, "-c", "import urllib.request as u;"
             "print(u.urlopen('http://127.0.0.1:9617/metrics').read().decode())"]
        )  # fmt: skip
        for line in out.splitlines():
            if line.startswith("evpnd_kernel_operations"):
                return int(float(line.split()[-1]))
        raise RuntimeError("no evpnd_kernel_operations metric")

    def routes(self) -> int:
        assert self.node is not None
        return int(self.node.data("show status").get("routes", 0))


class Bench:
    """One DUT in a fresh pair of namespaces, with its counter and senders."""

    def __init__(self, kind: str, n: int, senders: int = 1, hold: bool = False) -> None:
        self.kind, self.n, self.nsend, self.hold = kind, n, senders, hold
        self.lab = Lab(prefix="be2e")
        self.senders: list[Reader] = []

    def __enter__(self) -> Bench:
        self.p = pair(self.lab)
        addrs = [f"10.0.1.{2 + i}" for i in range(self.nsend)]
        for a in addrs[1:]:
            self.p.b.ip("addr", "add", f"{a}/24", "dev", "eth0")
        self.dut = Dut(self.kind, self.lab, self.p.a, addrs)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.cleanup()

    def _popen(self, ns: Netns, *args: str, stdin: bool = False) -> Reader:
        proc = subprocess.Popen(
            ns.cmd(*args),
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin else None,
            text=True,
        )
        self.lab.on_cleanup(proc.kill)
        return Reader(proc)

    def profile(self, name: str, pid: int | None = None) -> subprocess.Popen:
        """py-spy (on PATH) sampling one DUT process (default the main one, evpnd) until
        interrupted, collapsed stacks in PROFILE/name.txt (flamegraph.pl or speedscope read
        them); --nonblocking: the daemon is not paused to take a sample."""
        out = FsPath(PROFILE[0]) / f"{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        target = str(self.dut.pids[0] if pid is None else pid)
        cmd = ["py-spy", "record", "--pid", target, "--rate", "250", "--format", "raw",
               "--nonblocking", "--threads", "-o", str(out)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.lab.on_cleanup(proc.kill)
        time.sleep(0.5)  # attached before the first byte
        return proc

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds of each DUT process, by its name (evpnd, exabgp, relay; zebra, bgpd)."""
        out: dict[str, float] = {}
        for pid in tree(self.dut.pids):
            if _is_wrapper(pid):
                continue
            name = process_name(pid)
            out[name] = out.get(name, 0.0) + cpu_seconds(pid)
        return out

    async def counter(self) -> Reader:
        c = self._popen(self.p.a, sys.executable, "-c", COUNTER, str(self.n))
        assert await c.line(30) == "ready"
        return c

    async def start_senders(self, n: int | None = None) -> list[float]:
        """Senders listen; the DUT (already running) connects. Returns each `up` time."""
        for i in range(self.nsend):
            args = [sys.executable, BLASTER, str(self.n if n is None else n)]
            args += ["--listen", f"10.0.1.{2 + i}", "--router-id", f"192.0.2.{2 + 8 * i}"]
            args += ["--rd", "192.0.2.2:1"] + (["--hold"] if self.hold else [])
            s = self._popen(self.p.b, *args, stdin=self.hold)
            assert (await s.line(180)).startswith("ready")
            self.senders.append(s)
        return [await s.expect("up", 120) for s in self.senders]


class CpuTimeline:
    """Each process's CPU every 20 ms in a thread (--profile): when did each stop working.
    The harness's own processes are named too: the FDB counter once was the bottleneck of every
    install row (issue 14), found by exactly this."""

    def __init__(self, b: Bench, extra: dict[str, int] | None = None) -> None:
        self.b, self.extra = b, extra or {}
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.on = True
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _cpu(self) -> dict[str, float]:
        out = self.b.cpu_by_process()
        for name, pid in self.extra.items():
            out[name] = cpu_seconds(pid)
        return out

    def _run(self) -> None:
        while self.on:
            self.samples.append((time.monotonic(), self._cpu()))
            time.sleep(0.02)

    def report(self, what: str, marks: dict[str, float]) -> None:
        self.on = False
        self.thread.join()
        t0, pairs = self.t0, list(zip(self.samples[1:], self.samples[:-1], strict=False))
        end = self.samples[-1][1] if self.samples else {}
        print(f"  timeline of {what} (s from its start; "
              + ", ".join(f"{k} {v - t0:.3f}" for k, v in marks.items())
              + "): CPU busy until", end="")  # fmt: skip
        for name in end:
            last = max((t for (t, c), (_, p) in pairs if c.get(name, 0) > p.get(name, 0)),
                       default=t0)  # fmt: skip
            used = end[name] - self.samples[0][1].get(name, 0.0)
            print(f" {name} {last - t0:.3f} ({used:.2f} s)", end="")
        print()


# ---- rows ---------------------------------------------------------------------------------------


async def row_start(kind: str, n: int, cold: bool = False) -> dict:
    with Bench(kind, n) as b:
        counter = await b.counter()
        if not cold:
            await asyncio.to_thread(b.dut.start)
        if cold:  # the earlier variant: the DUT starts together with the sender
            task = asyncio.create_task(b.start_senders())
            await asyncio.to_thread(b.dut.start)
            (up,) = await task
        else:
            (up,) = await b.start_senders()
        first = await counter.expect("first")
        added = await counter.expect("added")
        rss, cpu = b.dut.usage()
        t0 = time.monotonic()
        b.senders[0].proc.kill()  # the session drops: the DUT removes what it learned
        deleted = await counter.expect("deleted")
        return {
            "install": added - up, "first": first - up, "withdraw": deleted - t0,
            "rss": rss, "cpu": cpu, "wcpu": b.dut.usage()[1] - cpu,
        }  # fmt: skip


async def row_established(kind: str, n: int, senders: int = 1) -> dict:
    with Bench(kind, n, senders=senders, hold=True) as b:
        counter = await b.counter()
        await asyncio.to_thread(b.dut.start)
        await b.start_senders()
        await asyncio.sleep(2)  # both sides settled (type-3 exchanged, KEEPALIVEs)
        spy = b.profile(f"{kind}-established-{n}-{senders}rr") if PROFILE[0] else None
        extra = {"counter": counter.proc.pid}
        extra.update({f"sender{i}": s.proc.pid for i, s in enumerate(b.senders)})
        timeline = CpuTimeline(b, extra) if PROFILE[0] else None
        for s in b.senders:
            s.send("go")
        starts = [await s.expect("first") for s in b.senders]
        first = await counter.expect("first")
        added = await counter.expect("added")
        if timeline is not None:
            timeline.report("the install", {"complete": added})
        rss, cpu = b.dut.usage()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
        for s in b.senders:
            await s.expect("sent")
        await asyncio.sleep(1)  # the second path of each route has arrived too
        spy = b.profile(f"{kind}-withdraw-{n}-{senders}rr") if PROFILE[0] else None
        timeline = CpuTimeline(b, extra) if PROFILE[0] else None
        for s in b.senders:
            s.send("withdraw")
        wstarts = [await s.expect("wfirst") for s in b.senders]
        deleted = await counter.expect("deleted")
        if timeline is not None:
            timeline.report("the withdraw", {"complete": deleted})
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
        return {
            "install": added - min(starts), "first": first - min(starts),
            "withdraw": deleted - min(wstarts), "rss": rss, "cpu": cpu,
            "wcpu": b.dut.usage()[1] - cpu,  # from the end of the install: the withdraw's
        }  # fmt: skip


async def row_advertise(kind: str, n: int) -> dict:
    with Bench(kind, 1, hold=True) as b:  # the sender holds 1 route it never sends
        ns = b.p.a
        ns.ip("link", "add", "acc0", "type", "veth", "peer", "name", "acc0p")
        if kind == "frr":
            add_vni(ns, 100, "192.0.2.1")  # before zebra starts, as it learns them at start
            ns.ip("link", "set", "acc0", "master", "br100")
        await asyncio.to_thread(b.dut.start)
        if kind != "frr":
            ns.ip("link", "set", "acc0", "master", "br100")
        ns.ip("link", "set", "acc0", "up")
        ns.ip("link", "set", "acc0p", "up")
        await b.start_senders()
        await asyncio.sleep(2)
        batch = FsPath(tempfile.mkstemp(prefix="be2e-adv-")[1])
        batch.write_text(
            "".join(
                f"fdb add 02:01:{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:"
                f"{i & 255:02x} dev acc0 master dynamic\n"
                for i in range(n)
            )
        )
        b.lab.on_cleanup(lambda: batch.unlink(missing_ok=True))
        s = b.senders[0]
        s.send(f"expect {n}")
        spies = []
        if PROFILE[0]:  # every DUT process: the time is spread over evpnd, ExaBGP and relay
            for pid in tree(b.dut.pids):
                if not _is_wrapper(pid) and kind != "frr":
                    spies.append(b.profile(f"{kind}-advertise-{n}-{process_name(pid)}", pid))
        before = b.cpu_by_process()
        timeline = CpuTimeline(b, {"sender": s.proc.pid}) if PROFILE[0] else None
        t0 = time.monotonic()
        ns.run(["bridge", "-batch", str(batch)], timeout=300)
        learned = time.monotonic()  # the kernel holds the N entries (`bridge` is done)
        got = await s.expect("got", 120)
        rss, cpu = b.dut.usage()
        after = b.cpu_by_process()
        if timeline is not None:
            timeline.report("the batch", {"batch done": learned, "got": got})
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
        out = {"advertise": got - t0, "batch": learned - t0, "rss": rss, "cpu": cpu}
        for name, sec in after.items():  # CPU of this row alone, per process
            out[f"cpu_{name}"] = sec - before.get(name, 0.0)
        return out


async def row_restart(n: int, kind: str = "evpnd") -> dict:
    """evpnd only: stop and start over N installed routes; kernel writes must be 0."""
    with Bench(kind, n) as b:
        counter = await b.counter()
        await asyncio.to_thread(b.dut.start)
        await b.start_senders()
        await counter.expect("first")
        await counter.expect("added")
        node = b.dut.node
        assert node is not None
        node.stop()
        # the sender accepts one session: a second one for the restarted daemon
        b.senders.clear()
        t0 = time.monotonic()
        await asyncio.to_thread(node.start, True, 180)
        await b.start_senders()
        await asyncio.to_thread(
            wait_for, lambda: b.dut.routes() >= n, 300, 0.2, "the RIB to hold N routes"
        )
        await asyncio.sleep(1)  # the last dirty pass has run
        return {"restart": time.monotonic() - t0, "writes": b.dut.kernel_ops()}


# ---- report -------------------------------------------------------------------------------------


def rng(values: list[float], unit: str = "s", fmt: str = "{:.2f}") -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    if unit == "ms":
        lo, hi, fmt = lo * 1000, hi * 1000, "{:.0f}"
    text = (
        fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"
    )
    return f"{text} {unit}"


def ratio(e: list[float], f: list[float]) -> str:
    """Median ratio and the range of per-repetition ratios (pairs from the same repetition)."""
    if not e or not f:
        return "-"
    rs = [a / b for a, b in zip(e, f, strict=False) if b > 0]
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}-{max(rs):.2f})"


def table(results: dict, sizes: list[int], repeat: int, a: str = "evpnd", b: str = "frr") -> str:
    """Markdown, one line per measured quantity: evpnd, FRR, evpnd/FRR."""

    def get(kind: str, row: str, n: int, key: str) -> list[float]:
        return [r[key] for r in results.get((kind, row, n), []) if key in r]

    lines = [
        f"| row (N type-2, {repeat} repetitions, min-max) | evpnd | FRR 8.4 "
        "| evpnd/FRR median (range) |",
        "|---|---:|---:|---:|",
    ]
    spec = [
        ("start", "install", "install at session start"),
        ("start", "withdraw", "withdraw: session down"),
        ("start", "first", "first entry after the first UPDATE, session start"),
        ("start", "wcpu", "CPU s of the withdraw, session down"),
        ("established", "install", "install over an established session"),
        ("established", "withdraw", "withdraw: MP_UNREACH over the session"),
        ("established", "first", "first entry after the first UPDATE, established"),
        ("rr2", "install", "install, 2 route reflectors (2 paths/route)"),
        ("rr2", "withdraw", "withdraw, 2 route reflectors"),
        ("advertise", "advertise", "advertise: local MACs -> on the wire"),
        ("established", "rss", "peak RSS: evpnd+ExaBGP+relay / zebra+bgpd"),
        ("established", "cpu", "CPU s by the end of the install (start-up included)"),
        ("established", "wcpu", "CPU s from the end of the install to the end of the withdraw"),
    ]
    for n in sizes:
        for row, key, what in spec:
            e, f = get(a, row, n, key), get(b, row, n, key)
            if not e and not f:
                continue
            unit = {"first": "ms", "rss": "MiB"}.get(key, "s")
            fmt = "{:.0f}" if key == "rss" else "{:.2f}"
            lines.append(
                f"| {what}, {n:,} | {rng(e, unit, fmt)} | {rng(f, unit, fmt)} | {ratio(e, f)} |"
            )
        rs = results.get((a, "restart", n), [])
        if rs:
            w = sorted({r["writes"] for r in rs})
            lines.append(
                f"| restart over {n:,} installed: kernel writes (time to RIB full) | "
                f"{'/'.join(map(str, w))} ({rng([r['restart'] for r in rs])}) | | |"
            )
    return "\n".join(lines) + "\n"


async def run_row(row: str, kind: str, n: int, args: argparse.Namespace) -> dict:
    if row == "start":
        return await row_start(kind, n, cold=args.cold)
    if row == "established":
        return await row_established(kind, n)
    if row == "rr2":
        return await row_established(kind, n, senders=2)
    if row == "advertise":
        return await row_advertise(kind, n)
    return await row_restart(n, kind)


async def bench(args: argparse.Namespace) -> dict:
    results: dict = {}
    kinds = [k for k in ("before", "evpnd", "frr") if k in args.only]
    for _ in range(args.repeat):
        for n in args.sizes:
            for row in args.rows:
                for kind in kinds:
                    if row == "restart" and kind == "frr":
                        continue
                    if row == "rr2" and n < args.rr2_min:
                        continue
                    t0 = time.monotonic()
                    try:
                        r = await run_row(row, kind, n, args)
                    except (TimeoutError, RuntimeError, EOFError, OSError, AssertionError,
                            subprocess.SubprocessError) as exc:  # fmt: skip
                        # a loaded machine: report the row as failed, keep the rest of the run
                        print(f"{kind:5} {row:11} {n:>8}: FAILED {exc!r}", flush=True)
                        continue
                    results.setdefault((kind, row, n), []).append(r)
                    shown = ", ".join(f"{k} {v:.3f}" for k, v in r.items())
                    print(f"{kind:5} {row:11} {n:>8}: {shown}  [{time.monotonic() - t0:.0f} s]",
                          flush=True)  # fmt: skip
    return results


async def scale(args: argparse.Namespace) -> None:
    """Install time, routes/s and RSS against N (routes at session start)."""
    out: dict[str, dict[int, dict]] = {}
    for kind in [k for k in ("evpnd", "frr") if k in args.only]:
        for n in args.scale_sizes:
            if kind == "frr" and n > args.frr_max:
                continue
            try:
                r = await row_start(kind, n)
            except (TimeoutError, RuntimeError, EOFError, OSError, AssertionError,
                    subprocess.SubprocessError) as exc:  # fmt: skip
                print(f"{kind:5} {n:>8}: FAILED {exc!r}", flush=True)
                continue
            r["rate"] = n / r["install"]
            out.setdefault(kind, {})[n] = r
            print(f"{kind:5} {n:>8}: install {r['install']:.2f} s ({r['rate']:,.0f} routes/s), "
                  f"withdraw {r['withdraw']:.2f} s, peak RSS {r['rss']:.0f} MiB, "
                  f"CPU {r['cpu']:.1f} s", flush=True)  # fmt: skip
    stem = FsPath(args.scale_out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
    lines = [
        "| N | " + " | ".join(f"{k} install | {k} routes/s | {k} peak RSS" for k in out) + " |"
    ]
    lines.append("|---:|" + "---:|---:|---:|" * len(out))
    for n in args.scale_sizes:
        cells = []
        for k in out:
            r = out[k].get(n)
            cells += (
                [f"{r['install']:.2f} s", f"{r['rate']:,.0f}", f"{r['rss']:.0f} MiB"]
                if r else ["-", "-", "-"]
            )  # fmt: skip
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for k, rows in out.items():
        ns = sorted(rows)
        ax1.plot(ns, [rows[n]["install"] for n in ns], "o-", label=k)
        ax2.plot(ns, [rows[n]["rss"] for n in ns], "o-", label=k)
    for ax, what in ((ax1, "install time (s)"), (ax2, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("type-2 routes (N)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("BGP peer -> kernel FDB, routes at session start (log-log; linear = slope 1)")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=100)
    print(f"wrote {stem.with_suffix('.png')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    rows = ["start", "established", "rr2", "advertise", "restart"]
    p.add_argument("--rows", nargs="+", default=rows, choices=rows)
    p.add_argument(
        "--only", nargs="+", default=["evpnd", "frr"], choices=["before", "evpnd", "frr"]
    )
    p.add_argument("--baseline", help="an evpnd tree before a change: adds kind 'before'")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rr2-min", type=int, default=100_000, help="two-RR row only from this N")
    p.add_argument("--cold", action="store_true", help="start row: DUT starts with the sender")
    p.add_argument("--profile", help="py-spy (on PATH) samples of evpnd's established install "
                   "into this directory (collapsed stacks, one file per row)")  # fmt: skip
    p.add_argument("--md", help="write the markdown table here (e.g. docs/bench/e2e_fdb.md)")
    p.add_argument("--scale", action="store_true", help="the scaling run instead")
    p.add_argument("--scale-sizes", type=int, nargs="+",
                   default=[1_000, 10_000, 100_000, 300_000, 1_000_000])  # fmt: skip
    p.add_argument("--frr-max", type=int, default=1_000_000)
    p.add_argument("--scale-out", default=str(ROOT / "docs/bench/e2e_scaling"))
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("e2e_fdb.py: needs root (network namespaces)")
    # killed (SIGTERM): unwind, so each lab removes its namespaces and processes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    PROFILE[0] = args.profile or ""
    if args.baseline:
        BASELINE[0] = str(FsPath(args.baseline).resolve())
        args.only = ["before", *[k for k in args.only if k != "before"]]
    if args.scale:
        asyncio.run(scale(args))
        return
    started = time.monotonic()
    results = asyncio.run(bench(args))
    md = table(results, args.sizes, args.repeat)
    print(md)
    if args.baseline:
        print("before -> after (the --baseline tree vs this one, same run):")
        before = table(results, args.sizes, args.repeat, "before", "evpnd")
        print(before.replace("| evpnd | FRR 8.4 | evpnd/FRR", "| before | after | before/after"))
    print(f"({time.monotonic() - started:.0f} s in all)")
    if args.md:
        FsPath(args.md).parent.mkdir(parents=True, exist_ok=True)
        FsPath(args.md).write_text(md)


if __name__ == "__main__":
    main()
