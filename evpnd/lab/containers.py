"""`--runtime docker`: each node of a `.clab.yml` as a real container, wired as containerlab does.

Order as in containerlab: a container per node (`clab-<lab>-<node>`, `--network none`,
privileged, the topology's binds, `CLAB_INTFS` = its number of data interfaces), then a veth pair
per link moved into the two containers' network namespaces by PID (`ip link set X netns PID`)
and renamed there, then each node's `exec` lines inside the container (no shell, like
containerlab). The images start their daemons themselves (evpnd: containerlab/Dockerfile,
FRR: containerlab/Dockerfile.frr); their entrypoints wait for the data interfaces.

Images: the topology's `evpnd:*` image maps to evpnd-lab/evpnd:latest, an `frr` image to
evpnd-lab/frr:latest and anything else (hosts) to the debootstrap base evpnd-lab/debian:12, all
made by scripts/docker.sh (no registry here). Images that were missing before `up` and that it
built are recorded as the lab's, and `down` removes them with the containers.

Each container's network namespace is also attached under /run/netns (`ip netns attach`), with
the names the namespace runtime uses, so the checks (FDB, flood lists, pings) are the same code
for both runtimes; `down` detaches them. Everything is recorded in the lab's state.json before
it is made, like the namespace runtime.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from evpnd.lab import runner
from evpnd.lab.netns import Netns, run
from evpnd.lab.topology import Node, Topology, load_topology

ROOT = Path(__file__).resolve().parents[2]
DOCKER_SH = ROOT / "scripts" / "docker.sh"
DOCKER_BIN = "/usr/bin/docker"  # Debian's docker.io client
DOCKER_HOST = "unix:///run/evpnd-docker/docker.sock"  # scripts/docker.sh's own dockerd
IMAGES = {
    "evpnd": "evpnd-lab/evpnd:latest",
    "frr": "evpnd-lab/frr:latest",
    "host": "evpnd-lab/debian:12",
}
LABEL = "evpnd.lab"
CONTAINER_PATH = "/opt/evpnd/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# containerlab runs nodes --privileged. Here that fails ("unable to apply caps") wherever the
# caller's bounding set lacks a capability (e.g. CAP_SYS_RESOURCE in a sandbox), so: every
# capability but that one, writable /proc/sys (the exec lines' sysctls), no seccomp/apparmor.
PRIVILEGES = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
]  # fmt: skip


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": os.environ.get("EVPND_DOCKER_HOST", DOCKER_HOST)}


def docker(*args: str, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(
        [DOCKER_BIN, *args], capture_output=True, text=True, timeout=timeout, env=docker_env()
    )
    if check and proc.returncode != 0:
        raise runner.LabError(f"docker {' '.join(args[:3])}: {proc.stderr.strip()}")
    return proc.stdout


def docker_up() -> bool:
    proc = subprocess.run([DOCKER_BIN, "version"], capture_output=True, env=docker_env())
    return proc.returncode == 0


def have_image(image: str) -> bool:
    proc = subprocess.run(
        [DOCKER_BIN, "image", "inspect", image], capture_output=True, env=docker_env()
    )
    return proc.returncode == 0


def ensure_docker_images(progress: runner.Progress) -> list[str]:
    """Start the project's dockerd and build the node images that are missing (a few minutes on
    the first run, seconds after); returns the images this call built."""
    if not DOCKER_SH.exists():
        raise runner.LabError(f"{DOCKER_SH} not found: --runtime docker runs from a checkout")
    if subprocess.run(["bash", str(DOCKER_SH), "start"], timeout=600).returncode != 0:
        raise runner.LabError("scripts/docker.sh start failed (see above): no docker here")
    missing = [img for role, img in IMAGES.items() if role != "host" and not have_image(img)]
    if missing:
        progress(f"building images {missing} (scripts/docker.sh images)")
    proc = subprocess.run(["bash", str(DOCKER_SH), "images"], timeout=1800)
    if proc.returncode != 0:
        raise runner.LabError("scripts/docker.sh images failed (see above)")
    return missing


def container_name(lab: str, node: str) -> str:
    return f"clab-{lab}-{node}"


class DockerFrr:
    """vtysh of an FRR container (its daemons use the image's default paths)."""

    def __init__(self, prefix: list[str]):
        self.prefix = prefix  # the command that runs a program inside the container

    def vtysh(self, *commands: str) -> str:
        args = [*self.prefix, "vtysh"]
        for c in commands:
            args += ["-c", c]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30, env=docker_env())
        return proc.stdout

    def json(self, command: str) -> dict:
        out = self.vtysh(command)
        try:
            return json.loads(out) if out.strip() else {}
        except json.JSONDecodeError:
            return {}


