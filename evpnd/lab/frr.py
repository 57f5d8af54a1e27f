"""FRR 8.4 (zebra + bgpd) in a network namespace, with private paths (see docs in README).

Each instance keeps its config, sockets, pid files and logs in its own directory owned by
user frr, so nothing under /etc/frr or /var/run/frr is used and instances never collide.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from evpnd.lab.netns import Netns, stop_process, wait_for

FRR_BIN = Path("/usr/lib/frr")


@dataclass
class Frr:
    ns: Netns
    bgpd_conf: str
    zebra_conf: str = "hostname zebra\n"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evpnd-frr-")))
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, timeout: float = 20.0) -> Frr:
        d = self.workdir
        (d / "zebra.conf").write_text(self.zebra_conf)
        (d / "bgpd.conf").write_text(self.bgpd_conf)
        (d / "vtysh.conf").write_text("")
        frr = pwd.getpwnam("frr")
        for p in [d, *d.iterdir()]:
            os.chown(p, frr.pw_uid, frr.pw_gid)
        d.chmod(0o755)
        common = ["--vty_socket", str(d), "-P", "0", "-u", "frr", "-g", "frr"]
        zebra = [str(FRR_BIN / "zebra"), "-f", str(d / "zebra.conf"), "-i", str(d / "zebra.pid")]
        zebra += ["-z", str(d / "zserv.api"), *common, "-s", "90000000"]
        zebra += ["--log", f"file:{d}/zebra.log"]
        self.procs.append(self._spawn(zebra))
        wait_for(lambda: (d / "zserv.api").exists(), timeout, what="zebra's zserv.api")
        bgpd = [str(FRR_BIN / "bgpd"), "-f", str(d / "bgpd.conf"), "-i", str(d / "bgpd.pid")]
        bgpd += ["-z", str(d / "zserv.api"), *common, "--log", f"file:{d}/bgpd.log"]
        self.procs.append(self._spawn(bgpd))
        wait_for(lambda: (d / "bgpd.vty").exists(), timeout, what="bgpd's vty socket")
        return self

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        return self.ns.popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def vtysh(self, *commands: str) -> str:
        args = ["vtysh", "--vty_socket", str(self.workdir)]
        for c in commands:
            args += ["-c", c]
        proc = subprocess.run(self.ns.cmd(*args), capture_output=True, text=True, timeout=30)
        return proc.stdout

    def json(self, command: str) -> dict:
        out = self.vtysh(command)
        try:
            return json.loads(out) if out.strip() else {}
        except json.JSONDecodeError:
            return {}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self, daemon: str = "bgpd") -> str:
        try:
            return (self.workdir / f"{daemon}.log").read_text()
        except OSError:
            return ""


def evpn_leaf_conf(
    asn: int,
    router_id: str,
    neighbors: list[tuple[str, int]],
    advertise_all_vni: bool = True,
    rr_clients: bool = False,
    extra_af: str = "",
    extra: str = "",
) -> str:
    """bgpd.conf for an EVPN leaf (or route reflector with rr_clients=True)."""
    lines = [
        f"router bgp {asn}",
        f" bgp router-id {router_id}",
        " no bgp default ipv4-unicast",
        " no bgp ebgp-requires-policy",
        " timers bgp 3 9",
    ]
    for addr, remote_as in neighbors:
        lines.append(f" neighbor {addr} remote-as {remote_as}")
        lines.append(f" neighbor {addr} timers connect 2")
    lines.append(extra.rstrip()) if extra else None
    lines.append(" address-family l2vpn evpn")
    for addr, _ in neighbors:
        lines.append(f"  neighbor {addr} activate")
        if rr_clients:
            lines.append(f"  neighbor {addr} route-reflector-client")
    if advertise_all_vni:
        lines.append("  advertise-all-vni")
    if extra_af:
        lines.append(extra_af.rstrip())
    lines.append(" exit-address-family")
    return "\n".join(lines) + "\n"


# Top-level commands of an integrated frr.conf that belong to bgpd; shared objects (route-maps,
# prefix lists, hostname, logging) go to both daemons, everything else to zebra.
_BGPD_ONLY = ("router bgp", "bgp ", "ip community-list", "ip extcommunity-list", "ip as-path")
_SHARED = (
    "frr ",
    "hostname",
    "log ",
    "service ",
    "password",
    "route-map",
    "ip prefix-list",
    "ipv6 prefix-list",
    "debug ",
    "agentx",
)


def split_frr_conf(text: str) -> tuple[str, str]:
    """Split an integrated frr.conf into (zebra.conf, bgpd.conf) for the per-daemon `-f` files.

    Blocks start at column 0 and run until the next unindented line; `!` lines are comments.
    """
    zebra: list[str] = []
    bgpd: list[str] = []
    target: list[list[str]] = [zebra]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("!"):
            continue
        if not line[0].isspace() and line.strip() not in ("exit", "end"):
            head = line.strip()
            if head.startswith(_BGPD_ONLY):
                target = [bgpd]
            elif head.startswith(_SHARED):
                target = [zebra, bgpd]
            else:
                target = [zebra]
        for out in target:
            out.append(line)
    return "\n".join(zebra) + "\n", "\n".join(bgpd) + "\n"
