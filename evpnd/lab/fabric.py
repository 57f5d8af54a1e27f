"""The evpn-fabric lab's measurements, shared by its test and benchmarks/fabric.py.

MACs behind a leaf are learned bridge entries (`bridge fdb add MAC dev eth2 master dynamic`,
NUD_REACHABLE: what the bridge records when a frame from MAC arrives on the host port, and
what FRR's zebra and evpnd both advertise as a local, movable MAC), added in one `bridge -batch`
per leaf. Remote MACs are counted in the kernel (the VXLAN device's `dst` entries), so "a leaf
holds a MAC" means its dataplane forwards to it, not that a daemon says so.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from evpnd.lab import runner
from evpnd.lab.netns import Netns

VNI = 100


def leaf_number(node: str) -> int:
    return int(node.removeprefix("leaf"))


def leaves(lab: runner.RunningLab) -> list[str]:
    return sorted(n for n in lab.topo.nodes if n.startswith("leaf"))


def vtep_of(lab: runner.RunningLab, node: str) -> str:
    return f"10.0.0.{10 + leaf_number(node)}"


def fake_mac(leaf: int, i: int) -> str:
    """MAC number i behind leaf number `leaf` (locally administered, unicast; never a host's)."""
    return f"02:{leaf:02x}:00:00:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"


def is_fake_mac(mac: str) -> bool:
    """One of the MACs fake_mac() makes (hosts' own MACs are 02:00:0a:0a:00:NN)."""
    parts = mac.split(":")
    return len(parts) == 6 and parts[0] == "02" and parts[1] != "00" and parts[2:4] == ["00", "00"]


def _bridge(ns: Netns, args: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(ns.cmd("bridge", *args), input=stdin, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    if proc.returncode != 0:
        raise runner.LabError(f"{ns.name}: bridge {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def wait_bridge_port(lab: runner.RunningLab, node: str, port: str = "eth2", timeout=60.0) -> None:
    """evpnd enslaves its access port when it has made the bridge; FRR leaves' exec lines did."""
    deadline = time.monotonic() + timeout
    master = Path(f"/sys/class/net/{port}/master")
    while time.monotonic() < deadline:
        out = lab.ns(node).run(["sh", "-c", f"readlink {master} || true"], check=False)
        if out.strip().endswith(f"br{VNI}"):
            return
        time.sleep(0.2)
    raise runner.LabError(f"{node}: {port} not in br{VNI} after {timeout:.0f}s")


def inject_macs(lab: runner.RunningLab, node: str, count: int, port: str = "eth2") -> None:
    """`count` learned MACs behind the leaf's host port, in one netlink batch."""
    n = leaf_number(node)
    lines = "".join(
        f"fdb replace {fake_mac(n, i)} dev {port} master dynamic\n" for i in range(count)
    )
    _bridge(lab.ns(node), ["-batch", "-"], stdin=lines)


# A RARP announcement from MAC (what QEMU and VMware send for a VM after a live migration):
# broadcast, so the new leaf's bridge learns MAC on its host port from a real frame.
_RARP = """
import socket, sys
mac = bytes.fromhex(sys.argv[2].replace(":", ""))
body = bytes.fromhex("0001080006040003") + mac + bytes(4) + mac + bytes(4)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for _ in range(3):
    s.send(b"\\xff" * 6 + mac + b"\\x80\\x35" + body + bytes(18))
"""


def move_mac(lab: runner.RunningLab, mac: str, dst_host: str, ifname: str = "eth1") -> None:
    """The VM with `mac` now lives behind `dst_host`'s leaf: it announces itself with RARP from
    there. The old leaf is not touched; RFC 7432's sequence numbers must sort it out."""
    proc = subprocess.run(lab.ns(dst_host).cmd("python3", "-c", _RARP, ifname, mac),
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    if proc.returncode != 0:
        raise runner.LabError(f"RARP from {dst_host}: {proc.stderr.strip()}")


def remote_fdb(lab: runner.RunningLab, node: str) -> dict[str, str]:
    """{MAC: remote VTEP} of the leaf's VXLAN device for VNI 100 (unicast entries only)."""
    dev = runner.vxlan_devices(lab.ns(node)).get(VNI)
    if dev is None:
        return {}
    out = {}
    for line in _bridge(lab.ns(node), ["fdb", "show", "dev", dev]).splitlines():
        words = line.split()
        if len(words) > 2 and "dst" in words and words[0] != "00:00:00:00:00:00":
            out[words[0]] = words[words.index("dst") + 1]
    return out


def expected_remote(lab: runner.RunningLab, node: str, per_leaf: int) -> set[str]:
    """The injected MACs a leaf must hold: every other leaf's."""
    return {
        fake_mac(leaf_number(other), i)
        for other in leaves(lab)
        if other != node
        for i in range(per_leaf)
    }


class FdbWatch:
    """`bridge monitor fdb` in every leaf, each read by a thread that stamps every line as it
    arrives: completion times are when the kernel got the entry, not when a poll noticed."""

    def __init__(self, lab: runner.RunningLab, nodes: Iterable[str]):
        self.seen: dict[str, dict[str, tuple[float, str]]] = {}  # node -> MAC -> (time, dst)
        self.deleted: dict[str, list[tuple[float, str]]] = {}  # node -> [(time, MAC)]
        self.learned: dict[str, dict[str, float]] = {}  # node -> MAC -> time (bridge, local)
        self.procs: dict[str, subprocess.Popen] = {}
        self.threads = []
        for n in nodes:
            self.seen[n], self.deleted[n], self.learned[n] = {}, [], {}
            cmd = lab.ns(n).cmd("bridge", "monitor", "fdb")
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            self.procs[n] = proc
            t = threading.Thread(target=self._read, args=(n, proc), daemon=True)
            t.start()
            self.threads.append(t)
        time.sleep(0.3)  # the monitors subscribe before anything they must see happens

    def _read(self, node: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            t = time.monotonic()
            words = line.split()
            if not words:
                continue
            if words[0] == "Deleted":
                if len(words) > 1:
                    self.deleted[node].append((t, words[1]))
            elif "dst" in words and words[0] != "00:00:00:00:00:00":
                self.seen[node][words[0]] = (t, words[words.index("dst") + 1])
            elif "master" in words and "extern_learn" not in words and "permanent" not in words:
                self.learned[node][words[0]] = t  # the bridge learned it on a local port

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for t in self.threads:
            t.join(timeout=10)

    def arrived(self, node: str, macs: Iterable[str], since: float) -> float | None:
        """When the last of `macs` arrived at `node` (None if one was not seen after since)."""
        times = [self.seen[node].get(m, (0.0, ""))[0] for m in macs]
        return max(times) if times and min(times) >= since else None


def wait_all_remote(
    lab: runner.RunningLab,
    per_leaf: int,
    timeout: float,
    watch: FdbWatch | None = None,
    since: float = 0.0,
    interval: float = 0.5,
) -> dict[str, float]:
    """Seconds (from `since`, default: the call) until each leaf's kernel holds every other
    leaf's MACs at the right VTEP: checked by a dump (the truth), timed by `watch` if given.
    Raises with the leaves still short when `timeout` runs out."""
    t0 = since or time.monotonic()
    expected = {n: expected_remote(lab, n, per_leaf) for n in leaves(lab)}
    pending = {n: set(e) for n, e in expected.items()}
    done: dict[str, float] = {}
    while pending:
        for node in list(pending):
            have = remote_fdb(lab, node)
            missing = {m for m in pending[node] if have.get(m) != vtep_of(lab, _owner(lab, m))}
            if not missing:
                when = watch.arrived(node, expected[node], t0) if watch else None
                done[node] = (when or time.monotonic()) - t0
                del pending[node]
            else:
                pending[node] = missing
        if pending and time.monotonic() - t0 > timeout:
            short = ", ".join(f"{n}: {len(m)} missing" for n, m in sorted(pending.items()))
            raise runner.LabError(f"after {timeout:.0f}s not every leaf holds every MAC: {short}")
        if pending:
            time.sleep(interval)
    return done


def _owner(lab: runner.RunningLab, mac: str) -> str:
    return f"leaf{int(mac.split(':')[1], 16):02d}"


def fdb_get(lab: runner.RunningLab, node: str, mac: str) -> str | None:
    """The VTEP a leaf forwards `mac` to (one netlink get, not a dump), or None."""
    dev = runner.vxlan_devices(lab.ns(node)).get(VNI)
    if dev is None:
        return None
    out = lab.ns(node).run(["bridge", "fdb", "get", mac, "dev", dev, "self"], check=False)
    words = out.split()
    return words[words.index("dst") + 1] if "dst" in words else None


def wait_mac_at(
    lab: runner.RunningLab,
    mac: str,
    vtep: str,
    nodes: Iterable[str],
    timeout: float,
    watch: FdbWatch | None = None,
    since: float = 0.0,
) -> dict[str, float]:
    """Seconds (from `since`, default: the call) until each of `nodes` forwards `mac` to
    `vtep` (timed by `watch` if given)."""
    t0 = since or time.monotonic()
    pending = set(nodes)
    done: dict[str, float] = {}
    while pending:
        for node in sorted(pending):
            if fdb_get(lab, node, mac) == vtep:
                seen = watch.seen[node].get(mac) if watch else None
                ok = seen is not None and seen[1] == vtep and seen[0] >= t0
                done[node] = (seen[0] if ok else time.monotonic()) - t0  # type: ignore[index]
                pending.discard(node)
        if pending and time.monotonic() - t0 > timeout:
            raise runner.LabError(f"{mac} not at {vtep} after {timeout:.0f}s on {sorted(pending)}")
        if pending:
            time.sleep(0.05)
    return done


@dataclass
class Rss:
    """Peak resident memory (VmHWM) of an evpnd leaf: evpnd itself and its children (ExaBGP
    with its API relay), in MiB."""

    evpnd: float
    children: float

    @property
    def total(self) -> float:
        return self.evpnd + self.children


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def peak_rss(pid: int) -> Rss:
    kids = descendants(pid)
    return Rss(_status_kib(pid, "VmHWM") / 1024, sum(_status_kib(p, "VmHWM") for p in kids) / 1024)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants that are still running."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for p in [pid, *descendants(pid)]:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


# -- the scenario the test (shortened) and benchmarks/fabric.py (full size) run -------------


@dataclass
class Results:
    per_leaf: int
    leaves: int
    inject_s: float = 0.0  # adding the MACs to every leaf's bridge (all leaves, one by one)
    all_macs_s: float = 0.0  # first injection -> every leaf holds every other leaf's MACs
    all_macs_by_leaf: dict[str, float] | None = None
    move_s: float = 0.0  # MAC moved -> the last leaf forwards it to its new VTEP
    move_by_leaf: dict[str, float] | None = None
    rr_killed: str = ""
    rr_fdb_deletions: dict[str, int] | None = None  # injected MACs deleted per leaf after the kill
    rr_missing: dict[str, int] | None = None  # MACs missing per leaf after the hold time
    rr_pings: dict[str, tuple[int, int]] | None = None  # "h01->h17": (sent, received)
    rr_down_on: int = 0  # evpnd leaves whose session to the killed reflector went down
    rss: dict[str, Rss] | None = None  # evpnd leaves
    cpu_s: dict[str, float] | None = None  # evpnd leaves, CPU of evpnd + ExaBGP + relay
    notes: list[str] | None = None


Progress = runner.Progress


def _ping_loop(lab: runner.RunningLab, src: str, dst_addr: str, seconds: int):
    return subprocess.Popen(
        lab.ns(src).cmd("ping", "-n", "-q", "-i", "0.2", "-w", str(seconds), dst_addr),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _ping_counts(out: str) -> tuple[int, int]:
    for line in out.splitlines():
        if "packets transmitted" in line:
            words = line.replace(",", "").split()
            return int(words[0]), int(words[words.index("received") - 1])
    return 0, 0


def run_scenario(
    lab: runner.RunningLab,
    per_leaf: int,
    progress: Progress,
    converge_timeout: float = 300.0,
    hold_time: float = 9.0,
) -> Results:
    """Up to here the lab is converged (sessions, flood lists). Then: MACs behind every leaf
    until every leaf holds all of them; one MAC moved; one route reflector killed."""
    names = leaves(lab)
    res = Results(per_leaf, len(names), notes=[])
    for n in names:
        wait_bridge_port(lab, n)
    # hosts first answer pings: their MACs are then known everywhere (not counted below)
    for n in range(2, len(names) + 1):
        lab.ns("h01").ping(f"10.10.0.{n}", count=1, timeout=1.0)
    watch = FdbWatch(lab, names)
    try:
        _scenario(lab, res, names, watch, per_leaf, progress, converge_timeout, hold_time)
    finally:
        watch.stop()
    res.rss, res.cpu_s = {}, {}
    for n in (node.name for node in lab.topo.by_role("evpnd")):
        pid = lab.pid(n, "evpnd")
        if pid is not None:
            res.rss[n] = peak_rss(pid)
            res.cpu_s[n] = cpu_seconds(pid)
    return res


def _scenario(lab, res, names, watch, per_leaf, progress, converge_timeout, hold_time) -> None:
    t0 = time.monotonic()
    for n in names:
        inject_macs(lab, n, per_leaf)
    res.inject_s = time.monotonic() - t0
    progress(f"{per_leaf} MACs behind each of {len(names)} leaves added in {res.inject_s:.1f}s")
    res.all_macs_by_leaf = wait_all_remote(lab, per_leaf, converge_timeout, watch, since=t0)
    res.all_macs_s = max(res.all_macs_by_leaf.values())
    remote = per_leaf * (len(names) - 1)
    progress(f"every leaf holds all {remote} remote MACs {res.all_macs_s:.1f}s after the first"
             " was added")  # fmt: skip

    # a MAC move: leaf01's first MAC appears behind the last evpnd leaf
    evpnd_leaves = [n.name for n in lab.topo.by_role("evpnd")]
    src, dst = names[0], sorted(evpnd_leaves)[-1]
    mac = fake_mac(leaf_number(src), 0)
    t1 = time.monotonic()
    move_mac(lab, mac, f"h{leaf_number(dst):02d}")
    # from the moment the new leaf's bridge learned the MAC from the RARP frame
    wait_until = time.monotonic() + 10
    while mac not in watch.learned[dst] and time.monotonic() < wait_until:
        time.sleep(0.05)
    start = watch.learned[dst].get(mac, t1)
    others = [n for n in names if n != dst]
    moved = wait_mac_at(lab, mac, vtep_of(lab, dst), others, 60, watch, since=start)
    res.move_by_leaf = moved
    res.move_s = max(moved.values())
    progress(
        f"MAC {mac} moved {src} -> {dst}: every leaf forwards to the new VTEP {res.move_s:.2f}s"
        f" after {dst}'s bridge learned it (max over {len(others)} leaves; learned "
        f"{'%.2fs after the RARP was sent' % (start - t1) if start != t1 else 'unseen'})"
    )
    # the moved MAC stays moved: the expectation below accounts for it
    # route reflector killed (SIGKILL of bgpd and zebra: a crashed box, not a clean shutdown)
    rr = "rr1"
    res.rr_killed = rr
    frr_leaf = sorted(n.name for n in lab.topo.by_role("frr") if n.name.startswith("leaf"))[0]
    pairs = [("h01", f"10.10.0.{leaf_number(frr_leaf)}"), ("h02", "10.10.0.3")]
    window = int(hold_time * 2 + 3)
    pings = {f"{s}->{a}": _ping_loop(lab, s, a, window) for s, a in pairs}
    time.sleep(1.0)
    t_kill = time.monotonic()
    killed = kill_node_daemons(lab, rr)
    progress(f"{rr} killed ({killed}); watching {window}s (hold time {hold_time:.0f}s)")
    deadline = time.monotonic() + window
    missing: dict[str, int] = {}
    while time.monotonic() < deadline - 1:
        time.sleep(1.0)
    for n in names:
        want = expected_remote(lab, n, per_leaf)
        want.discard(mac)
        have = remote_fdb(lab, n)
        missing[n] = sum(1 for m in want if m not in have)
    res.rr_missing = missing
    rr_addr = f"10.0.0.{int(rr.removeprefix('rr'))}"
    res.rr_down_on = sum(
        1 for peers in runner.evpnd_sessions(lab).values() if peers.get(rr_addr) != "up"
    )
    res.rr_pings = {
        k: _ping_counts(p.communicate(timeout=window + 10)[0]) for k, p in pings.items()
    }
    res.rr_fdb_deletions = {
        n: sum(1 for t, m in watch.deleted[n] if t >= t_kill and is_fake_mac(m)) for n in names
    }
    progress(f"after {rr} died (its sessions down on {res.rr_down_on} evpnd leaves): MACs missing"
             f" per leaf max {max(missing.values())}, FDB deletions "
             f"max {max(res.rr_fdb_deletions.values())}, pings {res.rr_pings}")  # fmt: skip


def kill_node_daemons(lab: runner.RunningLab, node: str) -> str:
    """SIGKILL the node's routing daemons (netns runtime: by the recorded PIDs; docker: the
    container is killed)."""
    if lab.state.runtime == "docker":
        from evpnd.lab import containers

        containers.docker("kill", lab.state.containers[node])
        return f"docker kill {lab.state.containers[node]}"
    out = []
    for daemon in ("bgpd", "zebra"):
        pid = lab.pid(node, daemon)
        if pid is not None:
            os.kill(pid, 9)
            out.append(f"{daemon} {pid}")
    return "SIGKILL " + ", ".join(out)