class DockerLab(runner.RunningLab):
    """A lab whose nodes are containers; the same questions as RunningLab, asked of docker."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._pids: dict[str, int] = {}  # node -> its container's init (host PID)

    def container(self, node: str) -> str:
        return self.state.containers[node]

    def in_container(self, node: str) -> list[str]:
        """The command prefix that runs a program inside the node's container, as `docker exec`
        does: its mount, UTS, IPC, network and PID namespaces, its root and working directory,
        the image's PATH. Through nsenter, because `docker exec` leaves the process in the
        host's root wherever the host's own root is a chroot (as in a pristine-root test run)."""
        pid = self._pids.get(node) or self.init_pid(node)
        if pid is None:
            raise runner.LabError(f"{node}: its container is not running")
        self._pids[node] = pid
        return ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
                "env", f"PATH={CONTAINER_PATH}"]  # fmt: skip

    def frr(self, node: str) -> DockerFrr:  # type: ignore[override]
        return DockerFrr(self.in_container(node))

    def evpnctl(self, node: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        cmd = [*self.in_container(node), "evpnctl", *args]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=docker_env()
        )

    def log(self, node: str) -> str:
        proc = subprocess.run(
            [DOCKER_BIN, "logs", "--tail", "200", self.container(node)],
            capture_output=True,
            text=True,
            env=docker_env(),
        )
        return f"--- docker logs {self.container(node)}\n{proc.stdout}{proc.stderr}"

    def init_pid(self, node: str) -> int | None:
        out = docker(
            "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", self.container(node), check=False
        )
        running, _, pid = out.strip().partition(" ")
        return int(pid) if running == "true" and pid.isdigit() and int(pid) > 0 else None

    def pid(self, node: str, daemon: str) -> int | None:
        """Host PID of a node's daemon: evpnd is the container's init (the entrypoint execs it);
        FRR's daemons are found by name among the init's descendants."""
        from evpnd.lab.fabric import descendants

        init = self.init_pid(node)
        if init is None:
            return None
        if daemon == "evpnd":
            return init
        for p in descendants(init):
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() == daemon:
                    return p
            except OSError:
                continue
        return None

    def start_daemons(self, node: str) -> None:
        docker("start", self.container(node))

    def stop_daemons(self, node: str) -> None:
        docker("stop", "-t", "5", self.container(node))

    def restart(self, node: str) -> None:
        # A restarted container gets a fresh network namespace: its links would be gone, so a
        # daemon restart is the daemon's own (kill -HUP/-TERM inside), not the container's.
        raise runner.LabError("restart is not supported by the docker runtime")

    def wait_evpnd_ready(self, node: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.init_pid(node) is None:
                return False
            cmd = [*self.in_container(node), "test", "-S", "/run/evpnd/evpnd.sock"]
            proc = subprocess.run(cmd, capture_output=True)
            if proc.returncode == 0:
                return True
            time.sleep(0.25)
        return False


def _image(node: Node) -> str:
    return IMAGES[node.role]


def _run_container(lab: DockerLab, node: Node, n_intfs: int) -> None:
    name = lab.container(node.name)
    args = [
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        node.name,
        "--network",
        "none",
        *PRIVILEGES,
        "--label",
        f"{LABEL}={lab.name}",
        "-e",
        f"CLAB_INTFS={n_intfs}",
    ]
    for b in node.binds:
        args += ["-v", f"{b.source}:{b.target}{':ro' if b.mode == 'ro' else ''}"]
    args.append(_image(node))
    if node.role == "host":
        args += ["sleep", "infinity"]
    docker(*args)


def _veth_by_pid(a_pid: int, a_if: str, b_pid: int, b_if: str, mtu: int) -> None:
    """containerlab's way: a veth pair on the host, each end moved into a container's network
    namespace by the container's PID, renamed there and brought up."""
    tmp_a, tmp_b = f"v{os.urandom(5).hex()}", f"v{os.urandom(5).hex()}"
    run(
        [
            "ip",
            "link",
            "add",
            tmp_a,
            "mtu",
            str(mtu),
            "type",
            "veth",
            "peer",
            "name",
            tmp_b,
            "mtu",
            str(mtu),
        ]
    )
    for tmp, pid, ifname in ((tmp_a, a_pid, a_if), (tmp_b, b_pid, b_if)):
        run(["ip", "link", "set", tmp, "netns", str(pid)])
        run(["nsenter", "-t", str(pid), "-n", "ip", "link", "set", tmp, "name", ifname])
        run(["nsenter", "-t", str(pid), "-n", "ip", "link", "set", ifname, "up"])


