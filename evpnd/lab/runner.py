"""Run a containerlab topology in network namespaces, without Docker.

One namespace per node (`clab-<lab>-<node>`, like containerlab's container names), one veth
pair per link (the link's MTU, else containerlab's 9500), then each node's `exec` lines inside
its namespace, then the node's daemons: FRR (zebra + bgpd from the bound frr.conf, private
paths) or evpnd (`evpnd -c` a copy of the bound evpnd.yaml whose runtime_dir and API socket
point at /run/evpnd-lab/<lab>/<node>/, so instances never collide).

Everything created is recorded in /run/evpnd-lab/<lab>/state.json *before* it is created, so
`down` works from another process and after a failure half-way through `up`. Processes are
ended by PID (checked against their start time, so a recycled PID is never signalled), then
anything still inside the lab's namespaces, then the namespaces and the state directory.

Exec lines run without a shell (split like a shell would); a line that needs one says
`sh -c '...'`. Lines that only make sense in a container (package managers, init systems,
starting the daemons that the runner starts itself) are skipped and shown as skipped.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from evpnd.lab.frr import Frr, split_frr_conf
from evpnd.lab.netns import Netns, run
from evpnd.lab.topology import (
    EVPND_CONF_TARGET,
    FRR_CONF_TARGET,
    FRR_DAEMONS_TARGET,
    Node,
    Topology,
    load_topology,
)

STATE_ROOT = Path("/run/evpnd-lab")
CONTAINER_ONLY = {
    "apk", "apt", "apt-get", "dnf", "yum", "pip", "pip3", "systemctl", "service",
    "supervisorctl", "frrinit.sh", "watchfrr", "evpnd", "docker-start", "update-ca-certificates",
}  # fmt: skip
STOP_ORDER = {"evpnd": 0, "bgpd": 1, "zebra": 2}

Progress = Callable[[str], None]


class LabError(Exception):
    """`up` could not finish; the message says which node and step."""


def bin_path(name: str) -> list[str]:
    """The console script next to this interpreter (the venv's), else `python -m`."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return [str(candidate)]
    module = {"evpnd": "evpnd.cli.daemon_main", "evpnctl": "evpnd.cli.evpnctl"}[name]
    return [sys.executable, "-m", module]


def _proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


@dataclass
class ProcRecord:
    node: str
    daemon: str  # zebra, bgpd, evpnd
    pid: int
    starttime: int | None
    log: str

    def alive(self) -> bool:
        return self.starttime is not None and _proc_starttime(self.pid) == self.starttime


@dataclass
class LabState:
    name: str
    topology: str
    namespaces: dict[str, str] = field(default_factory=dict)
    procs: list[ProcRecord] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    runtime: str = "netns"  # or "docker" (evpnd/lab/containers.py)
    containers: dict[str, str] = field(default_factory=dict)  # node -> container (docker)
    images: list[str] = field(default_factory=list)  # images `up` built, removed by `down`

    @staticmethod
    def path_for(name: str) -> Path:
        return STATE_ROOT / name / "state.json"

    def save(self) -> None:
        p = self.path_for(self.name)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "topology": self.topology,
            "namespaces": self.namespaces,
            "procs": [vars(r) for r in self.procs],
            "started": self.started,
            "runtime": self.runtime,
            "containers": self.containers,
            "images": self.images,
        }
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(p)

    @classmethod
    def load(cls, name: str) -> LabState:
        data = json.loads(cls.path_for(name).read_text())
        procs = [ProcRecord(**r) for r in data.get("procs", [])]
        return cls(data["name"], data["topology"], data["namespaces"], procs, data["started"],
                   data.get("runtime", "netns"), data.get("containers", {}),
                   data.get("images", []))  # fmt: skip


