"""The overlay benchmark's full-kernel part: native vs VXLAN, GENEVE, gretap and GRE in one run.

    bash scripts/vm-tier.sh with PYTEST_ARGS="-k overlay_tunnels"     (the shortened run, a test)
    make bench-overlay-vm                                            (the full run, in the VM)
    .venv/bin/python benchmarks/overlay_tunnels.py [--quick] [--out DIR]   (root, full kernel)

This host's kernel has no geneve/gre, so this part runs in the VM of the full-kernel tier
(Debian's kernel under QEMU/TCG). Under TCG every instruction is emulated: absolute figures
mean nothing, only the ratios among the modes of the same run do (they share the emulation).

Two leaves joined by one veth underlay link (MTU 1500 or 9000). Per mode a host pair behind
them: native (routed by the leaves, no encapsulation); vxlan, geneve and gretap (a bridge per
leaf with the tunnel device and the host's port: the hosts share a subnet); gre (layer 3: each
host in its own subnet, the leaves route between them through the gre device). The tunnels
are plain `ip link` devices without keys or options, at the MTU derived from the underlay
(minus 50 for VXLAN/GENEVE, 38 for gretap, 24 for GRE): what is measured is the kernel's
encapsulation, which is the same whoever creates the devices. The metrics and the method
(each test for every mode back to back, the best of `reps` repetitions) are overlay.py's, as is
the wrong-MTU table: hosts at MTU 1500 over the 1500 underlay next to the derived MTU.

Writes DIR/overlay-vm.json, .md and .png (DIR: docs/bench by default). Its functions are meant
to be reused (e.g. by a policy-cost entry point): `TunnelFabric`, `measure_pairs`, `run`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overlay import (  # noqa: E402
    METRICS,
    Pair,
    Plan,
    _best,
    _fmt,
    _offloads,
    ping_rtt,
    set_offloads,
    tcp,
    udp,
)

from evpnd.lab.netns import Lab, Netns, stop_process, wait_for  # noqa: E402

MODES = ("native", "vxlan", "geneve", "gretap", "gre")
OVERHEAD = {"vxlan": 50, "geneve": 50, "gretap": 38, "gre": 24}  # IPv4 underlay, no options
FULL = Plan([1500, 9000], ["on", "off"], 2.0, 300, 1, True)
QUICK = Plan([1500], ["on"], 1.0, 30, 1, True)


def _tunnel_args(mode: str, local: str, remote: str) -> list[str]:
    if mode == "vxlan":
        return ["type", "vxlan", "id", "100", "local", local, "remote", remote, "dstport", "4789"]
    if mode == "geneve":
        return ["type", "geneve", "id", "100", "remote", remote]
    return ["type", mode, "local", local, "remote", remote]


class TunnelFabric:
    """Leaves l1/l2 (underlay MTU `mtu`) and one host pair per mode (see the module's text)."""

    def __init__(self, lab: Lab, mtu: int, modes: tuple[str, ...] = MODES) -> None:
        self.lab, self.mtu, self.modes = lab, mtu, modes
        a, b = lab.netns("l1"), lab.netns("l2")
        lab.link(a, "uplink", b, "uplink", "10.0.0.1/30", "10.0.0.2/30", mtu=mtu)
        self.leaves = (a, b)
        self.hosts: dict[str, list[Netns]] = {}
        self.pairs: dict[str, Pair] = {}
        self.offloads: dict | None = None  # offloads as the kernel set them
        for leaf in self.leaves:
            leaf.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for k, mode in enumerate(modes):
            pair = self.hosts[mode] = []
            for i, leaf in enumerate(self.leaves, 1):
                local, remote = f"10.0.0.{i}", f"10.0.0.{3 - i}"
                host = lab.netns(f"{mode}{i}")
                pair.append(host)
                if mode in ("native", "gre"):  # routed: a subnet per host
                    net = f"10.{10 + k}.{i}"
                    lab.link(host, "eth0", leaf, f"ph{k}", f"{net}.1/24", f"{net}.254/24")
                    host.ip("route", "add", "default", "via", f"{net}.254")
                    other = f"10.{10 + k}.{3 - i}.0/24"
                    if mode == "native":
                        leaf.ip("route", "add", other, "via", remote)
                    else:
                        leaf.ip("link", "add", "tun", *_tunnel_args(mode, local, remote))
                        leaf.ip("link", "set", "tun", "mtu", str(mtu - OVERHEAD[mode]), "up")
                        leaf.ip("route", "add", other, "dev", "tun")
                else:  # layer 2: bridge, tunnel, host port; hosts in one subnet
                    leaf.ip("link", "add", f"br{k}", "type", "bridge")
                    leaf.ip("link", "add", f"tun{k}", *_tunnel_args(mode, local, remote))
                    lab.link(host, "eth0", leaf, f"ph{k}", f"10.{10 + k}.0.{i}/24", None)
                    for dev in (f"tun{k}", f"ph{k}"):
                        leaf.ip("link", "set", dev, "master", f"br{k}")
                    leaf.ip("link", "set", f"br{k}", "up")
                    leaf.ip("link", "set", f"tun{k}", "up")
                self._host_mtu(mode, i, self.derived_mtu(mode))
            server_ip = f"10.{10 + k}.2.1" if mode in ("native", "gre") else f"10.{10 + k}.0.2"
            self.pairs[mode] = Pair(pair[0], pair[1], server_ip)
        for mode, p in self.pairs.items():
            wait_for(lambda p=p: p.client.ping(p.server_ip, timeout=0.5), 60, 0.3,
                     what=f"{mode}: ping {p.server_ip}")  # fmt: skip
            lab.start(p.server, ["iperf3", "-s", "-B", p.server_ip])
        time.sleep(0.3)

    def derived_mtu(self, mode: str) -> int:
        return self.mtu - OVERHEAD.get(mode, 0)

    def _host_mtu(self, mode: str, i: int, mtu: int) -> None:
        """The host's MTU and that of its port on the leaf (the tunnel device keeps its own)."""
        k = self.modes.index(mode)
        leaf = self.leaves[i - 1]
        if mode not in ("native", "gre"):
            leaf.ip("link", "set", f"tun{k}", "mtu", str(self.derived_mtu(mode)))
        leaf.ip("link", "set", f"ph{k}", "mtu", str(mtu))
        self.hosts[mode][i - 1].ip("link", "set", "eth0", "mtu", str(mtu))

    def set_host_mtu(self, mode: str, mtu: int) -> None:
        for i in (1, 2):
            self._host_mtu(mode, i, mtu)

    def set_offloads(self, state: str) -> None:
        """GSO, GRO and TSO on every interface of the lab: overlay.set_offloads ("on" is as
        the kernel set them: no ethtool run on a fresh lab; under TCG they cost ~25 s)."""
        namespaces = [*self.leaves, *(h for pair in self.hosts.values() for h in pair)]
        self.offloads = set_offloads(namespaces, state, self.offloads)


# --quick (the VM tier's test): under TCG each iperf3 start costs seconds, so it runs one TCP
# and one UDP size per mode and the wrong-MTU rows' DF pings only; the rest prints "-".
QUICK_TESTS = ("tcp1", "udp1400", "ping")


def measure_pairs(pairs: dict[str, Pair], plan: Plan,
                  only: tuple[str, ...] | None = None) -> dict[str, dict]:  # fmt: skip
    """overlay.py's metrics for every pair, each test for all pairs back to back."""
    tests = {
        "tcp1": (lambda p: tcp(p, plan.seconds, 1), "gbps", True),
        "tcp4": (lambda p: tcp(p, plan.seconds, 4), "gbps", True),
        "udp64": (lambda p: udp(p, plan.seconds, 64), "kpps", True),
        "udp1400": (lambda p: udp(p, plan.seconds, 1400), "kpps", True),
        "ping": (lambda p: ping_rtt(p, plan.pings), "p50_us", False),
    }
    raw: dict[str, dict] = {mode: {n: {} for n in tests} for mode in pairs}
    for name, (fn, key, higher) in tests.items():
        if only is not None and name not in only:
            continue
        reps: dict[str, list[dict]] = {mode: [] for mode in pairs}
        for _ in range(plan.reps):
            for mode, pair in pairs.items():
                reps[mode].append(fn(pair))
        for mode in pairs:
            raw[mode][name] = _best(reps[mode], key, higher)
    return {mode: {"tcp1": r["tcp1"].get("gbps"), "tcp4": r["tcp4"].get("gbps"),
                   "udp64": r["udp64"].get("kpps"), "udp1400": r["udp1400"].get("kpps"),
                   "rtt_p50": r["ping"].get("p50_us"), "rtt_p99": r["ping"].get("p99_us"),
                   "cpu_per_gbit": r["tcp1"].get("cpu_per_gbit"), "raw": r}
            for mode, r in raw.items()}  # fmt: skip


def wrong_mtu(fabric: TunnelFabric, plan: Plan, with_tcp: bool = True) -> list[dict]:
    """Per tunnel mode: hosts at the derived MTU and at the underlay's (wrong), full-size DF
    ping and one TCP stream (offloads as set; not with_tcp: the ping only)."""
    rows = []
    for mode in fabric.modes:
        if mode == "native":
            continue
        for host_mtu in (fabric.derived_mtu(mode), fabric.mtu):
            fabric.set_host_mtu(mode, host_mtu)
            pair = fabric.pairs[mode]
            t = tcp(pair, plan.seconds, 1) if with_tcp else {"gbps": None}
            big = ping_rtt(pair, 5, host_mtu - 28, df=True)
            rows.append({"mode": mode, "host_mtu": host_mtu, "derived": fabric.derived_mtu(mode),
                         "tcp1": t["gbps"], "tcp_error": t.get("error"),
                         "df_ping": f"{big['received']}/{big['sent']}"})  # fmt: skip
        fabric.set_host_mtu(mode, fabric.derived_mtu(mode))
    return rows


_log = functools.partial(print, flush=True)


def _n(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run(plan: Plan, modes: tuple[str, ...] = MODES, log=_log, quick: bool = False) -> dict:
    started = time.monotonic()
    say = log

    def log(msg: str) -> None:  # each line with the time since the start: where the run goes
        say(f"{msg}  [t+{time.monotonic() - started:.0f}s]")

    results: dict = {"runs": [], "wrong_mtu": [], "plan": plan.__dict__, "modes": list(modes),
                     "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                              "emulated": "TCG (QEMU) in the full-kernel tier"}}  # fmt: skip
    for mtu in plan.mtus:
        lab = Lab(prefix="ovt")
        try:
            t0 = time.monotonic()
            fabric = TunnelFabric(lab, mtu, modes)
            log(f"underlay MTU {mtu}: lab ready in {time.monotonic() - t0:.1f}s")
            for offload in plan.offloads:
                fabric.set_offloads(offload)
                only = QUICK_TESTS if quick else None
                for mode, r in measure_pairs(fabric.pairs, plan, only).items():
                    r.update(mtu=mtu, offloads=offload, mode=mode)
                    results["runs"].append(r)
                    log(f"  {mode:6} offloads {offload:3}: TCP {_n(r['tcp1'], 3)}/"
                        f"{_n(r['tcp4'], 3)} Gbit/s, UDP {_n(r['udp64'], 1)}/"
                        f"{_n(r['udp1400'], 1)} kpps, RTT p50 "
                        f"{r['rtt_p50'] or 0:.0f} us")  # fmt: skip
            fabric.set_offloads("on")
            if plan.wrong_mtu and mtu == 1500:
                results["wrong_mtu"] = wrong_mtu(fabric, plan, with_tcp=not quick)
                for row in results["wrong_mtu"]:
                    log(f"  {row['mode']:6} host MTU {row['host_mtu']}: TCP "
                        f"{_n(row['tcp1'], 3)} Gbit/s, DF ping {row['df_ping']}")  # fmt: skip
        finally:
            for proc in lab.processes:
                stop_process(proc)
            lab.cleanup()
    return results


def ratio(results: dict, mtu: int, offload: str, key: str, mode: str) -> float | None:
    by = {r["mode"]: r for r in results["runs"] if (r["mtu"], r["offloads"]) == (mtu, offload)}
    n, v = by.get("native", {}).get(key), by.get(mode, {}).get(key)
    return v / n if n and v is not None else None


def _combos(results: dict) -> list[tuple[int, str]]:
    return sorted({(r["mtu"], r["offloads"]) for r in results["runs"]},
                  key=lambda c: (c[0], c[1] != "on"))  # fmt: skip


def markdown(results: dict) -> str:
    modes = [m for m in results["modes"] if m != "native"]
    out = ["Emulated (QEMU/TCG, the full-kernel tier): absolute figures mean nothing, only the "
           "ratios to native of the same run do.", ""]  # fmt: skip
    for mtu, off in _combos(results):
        by = {r["mode"]: r for r in results["runs"] if (r["mtu"], r["offloads"]) == (mtu, off)}
        out += [f"Underlay MTU {mtu}, offloads {_offloads(off)}: value (ratio to native)", "",
                "| metric | native | " + " | ".join(modes) + " |",
                "|---" * (len(modes) + 2) + "|"]  # fmt: skip
        for key, label, unit, _ in METRICS:
            cells = [_fmt(by["native"][key], unit)]
            for mode in modes:
                q = ratio(results, mtu, off, key, mode)
                v = _fmt(by[mode][key], unit) if unit != "Gbit/s" or by[mode][key] is None \
                    else f"{by[mode][key]:.3f}"  # fmt: skip
                cells.append(f"{v} (x{q:.2f})" if q else v)
            lines = f"| {label} ({unit}) | " + " | ".join(cells) + " |"
            out.append(lines)
        out.append("")
    if results["wrong_mtu"]:
        out += ["Wrong MTU: hosts at the underlay's MTU (1500) over the 1500 underlay, next to "
                "the derived MTU (offloads as set):", "",
                "| mode | host MTU | TCP 1 stream (Gbit/s) | full-size DF ping |",
                "|---|---|---|---|"]  # fmt: skip
        for row in results["wrong_mtu"]:
            tag = "derived" if row["host_mtu"] == row["derived"] else "wrong"
            out.append(f"| {row['mode']} | {row['host_mtu']} ({tag}) | {_n(row['tcp1'], 3)} | "
                       f"{row['df_ping']} |")  # fmt: skip
    return "\n".join(out) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in results["modes"] if m != "native"]
    combos = _combos(results)
    fig, axes = plt.subplots(len(combos), 1, figsize=(10, 3.2 * len(combos)), squeeze=False)
    width = 0.8 / max(len(modes), 1)
    for ax, (mtu, off) in zip(axes[:, 0], combos, strict=True):
        for i, mode in enumerate(modes):
            values = [ratio(results, mtu, off, key, mode) or 0.0 for key, *_ in METRICS]
            xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(METRICS))]
            ax.bar(xs, values, width, label=mode)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(METRICS)))
        ax.set_xticklabels([label for _, label, *_ in METRICS], fontsize=8)
        ax.set_ylabel("/ native")
        ax.set_title(f"underlay MTU {mtu}, offloads {_offloads(off)} (emulated: ratios only)",
                     fontsize=9)  # fmt: skip
        ax.legend(fontsize=7, ncol=len(modes))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(results: dict, out: Path, with_plot: bool = True) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "overlay-vm.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "overlay-vm.md").write_text(table)
    if with_plot:
        plot(results, out / "overlay-vm.png")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="seconds: MTU 1500, offloads as set")
    p.add_argument("--out", type=Path, default=Path("docs/bench"), help="output directory")
    # under TCG importing matplotlib alone takes ~35 s; the plot is tested on the host
    # (tests/unit/test_overlay_tunnels_report.py)
    p.add_argument("--no-plot", action="store_true", help="no PNG (the VM tier's quick test)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("overlay_tunnels.py: needs root (namespaces, tunnels)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results = run(QUICK if args.quick else FULL, quick=args.quick)
    results["seconds"] = time.monotonic() - t0
    print(write(results, args.out, with_plot=not args.no_plot))
    print(f"report written at t+{time.monotonic() - t0:.0f}s")
    print(f"{results['seconds']:.0f}s; wrote {args.out}/overlay-vm.json, .md"
          f"{'' if args.no_plot else ', .png'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
