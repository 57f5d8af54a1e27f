"""`python -m evpnd.lab up|down|status|demo`: containerlab topologies in network namespaces.

up TOPOLOGY [--name LAB] [--runtime netns|docker]
                           create the lab (namespaces, veths, exec lines, FRR, evpnd), or with
                           --runtime docker real containers from the node images
down [TOPOLOGY|LAB]        remove it (every lab under /run/evpnd-lab when none is given)
status                     the labs that are up, and their nodes
demo                       up evpn-l2, wait for convergence, show routes, ping, keep running
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from evpnd.lab import runner
from evpnd.lab.topology import TopologyError

ROOT = Path(__file__).resolve().parents[2]
DEMO_TOPOLOGY = ROOT / "containerlab" / "evpn-l2" / "evpn-l2.clab.yml"
# (from, to, address, expected): within a VNI across FRR and evpnd leaves, and across VNIs
DEMO_PINGS = [
    ("h1", "h2", "10.10.0.2", True, "VNI 100  FRR leaf1   -> evpnd leaf2"),
    ("h2", "h3", "10.10.0.3", True, "VNI 100  evpnd leaf2 -> evpnd leaf3"),
    ("h4", "h5", "10.10.0.5", True, "VNI 200  FRR leaf1   -> evpnd leaf3"),
    ("h2", "h4", "10.10.0.4", False, "VNI 100 -> VNI 200 (separate segments: must fail)"),
]


def _need_root() -> None:
    import os

    if os.geteuid() != 0:
        sys.exit("evpnd.lab: network namespaces need root (sudo make demo)")


def cmd_up(args: argparse.Namespace) -> int:
    _need_root()
    progress = runner.default_progress()
    try:
        lab = runner.up(args.topology, name=args.name, progress=progress, runtime=args.runtime)
    except (runner.LabError, RuntimeError) as exc:  # RuntimeError: an ip command failed
        print(f"evpnd.lab: {exc}", file=sys.stderr)
        if "already up" not in str(exc):
            runner.down(args.name or runner.lab_name_of(args.topology), progress)
        return 1
    except TopologyError as exc:
        print(f"evpnd.lab: {exc}", file=sys.stderr)
        return 1
    print()
    print(runner.summary(lab))
    print(f"\nremove with: python -m evpnd.lab down {lab.name}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    _need_root()
    names = [args.lab] if args.lab else runner.running_labs()
    if not names:
        print("evpnd.lab: no lab is up")
        return 0
    for name in names:
        if not runner.down(name):
            print(f"evpnd.lab: no lab {runner.lab_name_of(name)} is up")
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    names = runner.running_labs()
    if not names:
        print("no lab is up")
    for name in names:
        lab = runner.attach(name)
        print(f"lab {name} ({lab.state.topology}, {lab.state.runtime})\n{runner.summary(lab)}\n")
    return 0


def _show(title: str, cmd: list[str], text: str) -> None:
    print(f"\n=== {title}\n$ {' '.join(cmd)}\n{text.rstrip()}")


def _ping(lab: runner.RunningLab, src: str, dst: str, expect: bool) -> tuple[bool, float]:
    """Ping until it works (first packets wait for ARP and learning) or for ~2s if failing is
    what we expect; returns (answered, seconds)."""
    t0 = time.monotonic()
    tries = 2 if not expect else 10
    for _ in range(tries):
        if lab.ns(src).ping(dst, count=1, timeout=1.0):
            return True, time.monotonic() - t0
    return False, time.monotonic() - t0


def cmd_demo(args: argparse.Namespace) -> int:
    _need_root()
    t0 = time.monotonic()
    progress = runner.default_progress()
    name = runner.lab_name_of(DEMO_TOPOLOGY)
    if args.runtime == "docker":
        name += "-docker"  # beside the namespace demo, never instead of it
    if name in runner.running_labs():
        progress(f"lab {name} is already up: removing it first")
        runner.down(name, progress)
    try:
        lab = runner.up(DEMO_TOPOLOGY, name=name, progress=progress, runtime=args.runtime)
    except (runner.LabError, TopologyError, RuntimeError) as exc:
        print(f"\nevpnd.lab demo: {exc}\nremoving the half-built lab", file=sys.stderr)
        runner.down(name, progress)
        return 1
    try:
        runner.wait_converged(lab, timeout=args.timeout, progress=progress)
    except runner.LabError as exc:
        print(f"\nevpnd.lab demo: {exc}", file=sys.stderr)
        print(f"the lab is left up to look at; remove it with: python -m evpnd.lab down {name}")
        return 1

    print("\n=== pings between hosts (ip netns exec clab-evpn-l2-<host> ping ...)")
    failures = 0
    for src, dst_node, addr, expect, what in DEMO_PINGS:
        ok, took = _ping(lab, src, addr, expect)
        verdict = "ok" if ok == expect else "UNEXPECTED"
        failures += ok != expect
        answer = f"answered in {took:.1f}s" if ok else "no answer"
        print(f"  {src} -> {dst_node} ({addr:<9}) {what:<50} {answer:<18} {verdict}")
    progress(f"hosts pinging {time.monotonic() - t0:.1f}s after the start of the demo")

    docker = lab.state.runtime == "docker"
    sock = lab.socket("leaf2")
    ctl = "evpnctl" if shutil.which("evpnctl") else " ".join(runner.bin_path("evpnctl"))
    routes = lab.evpnctl("leaf2", "show", "routes")
    if docker:
        c1, c2 = lab.state.containers["leaf1"], lab.state.containers["leaf2"]
        evpnctl_cmd = ["docker exec", c2, "evpnctl show routes"]
        vtysh_cmd = ["docker exec", c1, "vtysh -c"]
        vtysh_shell = f"docker exec -it {c1} vtysh"
        ctl_peers = f"docker exec {c2} evpnctl show peers"
    else:
        evpnctl_cmd = [ctl, "-s", str(sock), "show", "routes"]
        vty = f"{lab.node_dir('leaf1')}/frr"
        vtysh_cmd = ["ip netns exec", lab.ns("leaf1").name, "vtysh --vty_socket", vty, "-c"]
        vtysh_shell = f"ip netns exec {lab.ns('leaf1').name} vtysh --vty_socket {vty}"
        ctl_peers = f"{ctl} -s {sock} show peers"
    _show("evpnd's view (leaf2)", evpnctl_cmd, routes.stdout + routes.stderr)
    _show(
        "FRR's view of the same routes (leaf1)",
        [*vtysh_cmd, "'show bgp l2vpn evpn'"],
        lab.frr("leaf1").vtysh("show bgp l2vpn evpn"),
    )
    _show(
        "FRR's MAC table (leaf1: local MACs and the ones behind evpnd leaves)",
        [*vtysh_cmd, "'show evpn mac vni all'"],
        lab.frr("leaf1").vtysh("show evpn mac vni all"),
    )
    print(f"\n=== the lab stays up\n{runner.summary(lab)}\n")
    print("try:")
    print(f"  ip netns exec {lab.ns('h1').name} ping 10.10.0.3")
    print(f"  {ctl_peers}    (also: show vni, show macs, explain MAC)")
    print(f"  {vtysh_shell}")
    print(f"  ip netns exec {lab.ns('leaf2').name} bridge fdb show dev vx100")
    if docker:
        print("  (docker: DOCKER_HOST=unix:///run/evpnd-docker/docker.sock, the project's dockerd)")
        print(f"remove it with:  python -m evpnd.lab down {name}   (or: make demo-docker-down)")
    else:
        print(f"  logs: {lab.dir}/<node>/")
        print("remove it with:  python -m evpnd.lab down   (or: make demo-down)")
    if failures:
        print(f"\nevpnd.lab demo: {failures} ping(s) did not behave as expected", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evpnd.lab", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("up", help="create a lab from a containerlab topology")
    sp.add_argument("topology", type=Path)
    sp.add_argument("--name", help="lab name (default: the topology's name)")
    sp.add_argument(
        "--runtime",
        choices=["netns", "docker"],
        default="netns",
        help="network namespaces (default) or real containers (scripts/docker.sh)",
    )
    sp.set_defaults(fn=cmd_up)
    sp = sub.add_parser("down", help="remove a lab (all labs if none is named)")
    sp.add_argument("lab", nargs="?", help="topology file or lab name")
    sp.set_defaults(fn=cmd_down)
    sub.add_parser("status", help="labs that are up").set_defaults(fn=cmd_status)
    sp = sub.add_parser("demo", help="evpn-l2: FRR and evpnd leaves, pings, left running")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds to converge")
    sp.add_argument(
        "--runtime",
        choices=["netns", "docker"],
        default="netns",
        help="network namespaces (default) or real containers (scripts/docker.sh)",
    )
    sp.set_defaults(fn=cmd_demo)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except subprocess.TimeoutExpired as exc:
        print(f"evpnd.lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
