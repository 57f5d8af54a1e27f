"""Send path: N local type-2 routes announced through the Speaker until FRR has them all.

    .venv/bin/python benchmarks/bgp_send.py [N ...]      (root; default 10000 50000)
    .venv/bin/python benchmarks/bgp_send.py --offline [N ...]   where the time goes

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


def offline_breakdown(n: int) -> None:
    """Where the time goes, without the network: evpnd's encoding, ExaBGP's queueing and
    packing, against what a stock-style path costs (ExaBGP's EVPN objects, a deep copy per
    route and neighbour, one UPDATE per NLRI)."""
    from copy import deepcopy

    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import Attributes, Origin
    from exabgp.bgp.message.update.nlri.evpn.mac import MAC
    from exabgp.bgp.message.update.nlri.qualifier import (
        ESI,
        EthernetTag,
        Labels,
        RouteDistinguisher,
    )
    from exabgp.bgp.message.update.nlri.qualifier import MAC as MacQualifier
    from exabgp.protocol.ip import IP
    from exabgp.rib.change import Change

    from evpnd.bgp import batch
    from evpnd.bgp.exabgp import extension
    from tests.unit.exabgp_helpers import negotiated_and_neighbor, outgoing_rib

    negotiated, _ = negotiated_and_neighbor()
    extension.tune_gc()  # as in the ExaBGP process
    paths = mac_paths(n)
    ops = [(True, p) for p in paths]
    t = time.perf_counter()
    lines = [batch.line("t", "*", ops[i : i + 1000]) for i in range(0, n, 1000)]
    t_encode = time.perf_counter() - t
    rib = outgoing_rib()
    t = time.perf_counter()
    for line in lines:
        extension.apply_groups([rib], line.partition(" ; ")[2].strip())
    t_queue = time.perf_counter() - t
    t = time.perf_counter()
    messages = [m for u in rib.updates(True) for m in u.messages(negotiated)]
    t_pack = time.perf_counter() - t
    print(f"offline, {n} type-2 routes:")
    print(
        f"  evpnd: encode `evpnd routes` lines {t_encode:.2f} s ({sum(map(len, lines)) >> 10} KiB)"
    )
    print(f"  ExaBGP: parse + queue in Adj-RIB-Out {t_queue:.2f} s, pack {len(messages)} UPDATEs "
          f"{t_pack:.2f} s")  # fmt: skip
    m = min(n, 10_000)
    attrs = Attributes()
    attrs.add(Origin(Origin.IGP))
    nexthop = IP.create("192.0.2.1")
    t = time.perf_counter()
    stock = []
    for i in range(m):
        nlri = MAC(RouteDistinguisher.fromElements("192.0.2.1", 1), ESI(), EthernetTag(0),
                   MacQualifier(paths[i].key.mac), 48, Labels([100]), None,
                   nexthop=nexthop, action=Action.ANNOUNCE)  # fmt: skip
        stock.append(deepcopy(Change(nlri, attrs)))
    t_objects = time.perf_counter() - t
    t = time.perf_counter()
    count = sum(1 for c in stock for _ in Update([c.nlri], attrs).messages(negotiated))
    t_single = time.perf_counter() - t
    print(f"  stock-style, {m} routes: EVPN objects + deepcopy {t_objects:.2f} s, "
          f"{count} one-NLRI UPDATEs {t_single:.2f} s")  # fmt: skip


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:] if not a.startswith("--")] or [10_000, 50_000]
    for n in sizes:
        if "--offline" in sys.argv:
            offline_breakdown(n)
            continue
        r = asyncio.run(run_one(n))
        print(
            f"send {r['n']:>7} type-2: ExaBGP took them in {r['accepted_by_exabgp_s']:.2f} s, "
            f"FRR received all in {r['received_by_frr_s']:.2f} s "
            f"({r['routes_per_s']:,.0f} routes/s), ExaBGP RSS {r['exabgp_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
