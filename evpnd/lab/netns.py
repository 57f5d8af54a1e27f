"""Network namespaces and veth links for labs and tests, driven with iproute2.

Everything created is recorded so that `cleanup()` removes it, also after a failure.
Names carry a per-run suffix so parallel or leftover runs never collide.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field


def run(cmd: Sequence[str] | str, check: bool = True, timeout: float = 30) -> str:
    """Run a command (list, or a string split on spaces) and return stdout."""
    args = cmd.split() if isinstance(cmd, str) else list(cmd)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def unique_suffix() -> str:
    return uuid.uuid4().hex[:6]


@dataclass
class Netns:
    name: str

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, cmd: Sequence[str] | str, check: bool = True, timeout: float = 30) -> str:
        args = cmd.split() if isinstance(cmd, str) else list(cmd)
        return run(self.cmd(*args), check=check, timeout=timeout)

    def ip(self, *args: str, check: bool = True) -> str:
        return run(["ip", "-n", self.name, *args], check=check)

    def popen(self, args: Sequence[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(*args), **kw)

    def ping(self, addr: str, count: int = 1, timeout: float = 1.0) -> bool:
        proc = subprocess.run(
            self.cmd("ping", "-c", str(count), "-W", str(timeout), "-i", "0.2", addr),
            capture_output=True,
            timeout=count * (timeout + 1) + 5,
        )
        return proc.returncode == 0


@dataclass
class Lab:
    """A set of namespaces and the processes started in them; `cleanup()` undoes it all."""

    prefix: str = "evt"
    suffix: str = field(default_factory=unique_suffix)
    namespaces: list[Netns] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    cleanups: list = field(default_factory=list)

    def netns(self, role: str) -> Netns:
        name = f"{self.prefix}-{role}-{self.suffix}"
        try:
            run(["ip", "netns", "add", name])
        except subprocess.TimeoutExpired:
            # on a loaded machine `ip netns add` can outlast the timeout and still make the
            # namespace after it: remove it, or it outlives the lab
            run(["ip", "netns", "del", name], check=False, timeout=120)
            raise
        ns = Netns(name)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def link(
        self,
        a: Netns,
        a_if: str,
        b: Netns,
        b_if: str,
        a_addr: str | None = None,
        b_addr: str | None = None,
        mtu: int | None = None,
    ) -> None:
        """A veth pair between two namespaces, both ends up, optional addresses (with /len)."""
        tmp_a, tmp_b = f"v{uuid.uuid4().hex[:10]}", f"v{uuid.uuid4().hex[:10]}"
        run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        run(["ip", "link", "set", tmp_a, "netns", a.name, "name", a_if])
        run(["ip", "link", "set", tmp_b, "netns", b.name, "name", b_if])
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if mtu:
                ns.ip("link", "set", ifname, "mtu", str(mtu))
            if addr:
                ns.ip("addr", "add", addr, "dev", ifname)
            ns.ip("link", "set", ifname, "up")

    def start(self, ns: Netns, args: Sequence[str], **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = ns.popen(args, start_new_session=True, **kw)
        self.processes.append(proc)
        return proc

    def on_cleanup(self, fn) -> None:
        self.cleanups.append(fn)

    def cleanup(self) -> None:
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup must go on whatever failed
                pass
        for proc in self.processes:
            stop_process(proc)
        for ns in self.namespaces:
            kill_namespace_pids(ns.name)
            run(["ip", "netns", "del", ns.name], check=False)
        self.processes.clear()
        self.namespaces.clear()
        self.cleanups.clear()


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL; only the process we started (by PID)."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def kill_namespace_pids(name: str) -> None:
    """Processes still inside a namespace we created (daemons that forked) are ours to end."""
    out = run(["ip", "netns", "pids", name], check=False)
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    if out.strip():
        time.sleep(0.1)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
