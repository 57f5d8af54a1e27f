"""A Debian 12 root booted with systemd-nspawn, systemd as its PID 1, entered with nsenter.

The cached root (scripts/systemd-root.sh) is never written: each guest runs on an overlay whose
upper layer lives in a temporary directory, removed with the guest. The guest has its own
network namespace (--private-network), so nothing it creates is visible on the host.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class GuestError(AssertionError):
    pass


def need(tool: str, package: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        # never a skip: the tier exists to run these
        raise GuestError(f"{tool} missing: apt-get install {package} (scripts/systemd-tier.sh)")
    return exe


class Guest:
    def __init__(self, root: str) -> None:
        need("systemd-nspawn", "systemd-container")
        need("nsenter", "util-linux")
        self.lower = root
        self.tmp = Path(tempfile.mkdtemp(prefix="evpnd-systemd-"))
        self.merged = self.tmp / "merged"
        self.name = f"evpnd-sd-{os.getpid()}"
        self.console = self.tmp / "console.log"
        self.nspawn: subprocess.Popen | None = None
        self.leader = 0
        self._mounts: list[Path] = []  # unmounted in reverse order

    # -- life cycle ------------------------------------------------------------------------
    def boot(self, timeout: float = 90) -> None:
        # The writable layer on its own tmpfs: overlayfs refuses an upper directory on another
        # overlayfs, which is what /tmp is when this runs in a throw-away copy of a root.
        rw = self.tmp / "rw"
        rw.mkdir()
        self.merged.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "evpnd-guest", str(rw)],
                       check=True, capture_output=True, text=True)  # fmt: skip
        self._mounts.append(rw)
        (rw / "upper").mkdir()
        (rw / "work").mkdir()
        opts = f"lowerdir={self.lower},upperdir={rw}/upper,workdir={rw}/work"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(self.merged)],
                       check=True, capture_output=True, text=True)  # fmt: skip
        self._mounts.append(self.merged)
        with open(self.console, "wb") as console:
            self.nspawn = subprocess.Popen(
                [
                    "systemd-nspawn", "-D", str(self.merged), "--boot", "--register=no",
                    "--keep-unit", "--private-network", f"--machine={self.name}",
                    "--console=pipe",
                ],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.leader:
            if self.nspawn.poll() is not None:
                raise GuestError(f"systemd-nspawn exited {self.nspawn.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise GuestError(f"no PID 1 in the container:\n{self.log()}")
            self.leader = self._child_systemd()
            time.sleep(0.1)
        # systemctl needs PID 1's private bus socket, which systemd makes early in its boot
        private = Path(f"/proc/{self.leader}/root/run/systemd/private")
        while not private.exists():
            if time.monotonic() > deadline:
                raise GuestError(f"systemd in the container made no bus:\n{self.log()}")
            time.sleep(0.1)
        left = max(5.0, deadline - time.monotonic())
        state = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=left)
        if state.stdout.strip() not in ("running", "degraded"):
            raise GuestError(f"guest did not boot: {state.stdout}{state.stderr}\n{self.log()}")

    def _child_systemd(self) -> int:
        assert self.nspawn is not None
        try:
            children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children").read_text()
        except OSError:
            return 0
        for pid in children.split():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
            except OSError:
                continue
        return 0

    def shutdown(self) -> None:
        """Power the guest off (SIGTERM to nspawn asks its systemd to halt), then tidy up."""
        try:
            if self.nspawn is not None and self.nspawn.poll() is None:
                self.nspawn.send_signal(signal.SIGTERM)
                try:
                    self.nspawn.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.nspawn.kill()
                    self.nspawn.wait(timeout=10)
            if self.leader:
                try:
                    os.kill(self.leader, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            for mount in reversed(self._mounts):
                r = subprocess.run(["umount", str(mount)], capture_output=True)
                if r.returncode != 0:
                    subprocess.run(["umount", "-l", str(mount)], capture_output=True)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.console.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- inside ----------------------------------------------------------------------------
    def command(self, argv: list[str]) -> list[str]:
        env = ["env", "-i", f"PATH={GUEST_PATH}", "LANG=C.UTF-8", "SYSTEMD_PAGER="]
        # -r -w: the guest's root and working directory too. Entering the mount namespace alone
        # leaves the process in the caller's root where that root is a chroot (as in a
        # pristine-root run), and systemctl there finds no systemd ("offline").
        return ["nsenter", "-t", str(self.leader), "-a", "-r", "-w", "--", *env, *argv]

    def run(
        self, argv: list[str], check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(argv), capture_output=True, text=True,
                              timeout=timeout, input=input)  # fmt: skip
        if check and proc.returncode != 0:
            raise GuestError(f"{argv} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        return proc

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> str:
        return self.run(["sh", "-ec", script], check=check, timeout=timeout).stdout

    def popen(self, argv: list[str], out) -> subprocess.Popen:
        return subprocess.Popen(self.command(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip

    def write(self, path: str, text: str) -> None:
        """A file in the guest, written through its own filesystem view."""
        self.run(["sh", "-c", f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'"], input=text)

    def copy_in(self, src: str | Path, dest: str) -> None:
        """Host file or directory into the guest (through the overlay, as root)."""
        target = self.merged / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)
