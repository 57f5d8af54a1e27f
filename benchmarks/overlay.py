"""What the overlay costs: hosts behind two leaves, natively routed vs VXLAN through evpnd.

    .venv/bin/python benchmarks/overlay.py [--quick] [--out DIR]      (root)

Two leaves joined by one veth underlay link; on each leaf a natively routed host (its own
subnet, the leaves route between them: no encapsulation) and an overlay host (VNI 100, the
bridge and VXLAN device of a real evpnd daemon, which also carries the BGP session). Both pairs
cross the same underlay, so each overlay figure is shown with its ratio to the native figure
of the same run. Measured, for underlay MTU 1500 and 9000, with the offloads the kernel sets
and with GSO/GRO/TSO off on every interface (ethtool -K):

  TCP throughput   iperf3, 1 and 4 streams
  UDP packet rate  iperf3 -u -b 0, 64- and 1400-byte payloads: packets/s received
  latency          ping RTT p50/p99 over 1000 probes 2 ms apart
  CPU per Gbit/s   iperf3's CPU use (client + server, % of one core) over the 1-stream TCP
                   run, per Gbit/s: kernel work done in the senders' and receivers' context

and the cost of a wrong MTU: overlay hosts at MTU 1500 over the 1500 underlay (their frames do
not fit the 1450-byte VXLAN device) next to the derived MTU 1450: TCP throughput and whether
a full-size DF ping passes.

Writes DIR/overlay.json, DIR/overlay.md (the tables) and DIR/overlay.png (ratios to native);
DIR is docs/bench unless --out says otherwise (the README shows those files).
Each test runs for native and then VXLAN back to back, twice, and the better of the two runs
counts per mode: on a shared machine that filters out most of the other users' bursts, and the
ratio compares figures taken seconds apart. The full run takes about 5-6 minutes; --quick
(MTU 1500, offloads as set, one short run each) about 20 seconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evpnd.lab.netns import Lab, Netns, stop_process, wait_for  # noqa: E402
from tests.netns.fabric import Leaf, evpnd_config, start_evpnd  # noqa: E402

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
METRICS = [  # key, label, unit, higher is better
    ("tcp1", "TCP 1 stream", "Gbit/s", True),
    ("tcp4", "TCP 4 streams", "Gbit/s", True),
    ("udp64", "UDP 64 B", "kpps", True),
    ("udp1400", "UDP 1400 B", "kpps", True),
    ("rtt_p50", "RTT p50", "us", False),
    ("rtt_p99", "RTT p99", "us", False),
    ("cpu_per_gbit", "CPU per Gbit/s", "% core", False),
]


@dataclass
class Plan:
    mtus: list[int]
    offloads: list[str]  # "on" (as the kernel sets them) and/or "off"
    seconds: float  # per iperf3 run
    pings: int
    reps: int  # repetitions of each test; the best counts
    wrong_mtu: bool


FULL = Plan([1500, 9000], ["on", "off"], 3.0, 1000, 2, True)
QUICK = Plan([1500], ["on"], 1.0, 100, 1, True)


@dataclass
class Pair:
    client: Netns
    server: Netns
    server_ip: str


class Fabric:
    """Leaves l1/l2 (underlay MTU `mtu`), native hosts n1/n2, overlay hosts v1/v2 in VNI 100."""

    def __init__(self, lab: Lab, mtu: int) -> None:
        self.lab, self.mtu = lab, mtu
        a = Leaf(lab.netns("l1"), "10.0.0.1", 65001)
        b = Leaf(lab.netns("l2"), "10.0.0.2", 65002)
        lab.link(a.ns, "uplink", b.ns, "uplink", "10.0.0.1/30", "10.0.0.2/30", mtu=mtu)
        self.leaves = (a, b)
        hosts = {}
        for i, leaf in enumerate((a, b), 1):
            leaf.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            n = lab.netns(f"n{i}")
            lab.link(n, "eth0", leaf.ns, "pn", f"10.1.{i}.1/24", f"10.1.{i}.254/24", mtu=mtu)
            n.ip("route", "add", "default", "via", f"10.1.{i}.254")
            other = 3 - i
            leaf.ns.ip("route", "add", f"10.1.{other}.0/24", "via", f"10.0.0.{other}")
            v = lab.netns(f"v{i}")
            lab.link(v, "eth0", leaf.ns, "pv", f"10.100.0.{i}/24", None, mtu=mtu - VXLAN_OVERHEAD)
            v.ip("link", "set", "eth0", "address", f"02:aa:00:00:0{i}:01")
            hosts[f"n{i}"], hosts[f"v{i}"] = n, v
        self.hosts = hosts
        for leaf, peer in ((a, b), (b, a)):
            vnis = [{"vni": 100, "bridge": "br100", "access_ports": ["pv"]}]
            start_evpnd(lab, leaf, evpnd_config(leaf, [peer], vnis, underlay_mtu=mtu))
        self.native = Pair(hosts["n1"], hosts["n2"], "10.1.2.1")
        self.overlay = Pair(hosts["v1"], hosts["v2"], "10.100.0.2")
        for pair in (self.native, self.overlay):
            wait_for(lambda p=pair: p.client.ping(p.server_ip, timeout=0.5), 60, 0.3,
                     what=f"ping {pair.server_ip}")  # fmt: skip
            # one iperf3 server per pair for the whole run, ended by the lab (by PID)
            lab.start(pair.server, ["iperf3", "-s", "-B", pair.server_ip])
        time.sleep(0.3)

    def set_offloads(self, state: str) -> None:
        """GSO, GRO and TSO on every interface of the lab (the evpnd devices included)."""
        self.offloads = set_offloads([*(leaf.ns for leaf in self.leaves), *self.hosts.values()],
                                     state, getattr(self, "offloads", None))  # fmt: skip

    def set_overlay_host_mtu(self, mtu: int) -> None:
        for i, leaf in enumerate(self.leaves, 1):
            leaf.ns.ip("link", "set", "pv", "mtu", str(mtu))
            self.hosts[f"v{i}"].ip("link", "set", "eth0", "mtu", str(mtu))


def iperf3(pair: Pair, seconds: float, *args: str) -> dict:
    cmd = ["iperf3", "-c", pair.server_ip, "-t", f"{seconds:g}", "-J", "--connect-timeout",
           "3000", *args]  # fmt: skip
    proc = subprocess.run(pair.client.cmd(*cmd), capture_output=True, text=True,
                          timeout=seconds + 30)  # fmt: skip
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": proc.stderr.strip() or "no output"}
    return out


def tcp(pair: Pair, seconds: float, streams: int) -> dict:
    out = iperf3(pair, seconds, "-P", str(streams))
    end = out.get("end", {})
    received = end.get("sum_received", {}).get("bits_per_second")
    if received is None:
        return {"gbps": 0.0, "error": out.get("error", "no result")}
    cpu = end.get("cpu_utilization_percent", {})
    gbps = received / 1e9
    busy = cpu.get("host_total", 0.0) + cpu.get("remote_total", 0.0)
    return {"gbps": gbps, "cpu_percent": busy, "cpu_per_gbit": busy / gbps if gbps else None,
            "retransmits": end.get("sum_sent", {}).get("retransmits")}  # fmt: skip


def udp(pair: Pair, seconds: float, size: int) -> dict:
    out = iperf3(pair, seconds, "-u", "-b", "0", "-l", str(size))
    s = out.get("end", {}).get("sum", {})
    if "packets" not in s:
        return {"kpps": 0.0, "error": out.get("error", "no result")}
    got = s["packets"] - s.get("lost_packets", 0)
    return {"kpps": got / s["seconds"] / 1e3, "lost_percent": s.get("lost_percent")}


OFFLOADS = {"gso": "generic-segmentation-offload", "gro": "generic-receive-offload",
            "tso": "tcp-segmentation-offload"}  # fmt: skip


def set_offloads(namespaces: list[Netns], state: str, saved: dict | None) -> dict | None:
    """ "on" is the offloads as the kernel set them (the tables say "as set"): a fresh lab is
    left alone, and after "off" each interface gets back exactly what it had (veth, for one,
    starts with GRO off). "off": GSO, GRO and TSO off on every interface, after noting what
    they were. Returns what to pass next time (the noted state, or None: as set)."""
    if state == "on":
        for (_, ifname), (ns, features) in (saved or {}).items():
            args = [w for key, on in features.items() for w in (key, "on" if on else "off")]
            ns.run(["ethtool", "-K", ifname, *args], check=False)
        return None
    noted = saved if saved is not None else {}
    for ns in namespaces:
        for link in json.loads(ns.run(["ip", "-j", "link", "show"])):
            ifname = link["ifname"]
            if ifname == "lo":
                continue
            if (ns.name, ifname) not in noted:
                shown = ns.run(["ethtool", "-k", ifname], check=False)
                have = dict(line.strip().split(": ", 1)[:2] for line in shown.splitlines()
                            if ": " in line)  # fmt: skip
                noted[(ns.name, ifname)] = (ns, {key: have.get(name, "off").startswith("on")
                                                 for key, name in OFFLOADS.items()})  # fmt: skip
            ns.run(["ethtool", "-K", ifname, "gso", "off", "gro", "off", "tso", "off"],
                   check=False)  # fmt: skip
    return noted


def ping_rtt(pair: Pair, count: int, size: int = 56, df: bool = False) -> dict:
    cmd = ["ping", "-n", "-c", str(count), "-i", "0.002", "-W", "1", "-s", str(size)]
    if df:
        cmd += ["-M", "do"]
    proc = subprocess.run(pair.client.cmd(*cmd, pair.server_ip), capture_output=True,
                          text=True, timeout=count * 0.01 + 30)  # fmt: skip
    rtts = sorted(float(w[5:]) * 1000 for line in proc.stdout.splitlines()
                  for w in line.split() if w.startswith("time="))  # fmt: skip
    if not rtts:
        return {"received": 0, "sent": count}
    q = statistics.quantiles(rtts, n=100, method="inclusive")
    return {"received": len(rtts), "sent": count, "p50_us": q[49], "p99_us": q[98]}


def _best(results: list[dict], key: str, higher: bool) -> dict:
    """The best of the repetitions: what the path can do when the shared machine lets it."""
    ok = [r for r in results if r.get(key) is not None]
    if not ok:
        return results[0]
    return (max if higher else min)(ok, key=lambda r: r[key])


def measure(fabric: Fabric, plan: Plan) -> dict[str, dict]:
    """Each test for native then VXLAN back to back (so load from others hits both alike),
    `plan.reps` times; per mode the best repetition."""
    pairs = {"native": fabric.native, "vxlan": fabric.overlay}
    tests = {
        "tcp1": (lambda p: tcp(p, plan.seconds, 1), "gbps", True),
        "tcp4": (lambda p: tcp(p, plan.seconds, 4), "gbps", True),
        "udp64": (lambda p: udp(p, plan.seconds, 64), "kpps", True),
        "udp1400": (lambda p: udp(p, plan.seconds, 1400), "kpps", True),
        "ping": (lambda p: ping_rtt(p, plan.pings), "p50_us", False),
    }
    raw: dict[str, dict] = {mode: {} for mode in pairs}
    for name, (fn, key, higher) in tests.items():
        reps: dict[str, list[dict]] = {mode: [] for mode in pairs}
        for _ in range(plan.reps):
            for mode, pair in pairs.items():
                reps[mode].append(fn(pair))
        for mode in pairs:
            raw[mode][name] = _best(reps[mode], key, higher)
    out = {}
    for mode, r in raw.items():
        out[mode] = {
            "tcp1": r["tcp1"]["gbps"],
            "tcp4": r["tcp4"]["gbps"],
            "udp64": r["udp64"]["kpps"],
            "udp1400": r["udp1400"]["kpps"],
            "rtt_p50": r["ping"].get("p50_us"),
            "rtt_p99": r["ping"].get("p99_us"),
            "cpu_per_gbit": r["tcp1"].get("cpu_per_gbit"),
            "raw": r,
        }
    return out


def fragments(fabric: Fabric) -> int:
    """IPv4 fragments the leaves have created (FragCreates of /proc/net/snmp, both leaves)."""
    total = 0
    for leaf in fabric.leaves:
        lines = [ln.split() for ln in leaf.ns.run(["cat", "/proc/net/snmp"]).splitlines()
                 if ln.startswith("Ip:")]  # fmt: skip
        total += int(lines[1][lines[0].index("FragCreates")])
    return total


def wrong_mtu(fabric: Fabric, plan: Plan) -> list[dict]:
    """Overlay hosts at the derived MTU (1450) and at 1500 (wrong) over the 1500 underlay.

    With offloads, TCP's GSO super-packets pass the bridge (the kernel checks only non-GSO
    frames against the VXLAN device's MTU), are cut into 1514-byte frames and their 1564-byte
    VXLAN packets are fragmented by the leaf (the outer DF bit is not set): slower, and every
    frame that is not GSO (a full-size ping, a retransmission) is dropped. Without offloads
    every full-size frame is dropped: a black hole.
    """
    rows = []
    for offload in plan.offloads:
        fabric.set_offloads(offload)
        for host_mtu in (fabric.mtu - VXLAN_OVERHEAD, fabric.mtu):
            fabric.set_overlay_host_mtu(host_mtu)
            frags = fragments(fabric)
            t = tcp(fabric.overlay, plan.seconds, 1)
            frags = fragments(fabric) - frags
            big = ping_rtt(fabric.overlay, 5, host_mtu - 28, df=True)
            rows.append({"offloads": offload, "host_mtu": host_mtu, "tcp1": t["gbps"],
                         "tcp_error": t.get("error"), "retransmits": t.get("retransmits"),
                         "fragments": frags,
                         "df_ping": f"{big['received']}/{big['sent']}"})  # fmt: skip
        fabric.set_overlay_host_mtu(fabric.mtu - VXLAN_OVERHEAD)
    fabric.set_offloads("on")
    return rows


_log = functools.partial(print, flush=True)


def run(plan: Plan, log=_log) -> dict:
    results: dict = {"runs": [], "wrong_mtu": [], "plan": plan.__dict__,
                     "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                              "loadavg_start": os.getloadavg()}}  # fmt: skip
    for mtu in plan.mtus:
        lab = Lab(prefix="ovb")
        try:
            t0 = time.monotonic()
            fabric = Fabric(lab, mtu)
            log(f"underlay MTU {mtu}: lab ready in {time.monotonic() - t0:.1f}s")
            for offload in plan.offloads:
                fabric.set_offloads(offload)
                for mode, r in measure(fabric, plan).items():
                    r.update(mtu=mtu, offloads=offload, mode=mode)
                    results["runs"].append(r)
                    log(f"  {mode:6} offloads {offload:3}: TCP {r['tcp1']:.2f}/{r['tcp4']:.2f} "
                        f"Gbit/s, UDP {r['udp64']:.0f}/{r['udp1400']:.0f} kpps, RTT p50 "
                        f"{r['rtt_p50'] or 0:.0f} us")  # fmt: skip
            if plan.wrong_mtu and mtu == 1500:
                results["wrong_mtu"] = wrong_mtu(fabric, plan)
                for row in results["wrong_mtu"]:
                    log(
                        f"  overlay host MTU {row['host_mtu']}, offloads {row['offloads']}: "
                        f"TCP {row['tcp1']:.2f} Gbit/s, {row['fragments']} fragments, "
                        f"DF ping {row['df_ping']}"
                    )
        finally:
            for proc in lab.processes:
                stop_process(proc)
            lab.cleanup()
    results["host"]["loadavg_end"] = os.getloadavg()
    return results


def ratio(results: dict, mtu: int, offload: str, key: str) -> float | None:
    by = {r["mode"]: r for r in results["runs"] if (r["mtu"], r["offloads"]) == (mtu, offload)}
    n, v = by.get("native", {}).get(key), by.get("vxlan", {}).get(key)
    return v / n if n and v is not None else None


def _offloads(state: str) -> str:
    return "as set" if state == "on" else "off"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "Gbit/s":
        return f"{value:.2f}"
    return f"{value:.0f}"


def markdown(results: dict) -> str:
    combos = sorted({(r["mtu"], r["offloads"]) for r in results["runs"]},
                    key=lambda c: (c[0], c[1] != "on"))  # fmt: skip
    head = "| metric | " + " | ".join(f"MTU {m}, offloads {_offloads(o)}" for m, o in combos)
    lines = [head + " |", "|---" * (len(combos) + 1) + "|"]
    for key, label, unit, _ in METRICS:
        cells = []
        for mtu, off in combos:
            by = {r["mode"]: r for r in results["runs"] if (r["mtu"], r["offloads"]) == (mtu, off)}
            n, v = by["native"][key], by["vxlan"][key]
            q = ratio(results, mtu, off, key)
            cells.append(f"{_fmt(v, unit)} / {_fmt(n, unit)} (x{q:.2f})" if q else
                         f"{_fmt(v, unit)} / {_fmt(n, unit)}")  # fmt: skip
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    out = ["VXLAN / native (ratio to native), same run:", "", *lines]
    if results["wrong_mtu"]:
        out += ["", "Wrong MTU: overlay hosts over the 1500-byte underlay (VXLAN device 1450):",
                "", "| overlay host MTU | offloads | TCP 1 stream (Gbit/s) | TCP retransmits | "
                "outer fragments | full-size DF ping |", "|---|---|---|---|---|---|"]  # fmt: skip
        for row in results["wrong_mtu"]:
            tag = "derived" if row["host_mtu"] == 1450 else "wrong"
            off = _offloads(row["offloads"])
            out.append(f"| {row['host_mtu']} ({tag}) | {off} | {row['tcp1']:.2f} | "
                       f"{row['retransmits']} | {row['fragments']} | "
                       f"{row['df_ping']} |")  # fmt: skip
    return "\n".join(out) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = sorted({(r["mtu"], r["offloads"]) for r in results["runs"]},
                    key=lambda c: (c[0], c[1] != "on"))  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(len(combos), 1)
    for i, (mtu, off) in enumerate(combos):
        values = [ratio(results, mtu, off, key) or 0.0 for key, *_ in METRICS]
        xs = [j + (i - (len(combos) - 1) / 2) * width for j in range(len(METRICS))]
        bars = ax.bar(xs, values, width, label=f"MTU {mtu}, offloads {_offloads(off)}")
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, value),
                        ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(METRICS)))
    ax.set_xticklabels([f"{label}\n({'higher' if up else 'lower'} is better)"
                        for _, label, _, up in METRICS], fontsize=8)  # fmt: skip
    ax.set_ylabel("VXLAN / native (same run)")
    ax.set_title("Overlay cost: VXLAN through evpnd vs native routing, veth underlay")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="seconds: MTU 1500, offloads as set")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("docs/bench"),
        help="output directory (default docs/bench, what the README shows)",
    )
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("overlay.py: needs root (namespaces, veth, evpnd)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results = run(QUICK if args.quick else FULL)
    results["seconds"] = time.monotonic() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overlay.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "overlay.md").write_text(table)
    plot(results, args.out / "overlay.png")
    print(table)
    print(f"{results['seconds']:.0f}s; wrote {args.out}/overlay.json, overlay.md, overlay.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
