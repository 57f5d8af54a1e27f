"""Receive-path throughput: ExaBGP JSON lines -> events -> Core -> desired kernel state.

Generates N type-2 routes (default 100,000) as ExaBGP 5 JSON lines in the exact shape of
tests/fixtures/exabgp/received-json-samples.jsonl: 100 NLRIs per UPDATE line under one next
hop, from one route-reflector peer, half MAC-only and half MAC+IP routes (two per host), spread
over 50 remote VTEPs. Then times, per stage:
  decode  evpnd.bgp.codec.decode_line(line) -> events
  core    Core.apply(event, now)
  drain   desired.drain() and reading the wanted value of every dirty key (what the
          dataplane's reconciler does)
and the same for withdrawing every route (FRR-style withdraws: label [[0]]).
Prints routes/s per stage and in total, and the peak RSS. Figures, not pass/fail.

    .venv/bin/python benchmarks/core.py [--routes N] [--repeat R] [--profile]
                                         [--gc-threshold G0 G1 G2]

Measured on the 2-core development VM (shared, so best of 3; 2026-11-25):
  announce 100k: decode ~240k/s, core ~300k/s, drain ~1.1M/s, total ~110-121k routes/s
  withdraw 100k: decode ~255k/s, core ~330k/s, drain ~1.5M/s, total ~129-133k routes/s
  with --gc-threshold 50000 20 100: total ~166k (announce) and ~187k (withdraw) routes/s;
  Python's default collector spends 30-40% of the announce run in full collections (every
  Path and key is a NamedTuple, which the collector never untracks).
  The core holds ~62 MiB for 100k type-2 routes (RIB, indexes, desired state).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import resource
import sys
import time
import tracemalloc
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parents[1]))

from evpnd.config import core_settings, parse_config  # noqa: E402
from evpnd.core import Core  # noqa: E402

PEER = "10.0.1.2"
PER_LINE = 100
VTEPS = 50
VNI = 100


def _config():
    return parse_config(
        {
            "router_id": "192.0.2.1",
            "asn": 65001,
            "vtep": "192.0.2.1",
            "peers": [{"address": PEER, "remote_as": 65002}],
            "l2vnis": [{"vni": VNI, "bridge": "br100"}, {"vni": 200, "bridge": "br200"}],
        }
    )


def _rd_hex(ip: str, num: int) -> str:
    a, b, c, d = (int(x) for x in ip.split("."))
    return f"0001{a:02X}{b:02X}{c:02X}{d:02X}{num:04X}"


def _nlri(vtep: str, host: int, with_ip: bool) -> dict:
    """One type-2 NLRI as ExaBGP prints it (raw hex included: the codec reads label 2 there)."""
    mac = f"02:{(host >> 24) & 0xFF:02X}:{(host >> 16) & 0xFF:02X}:{(host >> 8) & 0xFF:02X}:" + (
        f"{host & 0xFF:02X}:01"
    )
    ip = f"10.{(host >> 16) & 0xFF}.{(host >> 8) & 0xFF}.{host & 0xFF}"
    body = _rd_hex(vtep, VNI) + "00" * 10 + "00000000" + "30" + mac.replace(":", "")
    if with_ip:
        body += "20" + "".join(f"{int(x):02X}" for x in ip.split("."))
    else:
        body += "00"
    body += f"{VNI:06X}"
    nlri = {
        "code": 2,
        "parsed": True,
        "raw": f"02{len(body) // 2:02X}{body}",
        "name": "MAC/IP advertisement",
        "rd": f"{vtep}:{VNI}",
        "esi": "-",
        "ethernet-tag": 0,
        "mac": mac,
        "label": [[6, VNI]],
    }
    if with_ip:
        nlri["ip"] = ip
    return nlri


def _line(counter: int, update: dict) -> str:
    msg = {
        "exabgp": "5.0.0",
        "time": 1795639032.542479 + counter,
        "host": "vm",
        "pid": 8771,
        "ppid": 1,
        "counter": counter,
        "type": "update",
        "neighbor": {
            "address": {"local": "10.0.1.1", "peer": PEER},
            "asn": {"local": 65001, "peer": 65002},
            "router-id": "192.0.2.1",
            "direction": "receive",
            "message": {"update": update},
        },
    }
    return json.dumps(msg)


ATTRIBUTE = {
    "origin": "igp",
    "as-path": {"0": {"element": "as-sequence", "value": [65002]}},
    "extended-community": [
        {"value": 842122827661412, "string": "target:65000:100"},
        {"value": 219550481834311688, "string": "encap:VXLAN"},
    ],
}


def generate(routes: int) -> tuple[list[str], list[str]]:
    """(announce lines, withdraw lines), 100 NLRIs per line, one next hop per line."""
    announce, withdraw = [], []
    nlris = []
    for i in range(routes):
        host, with_ip = divmod(i, 2)
        vtep = f"192.0.2.{10 + (host // PER_LINE) % VTEPS}"
        nlris.append((vtep, _nlri(vtep, host, bool(with_ip))))
    for counter, start in enumerate(range(0, routes, PER_LINE), start=1):
        chunk = nlris[start : start + PER_LINE]
        by_nh: dict[str, list[dict]] = {}
        for vtep, nlri in chunk:
            by_nh.setdefault(vtep, []).append(nlri)
        announce.append(_line(counter, {"attribute": ATTRIBUTE, "announce": {"l2vpn evpn": by_nh}}))
        gone = []
        for _, nlri in chunk:
            w = dict(nlri)
            w["label"] = [[0]]  # FRR withdraws with label 0
            gone.append(w)
        withdraw.append(_line(counter, {"withdraw": {"l2vpn evpn": gone}}))
    return announce, withdraw


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_stage(core: Core, lines: list[str], decode_line) -> dict[str, float]:
    """Times each stage in wall-clock seconds and in CPU seconds of this process (the machine
    is shared, so CPU time is the steadier figure)."""
    gc.collect()
    t0 = _clock()
    events = []
    for line in lines:
        events.extend(decode_line(line))
    t1 = _clock()
    apply = core.apply
    now = 1000.0
    for event in events:
        apply(event, now)
    t2 = _clock()
    desired = core.desired
    wanted = 0
    lookup = desired.lookup
    for kind, vni, key in desired.drain():
        if lookup(kind, vni, key) is not None:
            wanted += 1
    t3 = _clock()
    out: dict[str, float] = {"wanted": wanted}
    for i, clock in enumerate(("wall", "cpu")):
        out[f"decode_{clock}"] = t1[i] - t0[i]
        out[f"core_{clock}"] = t2[i] - t1[i]
        out[f"drain_{clock}"] = t3[i] - t2[i]
    return out


def report(title: str, routes: int, t: dict[str, float]) -> dict[str, float]:
    """Prints one line per clock; returns total routes/s per clock."""
    totals = {}
    for clock in ("wall", "cpu"):
        d, c, r = (max(t[f"{s}_{clock}"], 1e-9) for s in ("decode", "core", "drain"))
        total = d + c + r
        totals[clock] = routes / total
        print(
            f"{title:8s} {clock:4s} decode {routes / d:>9,.0f}/s  core {routes / c:>9,.0f}/s"
            f"  drain {routes / r:>10,.0f}/s  total {routes / total:>9,.0f} routes/s"
            f" ({total:.2f} s)"
        )
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one run of each stage")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        nargs=3,
        metavar=("G0", "G1", "G2"),
        help="gc.set_threshold(G0, G1, G2) first, e.g. 50000 20 100 (default: Python's)",
    )
    args = parser.parse_args()
    from evpnd.bgp.codec import decode_line

    if args.gc_threshold:
        gc.set_threshold(*args.gc_threshold)
    print(f"gc thresholds {gc.get_threshold()}")

    t0 = time.perf_counter()
    announce, withdraw = generate(args.routes)
    print(
        f"generated {args.routes:,} type-2 routes in {len(announce):,} UPDATE lines "
        f"({sum(map(len, announce)) / 1e6:.1f} MB JSON) in {time.perf_counter() - t0:.1f} s"
    )
    if args.profile:
        core = Core(core_settings(_config()))
        core.start(0.0)
        for title, lines in (("announce", announce), ("withdraw", withdraw)):
            prof = cProfile.Profile()
            prof.enable()
            run_stage(core, lines, decode_line)
            prof.disable()
            print(f"--- {title}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)
        return
    best = {"announce": {"wall": 0.0, "cpu": 0.0}, "withdraw": {"wall": 0.0, "cpu": 0.0}}
    for _ in range(args.repeat):
        core = Core(core_settings(_config()))
        core.start(0.0)
        core.desired.drain()
        for title, lines in (("announce", announce), ("withdraw", withdraw)):
            t = run_stage(core, lines, decode_line)
            for clock, rate in report(title, args.routes, t).items():
                best[title][clock] = max(best[title][clock], rate)
            # announce: per host one FDB entry and one neighbour; withdraw: nothing left
            assert t["wanted"] == (args.routes if title == "announce" else 0), t
        assert core.desired.counts() == dict.fromkeys(core.desired.counts(), 0)
        del core
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for title, rates in best.items():
        print(
            f"best total {title}: {rates['wall']:,.0f} routes/s wall clock, "
            f"{rates['cpu']:,.0f} routes/s of CPU time"
        )
    print(f"peak RSS {rss:.0f} MiB (generated JSON held in memory included)")
    # Memory the core holds for the routes: traced allocations still alive after the announce
    # stage (the decoded events are gone by then; the Paths live on in the RIB).
    tracemalloc.start()
    core = Core(core_settings(_config()))
    core.start(0.0)
    run_stage(core, announce, decode_line)
    held = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    print(f"core holds {held:.0f} MiB for {args.routes:,} routes (RIB, indexes, desired state)")
    del core


if __name__ == "__main__":
    main()
