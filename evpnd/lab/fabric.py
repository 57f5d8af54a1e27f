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


def move_mac(lab: runner.RunningLab, mac: str, src: str, dst: str, port: str = "eth2") -> None:
    """The host with `mac` moves from behind `src` to behind `dst` (as a VM migration would)."""
    _bridge(lab.ns(src), ["fdb", "del", mac, "dev", port, "master"])
    _bridge(lab.ns(dst), ["fdb", "replace", mac, "dev", port, "master", "dynamic"])


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


def wait_all_remote(
    lab: runner.RunningLab,
    per_leaf: int,
    timeout: float,
    nodes: Iterable[str] | None = None,
    interval: float = 0.5,
) -> dict[str, float]:
    """Seconds (from the call) until each leaf's kernel holds every other leaf's MACs, at the
    right VTEP. Raises with the leaves still short when `timeout` runs out."""
    t0 = time.monotonic()
    pending = {n: expected_remote(lab, n, per_leaf) for n in (nodes or leaves(lab))}
    done: dict[str, float] = {}
    while pending:
        for node in list(pending):
            have = remote_fdb(lab, node)
            missing = {m for m in pending[node] if have.get(m) != vtep_of(lab, _owner(lab, m))}
            if not missing:
                done[node] = time.monotonic() - t0
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


def wait_mac_at(
    lab: runner.RunningLab, mac: str, vtep: str, nodes: Iterable[str], timeout: float
) -> dict[str, float]:
    """Seconds until each of `nodes` forwards `mac` to `vtep`."""
    t0 = time.monotonic()
    pending = set(nodes)
    done: dict[str, float] = {}
    while pending:
        for node in sorted(pending):
            if remote_fdb(lab, node).get(mac) == vtep:
                done[node] = time.monotonic() - t0
                pending.discard(node)
        if pending and time.monotonic() - t0 > timeout:
            raise runner.LabError(f"{mac} not at {vtep} after {timeout:.0f}s on {sorted(pending)}")
        if pending:
            time.sleep(0.1)
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