def _stop_pid(rec: ProcRecord, popen: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, only if the PID still is the process we started."""
    if popen is not None and popen.poll() is not None:
        return
    if not rec.alive():
        return
    try:
        os.kill(rec.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            return
        if not rec.alive():
            return
        time.sleep(0.05)
    try:
        os.kill(rec.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if popen is not None:
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


def derive_evpnd_config(src: Path, runtime_dir: Path, socket: Path) -> str:
    """The bound evpnd.yaml with runtime_dir and api.socket moved to the node's own directory
    (the rest unchanged), so several evpnd instances on one machine never collide."""
    data = yaml.safe_load(src.read_text()) or {}
    if not isinstance(data, dict):
        raise LabError(f"{src}: not a mapping of settings")
    data["runtime_dir"] = str(runtime_dir)
    data["api"] = {**(data.get("api") or {}), "socket": str(socket)}
    header = f"# derived by evpnd.lab from {src}: runtime paths made per node\n"
    return header + yaml.safe_dump(data, sort_keys=False)


class RunningLab:
    """A lab that is up: names of its namespaces, its daemons, and ways to talk to them."""

    def __init__(self, topo: Topology, state: LabState, progress: Progress | None = None):
        self.topo = topo
        self.state = state
        self.progress = progress or (lambda _msg: None)
        self._popens: dict[int, subprocess.Popen] = {}

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def dir(self) -> Path:
        return STATE_ROOT / self.name

    def ns(self, node: str) -> Netns:
        return Netns(self.state.namespaces[node])

    def node_dir(self, node: str) -> Path:
        return self.dir / node

    def frr(self, node: str) -> Frr:
        return Frr(self.ns(node), bgpd_conf="", workdir=self.node_dir(node) / "frr")

    def socket(self, node: str) -> Path:
        return self.node_dir(node) / "evpnd.sock"

    def evpnctl(self, node: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        cmd = [*bin_path("evpnctl"), "-s", str(self.socket(node)), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def log(self, node: str) -> str:
        """The node's daemon log(s), for failure messages."""
        out = []
        for rec in self.state.procs:
            if rec.node == node:
                try:
                    out.append(f"--- {rec.daemon} ({rec.log})\n" + Path(rec.log).read_text())
                except OSError:
                    pass
        return "\n".join(out)

    # -- daemons ------------------------------------------------------------------------
    def _record(self, node: str, daemon: str, popen: subprocess.Popen, log: Path) -> None:
        rec = ProcRecord(node, daemon, popen.pid, _proc_starttime(popen.pid), str(log))
        self.state.procs.append(rec)
        self._popens[popen.pid] = popen
        self.state.save()

    def start_daemons(self, node: str) -> None:
        n = self.topo.nodes[node]
        if n.role == "frr":
            self._start_frr(n)
        elif n.role == "evpnd":
            self._start_evpnd(n)

    def stop_daemons(self, node: str) -> None:
        recs = sorted(
            (r for r in self.state.procs if r.node == node), key=lambda r: STOP_ORDER[r.daemon]
        )
        for rec in recs:
            _stop_pid(rec, self._popens.pop(rec.pid, None))
            self.state.procs.remove(rec)
        self.state.save()

    def restart(self, node: str) -> None:
        self.stop_daemons(node)
        self.start_daemons(node)

    def pid(self, node: str, daemon: str) -> int | None:
        for rec in self.state.procs:
            if rec.node == node and rec.daemon == daemon and rec.alive():
                return rec.pid
        return None

    def _start_frr(self, node: Node) -> None:
        conf_path = node.bound(FRR_CONF_TARGET)
        assert conf_path is not None
        daemons = node.bound(FRR_DAEMONS_TARGET)
        if daemons is not None:
            enabled = {
                k.strip()
                for k, _, v in (ln.partition("=") for ln in daemons.read_text().splitlines())
                if v.strip() == "yes"
            }
            extra = sorted(enabled - {"bgpd", "zebra", "vtysh_enable"})
            if extra:
                self.progress(f"  {node.name}: daemons file enables {extra}: not started here")
        zebra_conf, bgpd_conf = split_frr_conf(conf_path.read_text())
        workdir = self.node_dir(node.name) / "frr"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        for d in (STATE_ROOT, self.dir, self.node_dir(node.name)):
            d.chmod(0o755)  # FRR drops to user frr: it must reach its directory whatever the umask
        frr = Frr(self.ns(node.name), bgpd_conf=bgpd_conf, zebra_conf=zebra_conf, workdir=workdir)
        try:
            frr.start()
        finally:  # record whatever started, so that `down` ends it even if start failed
            for daemon, popen in zip(("zebra", "bgpd"), frr.procs, strict=False):
                self._record(node.name, daemon, popen, workdir / f"{daemon}.log")

    def _start_evpnd(self, node: Node) -> None:
        src = node.bound(EVPND_CONF_TARGET)
        assert src is not None
        ndir = self.node_dir(node.name)
        ndir.mkdir(parents=True, exist_ok=True)
        derived = ndir / "evpnd.yaml"
        derived.write_text(derive_evpnd_config(src, ndir, self.socket(node.name)))
        self.socket(node.name).unlink(missing_ok=True)
        log = ndir / "evpnd.log"
        with log.open("ab") as out:
            popen = self.ns(node.name).popen(
                [*bin_path("evpnd"), "-c", str(derived)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._record(node.name, "evpnd", popen, log)

    def wait_evpnd_ready(self, node: str, timeout: float = 20.0) -> bool:
        """The API socket answers (the daemon is up); False if it died or never answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid(node, "evpnd") is None:
                return False
            if self.socket(node).exists():
                return True
            time.sleep(0.1)
        return False


# -- up / down ------------------------------------------------------------------------------
def default_progress() -> Progress:
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - t0:5.1f}s] {msg}", flush=True)

    return progress


def namespace_name(lab: str, node: str) -> str:
    return f"clab-{lab}-{node}"


def _veth(a: Netns, a_if: str, b: Netns, b_if: str, mtu: int) -> None:
    tmp_a, tmp_b = f"v{os.urandom(5).hex()}", f"v{os.urandom(5).hex()}"
    run(["ip", "link", "add", tmp_a, "mtu", str(mtu), "type", "veth", "peer", "name", tmp_b,
         "mtu", str(mtu)])  # fmt: skip
    run(["ip", "link", "set", tmp_a, "netns", a.name, "name", a_if])
    run(["ip", "link", "set", tmp_b, "netns", b.name, "name", b_if])
    a.ip("link", "set", a_if, "up")
    b.ip("link", "set", b_if, "up")


def exec_line(ns: Netns, line: str) -> str | None:
    """Run one exec line in the namespace; returns a note if skipped, raises if it fails."""
    args = shlex.split(line)
    if not args:
        return "empty"
    if os.path.basename(args[0]) in CONTAINER_ONLY:
        return f"skipped (container-only): {line}"
    proc = subprocess.run(ns.cmd(*args), capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise LabError(f"exec `{line}` failed in {ns.name}: {proc.stderr.strip()}")
    return None


def up(
    topology: str | Path,
    name: str | None = None,
    progress: Progress | None = None,
    start_daemons: bool = True,
    runtime: str = "netns",
) -> RunningLab:
    """Create the lab; on failure it raises and leaves state for `down` to remove.
    runtime "netns": namespaces and the runner's own daemons; "docker": real containers."""
    progress = progress or default_progress()
    topo = load_topology(topology)
    lab_name = name or topo.name
    if LabState.path_for(lab_name).exists():
        raise LabError(f"lab {lab_name} is already up (python -m evpnd.lab down {lab_name})")
    if runtime == "docker":
        from evpnd.lab import containers

        nodes = ", ".join(f"{n.name}({n.role})" for n in topo.nodes.values())
        progress(f"lab {lab_name} (docker): {len(topo.nodes)} nodes [{nodes}], "
                 f"{len(topo.links)} links")  # fmt: skip
        return containers.up(topo, lab_name, progress)
    if runtime != "netns":
        raise LabError(f"unknown runtime {runtime!r} (netns or docker)")
    state = LabState(lab_name, str(topo.path))
    lab = RunningLab(topo, state, progress)
    nodes = ", ".join(f"{n.name}({n.role})" for n in topo.nodes.values())
    progress(f"lab {lab_name}: {len(topo.nodes)} nodes [{nodes}], {len(topo.links)} links")
    for node in topo.nodes:
        nsname = namespace_name(lab_name, node)
        if Path("/run/netns", nsname).exists():
            raise LabError(f"namespace {nsname} exists already (not ours: `ip netns del {nsname}`"
                           " if an earlier run left it)")  # fmt: skip
        state.namespaces[node] = nsname
        state.save()  # recorded before it exists: `down` then always knows about it
        run(["ip", "netns", "add", nsname])
        Netns(nsname).ip("link", "set", "lo", "up")
    progress(f"namespaces: {len(topo.nodes)} created (clab-{lab_name}-<node>)")
    for link in topo.links:
        _veth(lab.ns(link.a.node), link.a.ifname, lab.ns(link.b.node), link.b.ifname, link.mtu)
    mtus = sorted({link.mtu for link in topo.links})
    progress(f"links: {len(topo.links)} veth pairs (MTU {', '.join(map(str, mtus))})")
    for node in topo.nodes.values():
        ns = lab.ns(node.name)
        for line in node.exec:
            note = exec_line(ns, line)
            if note:
                progress(f"  {node.name}: {note}")
    progress(f"exec: {sum(len(n.exec) for n in topo.nodes.values())} lines applied")
    if start_daemons:
        for node in topo.by_role("frr"):
            lab.start_daemons(node.name)
            progress(f"{node.name}: FRR zebra+bgpd started (vty {lab.node_dir(node.name)}/frr)")
        for node in topo.by_role("evpnd"):
            lab.start_daemons(node.name)
            progress(f"{node.name}: evpnd started (socket {lab.socket(node.name)})")
        for node in topo.by_role("evpnd"):
            if not lab.wait_evpnd_ready(node.name):
                tail = "\n".join(lab.log(node.name).splitlines()[-15:])
                raise LabError(f"{node.name}: evpnd did not come up:\n{tail}")
        if topo.by_role("evpnd"):
            progress("evpnd: every API socket is up")
    return lab


def attach(name_or_path: str | Path) -> RunningLab:
    """The RunningLab of a lab that another process brought up."""
    name = lab_name_of(name_or_path)
    state = LabState.load(name)
    if state.runtime == "docker":
        from evpnd.lab import containers

        return containers.attach(state)
    return RunningLab(load_topology(state.topology), state)


def lab_name_of(name_or_path: str | Path) -> str:
    p = Path(name_or_path)
    if p.suffix in (".yml", ".yaml") and p.exists():
        return load_topology(p).name
    return str(name_or_path)


def running_labs() -> list[str]:
    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.parent.name for p in STATE_ROOT.glob("*/state.json"))


def down(name_or_path: str | Path, progress: Progress | None = None) -> bool:
    """Remove everything the lab created; True if there was something to remove."""
    progress = progress or default_progress()
    name = lab_name_of(name_or_path)
    state_dir = STATE_ROOT / name
    try:
        state = LabState.load(name)
    except (OSError, ValueError, KeyError):
        if state_dir.exists():
            shutil.rmtree(state_dir, ignore_errors=True)
            progress(f"lab {name}: removed an unreadable state directory")
            return True
        return False
    if state.runtime == "docker":
        from evpnd.lab import containers

        if containers.down(state, progress):
            shutil.rmtree(state_dir, ignore_errors=True)
        return True
    for rec in sorted(state.procs, key=lambda r: STOP_ORDER.get(r.daemon, 9)):
        _stop_pid(rec, None)
    progress(f"lab {name}: {len(state.procs)} daemons stopped")
    for nsname in state.namespaces.values():
        # whatever still runs inside our namespaces (ExaBGP, ping loops) was started by the lab
        out = run(["ip", "netns", "pids", nsname], check=False)
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    time.sleep(0.1)
    removed = 0
    for nsname in state.namespaces.values():
        if Path("/run/netns", nsname).exists():
            run(["ip", "netns", "del", nsname], check=False)
            removed += 1
    shutil.rmtree(state_dir, ignore_errors=True)
    progress(f"lab {name}: {removed} namespaces and {state_dir} removed")
    return True


def summary(lab: RunningLab) -> str:
    """A table of nodes: role, namespace, daemons and where to reach them."""
    rows = [("node", "role", "namespace", "daemons / access")]
    docker = lab.state.runtime == "docker"
    for node in lab.topo.nodes.values():
        if docker:
            tool = {"frr": "vtysh", "evpnd": "evpnctl"}.get(node.role, "sh")
            access = f"docker exec -it {lab.state.containers[node.name]} {tool}"
        elif node.role == "frr":
            access = f"vtysh --vty_socket {lab.node_dir(node.name)}/frr"
        elif node.role == "evpnd":
            access = f"evpnctl -s {lab.socket(node.name)}"
        else:
            access = ""
        pids = [
            f"{r.daemon}:{r.pid}" + ("" if r.alive() else "(exited)")
            for r in lab.state.procs
            if r.node == node.name
        ]
        rows.append((node.name, node.role, lab.state.namespaces[node.name],
                     " ".join(pids + ([access] if access else []))))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


# -- convergence checks (the demo and the tests share them) ---------------------------------


def _vxlan_exec(line: str) -> tuple[int, str] | None:
    """(vni, local address) of an `ip link add NAME type vxlan id N local A ...` exec line."""
    words = line.split()
    if "vxlan" not in words or "id" not in words or "local" not in words:
        return None
    try:
        return int(words[words.index("id") + 1]), words[words.index("local") + 1]
    except (IndexError, ValueError):
        return None


def expected_vteps(topo: Topology) -> dict[int, dict[str, str]]:
    """{vni: {vtep address: node}} from the node configs: FRR leaves' vxlan exec lines,
    evpnd leaves' evpnd.yaml (l2vnis and l3vnis)."""
    out: dict[int, dict[str, str]] = {}
    for node in topo.nodes.values():
        if node.role == "frr":
            for line in node.exec:
                vxlan = _vxlan_exec(line)
                if vxlan:
                    out.setdefault(vxlan[0], {})[vxlan[1]] = node.name
        elif node.role == "evpnd":
            src = node.bound(EVPND_CONF_TARGET)
            data = yaml.safe_load(src.read_text()) if src else {}
            for item in data.get("l2vnis") or []:
                out.setdefault(int(item["vni"]), {})[str(data["vtep"])] = node.name
    return out


def _json(ns: Netns, *args: str) -> list:
    out = ns.run([*args], check=False)
    try:
        return json.loads(out) if out.strip() else []
    except json.JSONDecodeError:
        return []


def vxlan_devices(ns: Netns) -> dict[int, str]:
    """{vni: ifname} of the vxlan devices in a namespace."""
    out = {}
    for link in _json(ns, "ip", "-d", "-j", "link", "show", "type", "vxlan"):
        data = link.get("linkinfo", {}).get("info_data", {})
        if "id" in data:
            out[int(data["id"])] = link["ifname"]
    return out


def flood_list(ns: Netns, ifname: str) -> set[str]:
    """Remote VTEPs of a vxlan device's head-end replication list (all-zero MAC entries)."""
    entries = _json(ns, "bridge", "-j", "fdb", "show", "dev", ifname)
    return {e["dst"] for e in entries if e.get("mac") == "00:00:00:00:00:00" and "dst" in e}


def flood_lists_converged(lab: RunningLab) -> list[str]:
    """What is still missing: every leaf floods each VNI to every other VTEP of that VNI."""
    missing = []
    for vni, vteps in sorted(expected_vteps(lab.topo).items()):
        for vtep, node in vteps.items():
            devices = vxlan_devices(lab.ns(node))
            if vni not in devices:
                missing.append(f"{node}: no vxlan device for VNI {vni}")
                continue
            want = set(vteps) - {vtep}
            have = flood_list(lab.ns(node), devices[vni])
            if want - have:
                missing.append(f"{node}: VNI {vni} floods to {sorted(have)}, not yet to "
                               f"{sorted(want - have)}")  # fmt: skip
    return missing


def frr_sessions(lab: RunningLab) -> dict[str, dict[str, str]]:
    """{frr node: {"afi peer": state}} from `show bgp summary json` of every FRR node."""
    out: dict[str, dict[str, str]] = {}
    for node in lab.topo.by_role("frr"):
        summary_json = lab.frr(node.name).json("show bgp summary json")
        states = {}
        for afi, data in summary_json.items():
            if isinstance(data, dict):
                for peer, info in (data.get("peers") or {}).items():
                    states[f"{afi} {peer}"] = info.get("state", "?")
        out[node.name] = states
    return out


def evpnd_json(lab: RunningLab, node: str, *args: str) -> dict:
    """`evpnctl -s <node's socket> ARGS --json`, parsed; {} if evpnd does not answer."""
    proc = lab.evpnctl(node, *args, "--json")
    try:
        return json.loads(proc.stdout) if proc.returncode == 0 else {}
    except json.JSONDecodeError:
        return {}


def evpnd_sessions(lab: RunningLab) -> dict[str, dict[str, str]]:
    """{evpnd node: {peer: state}} from `evpnctl show peers` ('up' is Established)."""
    out: dict[str, dict[str, str]] = {}
    for node in lab.topo.by_role("evpnd"):
        reply = evpnd_json(lab, node.name, "show", "peers")
        out[node.name] = {p["address"]: p["state"] for p in reply.get("peers", [])}
    return out


def sessions_converged(lab: RunningLab) -> list[str]:
    """Sessions that are not Established yet (a router that answers nothing counts too)."""
    missing = []
    for node, states in frr_sessions(lab).items():
        if not states:
            missing.append(f"{node}: bgpd has no sessions (yet)")
        missing += [f"{node}: {k} {v}" for k, v in states.items() if v != "Established"]
    for node, states in evpnd_sessions(lab).items():
        if not states:
            missing.append(f"{node}: evpnd reports no peers (yet)")
        missing += [f"{node}: {k} {v}" for k, v in states.items() if v != "up"]
    return missing


def frr_evpn_paths(lab: RunningLab, node: str) -> list[dict]:
    """Every path of `show bgp l2vpn evpn json`, flattened, each with its 'rd' and 'prefix'."""
    table = lab.frr(node).json("show bgp l2vpn evpn json")
    out = []
    for rd, routes in table.items():
        if not isinstance(routes, dict) or "rd" not in routes:
            continue
        for prefix, route in routes.items():
            if not isinstance(route, dict):
                continue
            for path in route.get("paths", []):
                for p in path if isinstance(path, list) else [path]:  # older FRR: lists
                    out.append({**p, "rd": rd, "prefix": prefix})
    return out


def wait_converged(lab: RunningLab, timeout: float = 60.0, progress: Progress | None = None):
    """Wait until every BGP session is up and every flood list is complete; raise otherwise."""
    progress = progress or (lambda _m: None)
    deadline = time.monotonic() + timeout
    missing: list[str] = []
    for what, check in (("BGP sessions", sessions_converged),
                        ("type-3 flood lists", flood_lists_converged)):  # fmt: skip
        while True:
            missing = check(lab)
            if not missing:
                progress(f"{what}: converged")
                break
            if time.monotonic() > deadline:
                raise LabError(f"not converged after {timeout:.0f}s: {'; '.join(missing)}")
            time.sleep(0.25)
