"""Send path: N local type-2 routes announced through the Speaker until FRR has them all.

    .venv/bin/python benchmarks/bgp_send.py [N ...]      (root; default 10000 50000)

Times from Speaker.announce() (routes handed over in one call, as the core does after a
start) to FRR's `pfxRcd` for the session reaching N. FRR has no VNI matching the routes, so
what is timed is evpnd + ExaBGP + BGP transport + FRR's BGP input, not FRR's zebra/kernel.
Prints figures, not pass/fail (targets: 10k <= 1 s, 50k <= 5 s).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from evpnd.lab.netns import Lab  # noqa: E402
from tests.netns.speaker_lab import (  # noqa: E402
    Recorder,
    frr_peer,
    frr_received,
    mac_paths,
    make_speaker,
    pair,
    peer,
    speaker_config,
    until,
)


async def run_one(n: int) -> dict:
    lab = Lab(prefix="bsend")
    try:
        p = pair(lab)
        frr = frr_peer(lab, p.b, [("10.0.1.1", 65001)])
        tmp = FsPath(tempfile.mkdtemp(prefix="evpnd-bench-"))
        cfg = speaker_config(tmp, peers=[peer("10.0.1.2", 65002, "10.0.1.1")])
        rec = Recorder()
        speaker = make_speaker(cfg, p.a, rec)
        await speaker.start()
        try:
            await until(lambda: rec.state("10.0.1.2") == "up", 30, what="session up")
            await asyncio.sleep(0.5)
            paths = mac_paths(n)
            t0 = time.perf_counter()
            speaker.announce(paths)
            await speaker.sync(120)
            t_exabgp = time.perf_counter() - t0
            await until(lambda: frr_received(frr, "10.0.1.1") >= n, 300, 0.02, "FRR has all")
            total = time.perf_counter() - t0
            rss = _rss(speaker.status()["exabgp_pid"])
            return {"n": n, "accepted_by_exabgp_s": t_exabgp, "received_by_frr_s": total,
                    "routes_per_s": n / total, "exabgp_rss_mib": rss}  # fmt: skip
        finally:
            await speaker.stop()
    finally:
        lab.cleanup()


def _rss(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/status") as status:
            lines = status.readlines()
        for line in lines:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 50_000]
    for n in sizes:
        r = asyncio.run(run_one(n))
        print(
            f"send {r['n']:>7} type-2: ExaBGP took them in {r['accepted_by_exabgp_s']:.2f} s, "
            f"FRR received all in {r['received_by_frr_s']:.2f} s "
            f"({r['routes_per_s']:,.0f} routes/s), ExaBGP RSS {r['exabgp_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
