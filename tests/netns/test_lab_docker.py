"""containerlab/evpn-l2 with real containers (`--runtime docker`): Debian's docker.io, node
images built from this working tree by scripts/docker.sh (debootstrap base, no registry), the
links wired as containerlab does. The same checks as test_lab_l2.py: sessions, flood lists,
routes on every router, pings within and across VNIs. Then `down` must leave no container,
namespace or image it made. The images' entrypoints refuse to start without their config bind.

Docker missing is a failure, never a skip: scripts/docker.sh installs docker.io, and if that or
dockerd fails, these tests fail saying why. The module starts the project's own dockerd if it
is not running and stops it again (by its PID file) at the end, pass or fail.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from evpnd.lab import containers, runner
from evpnd.lab.netns import wait_for
from tests.netns.test_lab_l2 import ACROSS_VNI, HOSTS, SAME_VNI, VTEPS, routes_on_every_router

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "containerlab/evpn-l2/evpn-l2.clab.yml"
DOCKER_SH = ROOT / "scripts/docker.sh"
BUILT = [containers.IMAGES["evpnd"], containers.IMAGES["frr"]]


def dockerd_running() -> bool:
    return (
        Path("/run/evpnd-docker/docker.sock").exists()
        and subprocess.run([containers.DOCKER_BIN, "version"], capture_output=True,
                           env=containers.docker_env()).returncode == 0
    )  # fmt: skip


def lab_leftovers(name: str) -> list[str]:
    out = containers.docker("ps", "-aq", "--filter", f"label={containers.LABEL}={name}")
    left = [f"container {c}" for c in out.split()]
    left += [f"netns {ns}" for ns in os.listdir("/run/netns") if ns.startswith(f"clab-{name}-")]
    if (runner.STATE_ROOT / name).exists():
        left.append(str(runner.STATE_ROOT / name))
    return left


@pytest.fixture(scope="module")
def docker_ready():
    """The project's dockerd (started here if it was not running, stopped again at the end)."""
    if os.geteuid() != 0:
        pytest.fail("the docker tests need root (run `make test` as root)")
    was_running = Path(containers.DOCKER_BIN).exists() and dockerd_running()
    proc = subprocess.run(["bash", str(DOCKER_SH), "start"], capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"docker is not usable here: scripts/docker.sh start: {proc.stderr[-2000:]}")
    try:
        yield
    finally:
        if not was_running:
            subprocess.run(["bash", str(DOCKER_SH), "stop"], timeout=60)


@pytest.fixture(scope="module")
def l2d(docker_ready):
    # The node images are built from this working tree by `up` (a stale image would test old
    # code) and `down` must remove them again: remove any left from an earlier run first.
    for image in BUILT:
        if containers.have_image(image):
            containers.docker("rmi", image, check=False)
    name = f"dk{uuid.uuid4().hex[:5]}"
    lines: list[str] = []
    try:
        lab = runner.up(TOPOLOGY, name=name, progress=lines.append, runtime="docker")
        try:
            runner.wait_converged(lab, timeout=90, progress=lines.append)
        except runner.LabError as exc:
            pytest.fail(f"{exc}\n" + "\n".join(lab.log(n) for n in ("leaf2", "leaf3"))[-4000:])
        yield lab
    except (runner.LabError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"up --runtime docker failed: {exc}\n" + "\n".join(lines))
    finally:
        runner.down(name, progress=lines.append)
        assert not lab_leftovers(name), f"left behind: {lab_leftovers(name)}"


def ping(lab, src: str, dst: str, tries: int = 10) -> bool:
    return any(lab.ns(src).ping(HOSTS[dst][0], count=1, timeout=1.0) for _ in range(tries))


def test_nodes_are_real_containers(l2d):
    """Each node is a running container of its image; evpnd runs in its own PID namespace."""
    fmt = "{{.Config.Image}} {{.State.Running}} {{.Config.Hostname}}"
    for node, want in (("leaf2", "evpnd"), ("leaf1", "frr"), ("h1", "host")):
        out = containers.docker("inspect", "-f", fmt, l2d.container(node)).split()
        assert out == [containers.IMAGES[want], "true", node]
    pid = l2d.pid("leaf2", "evpnd")
    assert pid and os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert "evpnd" in Path(f"/proc/{pid}/cmdline").read_text()
    bgpd = l2d.pid("leaf1", "bgpd")
    assert bgpd, "FRR's bgpd runs inside the leaf1 container"
    # the link to the spine is a veth whose peer is in the spine's container
    link = l2d.ns("leaf2").run(["ip", "-d", "link", "show", "eth1"])
    assert "veth" in link and "mtu 9500" in link


def test_bgp_sessions_up(l2d):
    frr = runner.frr_sessions(l2d)
    assert set(frr["spine"]) >= {f"l2VpnEvpn 10.1.{i}.1" for i in (1, 2, 3)}
    assert all(state == "Established" for states in frr.values() for state in states.values())
    assert runner.evpnd_sessions(l2d) == {"leaf2": {"10.1.2.0": "up"},
                                          "leaf3": {"10.1.3.0": "up"}}  # fmt: skip


@pytest.fixture(scope="module")
def learned(l2d):
    for src, dst in SAME_VNI:
        ping(l2d, src, dst)
    return l2d


@pytest.mark.parametrize("src, dst", SAME_VNI, ids=lambda x: x)
def test_ping_within_vni(learned, src, dst):
    assert ping(learned, src, dst), f"{src} ({HOSTS[src][3]}) cannot reach {dst} ({HOSTS[dst][3]})"


@pytest.mark.parametrize("src, dst", ACROSS_VNI, ids=lambda x: x)
def test_ping_across_vnis_fails(learned, src, dst):
    assert not ping(learned, src, dst, tries=2)


def test_evpn_routes_on_every_router(learned):
    routes_on_every_router(learned)
    fdb = learned.ns("leaf2").run(["bridge", "fdb", "show", "dev", "vx100"])
    assert f"{HOSTS['h1'][1]} dst {VTEPS['leaf1']}" in fdb


@pytest.mark.parametrize("image, target", [
    (containers.IMAGES["evpnd"], "/etc/evpnd/evpnd.yaml"),
    (containers.IMAGES["frr"], "/etc/frr/frr.conf"),
])  # fmt: skip
def test_container_without_config_bind_says_so(l2d, tmp_path, image, target):
    """No bind, and a bind whose source is missing (docker then mounts an empty directory):
    one line on stderr naming the file, exit 2, nothing else started."""
    for extra in ([], ["-v", f"{tmp_path / 'missing'}:{target}"]):
        name = f"dkcfg{uuid.uuid4().hex[:6]}"
        try:
            proc = subprocess.run(
                [containers.DOCKER_BIN, "run", "--rm", "--name", name, "--network", "none",
                 *extra, image],
                capture_output=True, text=True, timeout=60, env=containers.docker_env(),
            )  # fmt: skip
        finally:  # a container that did start (the test failing) must not outlive the test
            containers.docker("rm", "-f", name, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, proc
        assert len(lines) == 1 and f"no config at {target}" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout


def test_down_removes_containers_namespaces_and_images(l2d):
    name = l2d.name
    made = list(l2d.state.images)
    assert sorted(made) == sorted(BUILT), "up built the node images from this working tree"
    assert runner.down(name, progress=lambda _m: None)
    assert not lab_leftovers(name), lab_leftovers(name)
    wait_for(lambda: not any(containers.have_image(i) for i in made), timeout=10,
             what="the images up built to be removed")  # fmt: skip
    assert containers.have_image(containers.IMAGES["host"]), "the cached base image stays"
