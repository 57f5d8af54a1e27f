"""The evpn-fabric lab at full size: 2 FRR route reflectors, 16 evpnd leaves, 2 FRR leaves, a
host and MACS (default 1,000) learned MACs behind every leaf (containerlab/evpn-fabric).

Brings the fabric up in network namespaces (or --runtime docker), waits for every session and
flood list, then measures (evpnd/lab/fabric.py run_scenario):
  * time from the first MAC added until every leaf's kernel holds all 17 x MACS remote MACs
    at the right VTEP (max over leaves, and the spread);
  * a MAC move (leaf01 -> leaf16) until every other leaf forwards it to the new VTEP (max);
  * rr1 killed (SIGKILL of bgpd and zebra): FDB deletions of the injected MACs seen by
    `bridge monitor fdb` on every leaf, MACs missing after twice the hold time, pings between
    hosts across the window;
  * peak RSS (VmHWM) per evpnd leaf: evpnd and its children (ExaBGP + the API relay), and the
    CPU seconds they used from start to the end of the run.
Prints figures, not pass/fail; the lab is always removed (`down` by its name), also on failure.

    .venv/bin/python benchmarks/fabric.py [--macs 1000] [--runtime netns|docker] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

from evpnd.lab import fabric, runner

TOPOLOGY = Path(__file__).resolve().parents[1] / "containerlab/evpn-fabric/evpn-fabric.clab.yml"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--macs", type=int, default=1000, help="MACs behind every leaf")
    p.add_argument("--runtime", choices=["netns", "docker"], default="netns")
    p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = p.parse_args()
    progress = runner.default_progress()
    name = f"fabbench{uuid.uuid4().hex[:4]}"
    t0 = time.monotonic()
    try:
        lab = runner.up(TOPOLOGY, name=name, progress=progress, runtime=args.runtime)
        up_s = time.monotonic() - t0
        runner.wait_converged(lab, timeout=180, progress=progress)
        conv_s = time.monotonic() - t0
        res = fabric.run_scenario(lab, args.macs, progress)
    except (runner.LabError, RuntimeError) as exc:
        print(f"fabric benchmark: {exc}", file=sys.stderr)
        if not args.keep:
            runner.down(name, progress)
        return 1
    if not args.keep:
        runner.down(name, progress)
    else:
        print(f"lab left up: python -m evpnd.lab down {name}")

    remote = res.per_leaf * (res.leaves - 1)
    times = sorted(res.all_macs_by_leaf.values())
    rss = res.rss or {}
    print(f"\n=== evpn-fabric, {res.leaves} leaves x {res.per_leaf} MACs ({args.runtime})")
    print(f"lab up (nodes, links, daemons started)     {up_s:6.1f} s")
    print(f"sessions + flood lists converged           {conv_s:6.1f} s after the start")
    print(f"MACs added to every leaf's bridge          {res.inject_s:6.1f} s (one batch per leaf)")
    print(f"every leaf holds all {remote} remote MACs  {res.all_macs_s:6.1f} s after the first was "
          f"added (leaves: min {times[0]:.1f}, median {statistics.median(times):.1f})")  # fmt: skip
    print(f"MAC move seen by every leaf                {res.move_s:6.2f} s (max over leaves; "
          f"median {statistics.median(res.move_by_leaf.values()):.2f})")  # fmt: skip
    print(f"{res.rr_killed} killed (sessions down on {res.rr_down_on} evpnd leaves): injected-MAC"
          " FDB deletions per leaf max "
          f"{max(res.rr_fdb_deletions.values())}, MACs missing per leaf max "
          f"{max(res.rr_missing.values())}, pings (sent, received) {res.rr_pings}")  # fmt: skip
    if rss:
        ev = [r.evpnd for r in rss.values()]
        ch = [r.children for r in rss.values()]
        tot = [r.total for r in rss.values()]
        cpu = list((res.cpu_s or {}).values())
        print(f"peak RSS per evpnd leaf (MiB)              evpnd {min(ev):.0f}-{max(ev):.0f}, "
              f"ExaBGP+relay {min(ch):.0f}-{max(ch):.0f}, together {min(tot):.0f}-{max(tot):.0f}"
              f" (all {len(rss)} leaves: {sum(tot):.0f})")  # fmt: skip
        print(f"CPU per evpnd leaf (evpnd+ExaBGP+relay)    {min(cpu):.1f}-{max(cpu):.1f} s for "
              "the whole run")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
