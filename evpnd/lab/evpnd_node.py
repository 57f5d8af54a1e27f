"""An evpnd daemon in a network namespace, for tests and labs: config in, API client out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from evpnd.lab.netns import Netns, stop_process, wait_for


def evpnd_command() -> list[str]:
    """The venv's evpnd console script (same interpreter as the caller)."""
    script = Path(sys.executable).with_name("evpnd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "evpnd.cli.daemon_main"]


def api_request(sock_path: str | Path, cmd: str, timeout: float = 10.0, **args) -> dict:
    """One request on the control socket: a JSON line out, a JSON line back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


@dataclass
class EvpndNode:
    ns: Netns
    config: dict
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evpnd-node-")))
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        self.config = dict(self.config)
        self.config.setdefault("runtime_dir", str(self.workdir / "run"))
        api = dict(self.config.get("api") or {})
        api.setdefault("socket", str(self.workdir / "evpnd.sock"))
        self.config["api"] = api
        self.config_path = self.workdir / "evpnd.yaml"
        self.write_config()

    @property
    def socket(self) -> Path:
        return Path(self.config["api"]["socket"])

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def start(self, wait: bool = True, timeout: float = 30.0) -> EvpndNode:
        self.log_path = self.workdir / "evpnd.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = self.ns.popen(
            [*evpnd_command(), "-c", str(self.config_path), "--log-level", "debug"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"evpnd exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            if not self.socket.exists():
                return False
            try:
                return bool(self.request("show peers").get("ok"))
            except OSError:
                return False

        wait_for(ready, timeout, interval=0.2, what=f"evpnd API at {self.socket}")

    def request(self, cmd: str, **args) -> dict:
        return api_request(self.socket, cmd, **args)

    def data(self, cmd: str, **args):
        reply = self.request(cmd, **args)
        if not reply.get("ok"):
            raise RuntimeError(f"{cmd}: {reply.get('error')}")
        return reply["data"]

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        exe = Path(sys.executable).with_name("evpnctl")
        proc = subprocess.run(
            [str(exe), "-s", str(self.socket), *args], capture_output=True, text=True, timeout=30
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"evpnctl {' '.join(args)}: {proc.stderr}")
        return proc

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=10)

    def reload(self) -> None:
        assert self.proc is not None
        self.write_config()
        os.kill(self.proc.pid, signal.SIGHUP)

    def log(self) -> str:
        try:
            return self.log_path.read_text() if self.log_path else ""
        except OSError:
            return ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
