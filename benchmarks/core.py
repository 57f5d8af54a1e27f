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
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parents[1]))

from evpnd.config import parse_config  # noqa: E402
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


def run_stage(core: Core, lines: list[str], decode_line) -> dict[str, float]:
    gc.collect()
    t0 = time.perf_counter()
    events = []
    for line in lines:
        events.extend(decode_line(line))
    t1 = time.perf_counter()
    apply = core.apply
    now = 1000.0
    for event in events:
        apply(event, now)
    t2 = time.perf_counter()
    desired = core.desired
    wanted = 0
    lookup = desired.lookup
    for kind, vni, key in desired.drain():
        if lookup(kind, vni, key) is not None:
            wanted += 1
    t3 = time.perf_counter()
    return {"decode": t1 - t0, "core": t2 - t1, "drain": t3 - t2, "wanted": wanted}


def report(title: str, routes: int, t: dict[str, float]) -> float:
    total = t["decode"] + t["core"] + t["drain"]
    print(
        f"{title:9s} decode {routes / t['decode']:>10,.0f}/s  core {routes / t['core']:>10,.0f}/s"
        f"  drain {routes / t['drain']:>11,.0f}/s  total {routes / total:>10,.0f} routes/s"
        f"  ({total:.2f} s; {t['wanted']:,} wanted objects after)"
    )
    return routes / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one announce run")
    args = parser.parse_args()
    from evpnd.bgp.codec import decode_line

    t0 = time.perf_counter()
    announce, withdraw = generate(args.routes)
    print(
        f"generated {args.routes:,} type-2 routes in {len(announce):,} UPDATE lines "
        f"({sum(map(len, announce)) / 1e6:.1f} MB JSON) in {time.perf_counter() - t0:.1f} s"
    )
    if args.profile:
        core = Core(_config())
        core.start(0.0)
        for title, lines in (("announce", announce), ("withdraw", withdraw)):
            prof = cProfile.Profile()
            prof.enable()
            run_stage(core, lines, decode_line)
            prof.disable()
            print(f"--- {title}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)
        return
    best_in = best_out = 0.0
    for _ in range(args.repeat):
        core = Core(_config())
        core.start(0.0)
        core.desired.drain()
        t = run_stage(core, announce, decode_line)
        best_in = max(best_in, report("announce", args.routes, t))
        assert t["wanted"] == args.routes, t  # per host: one FDB entry and one neighbour
        t = run_stage(core, withdraw, decode_line)
        best_out = max(best_out, report("withdraw", args.routes, t))
        assert core.desired.counts() == dict.fromkeys(core.desired.counts(), 0)
        del core
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"best: announce {best_in:,.0f} routes/s, withdraw {best_out:,.0f} routes/s")
    print(f"peak RSS {rss:.0f} MiB (generated JSON held in memory included)")


if __name__ == "__main__":
    main()