def exec_in(lab: DockerLab, node: str, line: str) -> None:
    args = shlex.split(line)
    if not args:
        return
    proc = subprocess.run([*lab.in_container(node), *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    if proc.returncode != 0:
        raise runner.LabError(
            f"exec `{line}` failed in {lab.container(node)}: {(proc.stderr or proc.stdout).strip()}"
        )


def up(topo: Topology, lab_name: str, progress: runner.Progress) -> DockerLab:
    state = runner.LabState(lab_name, str(topo.path), runtime="docker")
    state.save()  # before anything exists: a failure from here on is cleaned up by `down`
    lab = DockerLab(topo, state, progress)
    built = ensure_docker_images(progress)
    state.images = built
    state.save()
    intfs: dict[str, int] = {n: 0 for n in topo.nodes}
    for link in topo.links:
        intfs[link.a.node] += 1
        intfs[link.b.node] += 1
    for node in topo.nodes.values():
        name = container_name(lab_name, node.name)
        if docker("ps", "-aq", "--filter", f"name=^{name}$").strip():
            raise runner.LabError(
                f"container {name} exists already (not ours: `docker rm -f "
                f"{name}` with DOCKER_HOST={DOCKER_HOST} if a run left it)"
            )
        nsname = runner.namespace_name(lab_name, node.name)
        if Path("/run/netns", nsname).exists():
            raise runner.LabError(f"namespace {nsname} exists already")
        state.containers[node.name] = name
        state.save()
        _run_container(lab, node, intfs[node.name])
    progress(f"containers: {len(topo.nodes)} started ({container_name(lab_name, '<node>')})")
    pids = {}
    for node in topo.nodes:
        pid = lab.init_pid(node)
        if pid is None:
            raise runner.LabError(f"{node}: container exited at once:\n{lab.log(node)[-2000:]}")
        pids[node] = pid
        nsname = runner.namespace_name(lab_name, node)
        state.namespaces[node] = nsname
        state.save()
        run(["ip", "netns", "attach", nsname, str(pid)])
        Netns(nsname).ip("link", "set", "lo", "up")
    for link in topo.links:
        _veth_by_pid(pids[link.a.node], link.a.ifname, pids[link.b.node], link.b.ifname, link.mtu)
    mtus = sorted({link.mtu for link in topo.links})
    progress(
        f"links: {len(topo.links)} veth pairs moved into the containers (MTU "
        f"{', '.join(map(str, mtus))})"
    )
    for node in topo.nodes.values():
        for line in node.exec:
            exec_in(lab, node.name, line)
    progress(
        f"exec: {sum(len(n.exec) for n in topo.nodes.values())} lines applied (in the containers)"
    )
    for node in topo.by_role("evpnd"):
        if not lab.wait_evpnd_ready(node.name):
            tail = "\n".join(lab.log(node.name).splitlines()[-15:])
            raise runner.LabError(f"{node.name}: evpnd did not come up:\n{tail}")
    if topo.by_role("evpnd"):
        progress("evpnd: every API socket is up (in its container)")
    return lab


def down(state: runner.LabState, progress: runner.Progress) -> bool:
    """Remove the lab's containers (by the names recorded, and only those carrying our label),
    detach their namespaces, remove the images `up` built. False if docker did not answer
    (the lab's state is then kept, so a later `down` can finish)."""
    names = list(state.containers.values())
    ours = []
    if names and not docker_up():
        progress(f"  docker does not answer ({DOCKER_HOST}): containers {names} may be left; "
                 "start it with scripts/docker.sh start and run down again")  # fmt: skip
        return False
    elif names:
        out = docker(
            "ps",
            "-aq",
            "--filter",
            f"label={LABEL}={state.name}",
            "--format",
            "{{.Names}}",
            check=False,
        )
        ours = [n for n in out.split() if n in names]
    if ours:
        docker("rm", "-f", *ours, check=False, timeout=120)
    for nsname in state.namespaces.values():
        if Path("/run/netns", nsname).exists():
            run(["ip", "netns", "del", nsname], check=False)
    removed = []
    for image in state.images:
        proc = subprocess.run(
            [DOCKER_BIN, "rmi", image], capture_output=True, text=True, env=docker_env()
        )
        if proc.returncode == 0:
            removed.append(image)
        else:
            progress(f"  image {image} kept: {proc.stderr.strip()}")
    progress(
        f"lab {state.name}: {len(ours)} containers, {len(state.namespaces)} namespace "
        f"attachments, {len(removed)} images removed"
    )
    return True


def attach(state: runner.LabState) -> DockerLab:
    return DockerLab(load_topology(state.topology), state)
