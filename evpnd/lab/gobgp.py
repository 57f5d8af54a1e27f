"""GoBGP 3.x (gobgpd + the gobgp CLI) in a network namespace, with a private config file.

The gRPC API listens on 127.0.0.1 of the namespace only, so instances in different namespaces
never collide and nothing outside the lab can reach them. pprof is disabled for the same reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from evpnd.lab.netns import Netns, stop_process, wait_for

API_PORT = 50051
ESTABLISHED = 6  # apipb.PeerState.SessionState


@dataclass
class GoBgpNeighbor:
    address: str
    remote_as: int
    rr_client: bool = False


def gobgp_conf(
    asn: int,
    router_id: str,
    neighbors: list[GoBgpNeighbor],
    cluster_id: str | None = None,
    hold_time: int = 9,
    accept_routes: bool = True,
) -> str:
    """gobgpd TOML: one global instance, every neighbour with l2vpn-evpn only, short timers.

    accept_routes=False: a speaker that only announces (its global import policy rejects every
    received route), so nothing it hears, e.g. a higher MAC Mobility sequence, makes it
    withdraw what it announces.
    """
    lines = [
        "[global.config]",
        f"  as = {asn}",
        f'  router-id = "{router_id}"',
        "",
    ]
    if not accept_routes:
        # An import policy rejecting what the neighbours send: a default-reject policy would
        # reject the routes added through the CLI too (the global policy sees those as well).
        peers = ", ".join(f'"{n.address}"' for n in neighbors)
        lines += [
            "[[defined-sets.neighbor-sets]]",
            '  neighbor-set-name = "neighbours"',
            f"  neighbor-info-list = [{peers}]",
            "",
            "[[policy-definitions]]",
            '  name = "hear-nothing"',
            "  [[policy-definitions.statements]]",
            '    name = "from-neighbours"',
            "    [policy-definitions.statements.conditions.match-neighbor-set]",
            '      neighbor-set = "neighbours"',
            "    [policy-definitions.statements.actions]",
            '      route-disposition = "reject-route"',
            "",
            "[global.apply-policy.config]",
            '  import-policy-list = ["hear-nothing"]',
            '  default-import-policy = "accept-route"',
            "",
        ]
    for n in neighbors:
        lines += [
            "[[neighbors]]",
            "  [neighbors.config]",
            f'    neighbor-address = "{n.address}"',
            f"    peer-as = {n.remote_as}",
            "  [neighbors.timers.config]",
            "    connect-retry = 2",
            f"    hold-time = {hold_time}",
            f"    keepalive-interval = {max(1, hold_time // 3)}",
            "  [[neighbors.afi-safis]]",
            "    [neighbors.afi-safis.config]",
            '      afi-safi-name = "l2vpn-evpn"',
        ]
        if n.rr_client:
            lines += [
                "  [neighbors.route-reflector.config]",
                "    route-reflector-client = true",
                f'    route-reflector-cluster-id = "{cluster_id or router_id}"',
            ]
        lines.append("")
    return "\n".join(lines) + "\n"


@dataclass
class GoBgp:
    ns: Netns
    conf: str
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evpnd-gobgp-")))
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "gobgpd.log"

    def start(self, timeout: float = 20.0) -> GoBgp:
        conf = self.workdir / "gobgpd.toml"
        conf.write_text(self.conf)
        args = ["gobgpd", "-f", str(conf), "-t", "toml", "-p", "-l", "debug"]
        args += [f"--api-hosts=127.0.0.1:{API_PORT}", "--pprof-disable"]
        with open(self.log_path, "ab") as log:
            self.proc = self.ns.popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gobgpd exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            return self.cli("global", check=False).returncode == 0

        wait_for(ready, timeout, interval=0.2, what="gobgpd's API")
        return self

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The gobgp CLI against this instance's API (127.0.0.1 inside the namespace)."""
        cmd = self.ns.cmd("gobgp", "-u", "127.0.0.1", "-p", str(API_PORT), *args)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise RuntimeError(f"gobgp {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def json(self, *args: str):
        out = self.cli(*args, "-j").stdout
        return json.loads(out) if out.strip() else None

    def evpn_rib(self) -> list[dict]:
        """Every path of the global EVPN RIB, flattened (GoBGP groups paths by prefix)."""
        table = self.json("global", "rib", "-a", "evpn") or {}
        return [p for paths in table.values() for p in paths]

    def established(self, address: str) -> bool:
        """The session with `address` is up (gRPC SessionState 6 = ESTABLISHED)."""
        data = self.json("neighbor", address) or {}
        return data.get("state", {}).get("session_state") == ESTABLISHED

    def add_evpn(self, *words: str) -> None:
        self.cli("global", "rib", "-a", "evpn", "add", *words)

    def del_evpn(self, *words: str) -> None:
        self.cli("global", "rib", "-a", "evpn", "del", *words)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""
