"""What network policy costs on the data path: the overlay benchmark's VXLAN pair, policy off /
10 rules / 1,000 rules with a 10,000-member set.

    .venv/bin/python benchmarks/overlay_policy.py [--quick] [--out DIR]      (root)

The fabric is benchmarks/overlay.py's (two evpnd leaves, overlay hosts v1/v2 in VNI 100);
each policy is loaded on both leaves with SIGHUP, then the overlay pair is measured (TCP 1
stream, UDP 64-byte packet rate, ping RTT) with the same tools as overlay.py. The rules never
match the measured traffic, so every packet walks all of them before the default allows it:
the worst case of a first-match list. The 1,000-rule policy has one group of 10,000 static
MACs (a set lookup is a hash, not a walk) that every rule names. Modes run back to back,
`reps` times, best per mode (a shared machine's bursts hit all modes alike).

Writes DIR/overlay_policy.json and DIR/overlay_policy.md (DIR: docs/bench).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overlay import QUICK, Fabric, _best, ping_rtt, tcp, udp  # noqa: E402

from evpnd.lab.netns import Lab, stop_process, wait_for  # noqa: E402


def policy(rules: int, members: int) -> dict | None:
    if rules == 0:
        return None
    macs = [
        f"02:bb:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01" for i in range(members)
    ]
    groups = {"big": {"vni": 100, "macs": macs}, "small": {"vni": 100, "macs": macs[:1]}}
    body = [
        {"name": f"r{i}", "from": "big" if i % 2 else "small", "to": "any", "proto": "tcp",
         "ports": [20000 + i], "action": "deny"}
        for i in range(rules)
    ]  # fmt: skip
    return {"groups": groups, "rules": body, "default": "allow"}


MODES = {"off": (0, 0), "10 rules": (10, 100), "1000 rules, 10k set": (1000, 10_000)}


def load(fabric: Fabric, name: str) -> dict:
    rules, members = MODES[name]
    pol = policy(rules, members)
    for leaf in fabric.leaves:
        node = leaf.node
        if pol is None:
            node.config.pop("policy", None)
        else:
            node.config["policy"] = pol
        node.write_config()
        node.reload()

    def applied() -> bool:
        for leaf in fabric.leaves:
            st = leaf.node.data("show policy")
            if len(st["rules"]) != rules or (rules and st["last_change"] is None):
                return False
        return True

    wait_for(applied, 120, 0.5, what=f"policy {name} applied")
    time.sleep(1.0)
    st = fabric.leaves[0].node.data("show policy")
    return {"apply_seconds": (st.get("last_change") or {}).get("seconds")}


def measure(fabric: Fabric, seconds: float, pings: int, reps: int) -> dict:
    out: dict = {}
    pair = fabric.overlay
    for name in MODES:
        info = load(fabric, name)
        runs = {"tcp1": [], "udp64": [], "ping": []}
        for _ in range(reps):
            runs["tcp1"].append(tcp(pair, seconds, 1))
            runs["udp64"].append(udp(pair, seconds, 64))
            runs["ping"].append(ping_rtt(pair, pings))
        t, u, p = (_best(runs["tcp1"], "gbps", True), _best(runs["udp64"], "kpps", True),
                   _best(runs["ping"], "p50_us", False))  # fmt: skip
        out[name] = {"tcp1": t["gbps"], "udp64": u["kpps"], "rtt_p50": p.get("p50_us"),
                     "rtt_p99": p.get("p99_us"), **info}  # fmt: skip
        print(f"  {name:20}: TCP {t['gbps']:.2f} Gbit/s, UDP 64 B {u['kpps']:.0f} kpps, "
              f"RTT p50 {p.get('p50_us') or 0:.0f} us", flush=True)  # fmt: skip
    return out


def markdown(results: dict) -> str:
    rows = results["modes"]
    base = rows["off"]
    lines = [
        "| policy | TCP 1 stream | UDP 64 B | RTT p50 | RTT p99 | last transaction |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():

        def rel(key: str, r: dict = r) -> str:
            return f" ({r[key] / base[key]:.2f}x)" if base.get(key) and r.get(key) else ""

        apply = f"{r['apply_seconds']:.2f} s" if r.get("apply_seconds") else "-"
        lines.append(
            f"| {name} | {r['tcp1']:.2f} Gbit/s{rel('tcp1')} | {r['udp64']:.0f} kpps"
            f"{rel('udp64')} | {r['rtt_p50'] or 0:.0f} us | {r['rtt_p99'] or 0:.0f} us | {apply} |"
        )
    load = results["host"]
    lines.append("")
    lines.append(f"Load average {load['loadavg_start'][0]:.1f} -> {load['loadavg_end'][0]:.1f} "
                 f"on {load['cpus']} CPUs (shared machine: noisy).")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, one repetition")
    p.add_argument("--out", type=Path, default=Path("docs/bench"))
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("overlay_policy.py: needs root (namespaces, veth, evpnd, nftables)", file=sys.stderr)
        return 2
    seconds, pings, reps = (QUICK.seconds, 200, 1) if args.quick else (3.0, 1000, 2)
    results: dict = {"host": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}
    lab = Lab(prefix="ovp")
    t0 = time.monotonic()
    try:
        fabric = Fabric(lab, 1500)
        results["modes"] = measure(fabric, seconds, pings, reps)
    finally:
        for proc in lab.processes:
            stop_process(proc)
        lab.cleanup()
    results["host"]["loadavg_end"] = os.getloadavg()
    results["seconds"] = time.monotonic() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overlay_policy.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "overlay_policy.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
