"""Receive path: N type-2 routes from a peer, decoded and delivered as events by the Speaker.

    .venv/bin/python benchmarks/bgp_receive.py [N ...]   (root; default 100000)

The sender is a second Speaker (ExaBGP + evpnd's extension, ~115 NLRIs per UPDATE) in another
namespace that already holds the N routes in its Adj-RIB-Out and waits passively; the
receiving Speaker then connects. Timed: from the receiver's PeerState 'up' to the N-th route
delivered to the emit callback. Also prints where the time goes offline on the same UPDATEs:
what ExaBGP's own decode + JSON would cost (the raw channel skips both) against the hex line
and evpnd's raw decoder. Target: 100k within 2 s.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from evpnd.bgp.compact import UpdateDecoder  # noqa: E402
from evpnd.core.events import PeerState, RouteUpdate  # noqa: E402
from evpnd.lab.netns import Lab  # noqa: E402
from tests.netns.speaker_lab import (  # noqa: E402
    mac_paths,
    pair,
    peer,
    speaker_config,
    until,
)


class Counter:
    def __init__(self) -> None:
        self.routes = 0
        self.up_at = 0.0
        self.last_at = 0.0
        self.updates = 0

    def __call__(self, event) -> None:
        if isinstance(event, RouteUpdate):
            self.routes += len(event.announced)
            self.updates += 1
            self.last_at = time.perf_counter()
        elif isinstance(event, PeerState) and event.state == "up" and not self.up_at:
            self.up_at = time.perf_counter()


async def run_one(n: int, extended: bool = True) -> dict:
    from evpnd.bgp.speaker import Speaker

    lab = Lab(prefix="brecv")
    try:
        p = pair(lab)
        tmp = FsPath(tempfile.mkdtemp(prefix="evpnd-bench-"))
        send_cfg = speaker_config(
            tmp / "b",
            router_id="192.0.2.2",
            asn=65002,
            peers=[peer("10.0.1.1", 65001, "10.0.1.2", passive=True)],
            exabgp={"listen": True},
        )
        recv_cfg = speaker_config(tmp / "a", peers=[peer("10.0.1.2", 65002, "10.0.1.1")])
        sender = Speaker(send_cfg, lambda e: None, wrapper=p.b.cmd(), extended_message=extended)
        paths = mac_paths(n, rd="192.0.2.2:1", nh="192.0.2.2")
        sender.set_resync(lambda: paths)
        await sender.start()
        await sender.sync(120)
        counter = Counter()
        receiver = Speaker(recv_cfg, counter, wrapper=p.a.cmd())
        await receiver.start()
        try:
            await until(lambda: counter.routes >= n, 120, 0.01, "all routes received")
            return {
                "n": n,
                "seconds": counter.last_at - counter.up_at,
                "updates": counter.updates,
            }
        finally:
            await receiver.stop()
            await sender.stop()
    finally:
        lab.cleanup()


def offline_breakdown(n: int) -> None:
    """Where the time goes, on the same UPDATE bytes, without the network."""
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update import Update
    from exabgp.environment import getenv
    from exabgp.logger import log
    from exabgp.reactor.api.response import Response
    from exabgp.version import json as json_version

    from tests.unit.exabgp_helpers import negotiated_and_neighbor, updates_for

    log.init(getenv())
    negotiated, neighbor = negotiated_and_neighbor()
    messages = updates_for(mac_paths(n, rd="192.0.2.2:1", nh="192.0.2.2"), negotiated)
    bodies = [m[19:] for m in messages]
    t = time.perf_counter()
    parsed = [Update.unpack_message(b, Direction.IN, negotiated) for b in bodies]
    t_decode = time.perf_counter() - t
    encoder = Response.JSON(json_version)
    t = time.perf_counter()
    lines = [encoder.update(neighbor, "receive", u, None, "", "") for u in parsed]
    t_json = time.perf_counter() - t
    t = time.perf_counter()
    for line in lines:
        json.loads(line)
    t_loads = time.perf_counter() - t
    t = time.perf_counter()
    raw_lines = [f"evpnd-rx 10.0.1.2 1 {b.hex()}" for b in bodies]
    t_hex = time.perf_counter() - t
    t = time.perf_counter()
    decoder = UpdateDecoder()
    for line in raw_lines:
        decoder.decode_line(line)
    t_compact = time.perf_counter() - t
    print(f"offline, {n} routes in {len(bodies)} UPDATEs:")
    print(
        f"  stock ExaBGP (not used): decode {t_decode:.2f} s + JSON encode {t_json:.2f} s"
        f" + json.loads alone {t_loads:.2f} s"
    )
    print(f"  raw:   ExaBGP hex {t_hex:.2f} s + evpnd UpdateDecoder.decode_line {t_compact:.2f} s")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sizes = [int(a) for a in args] or [100_000]
    for n in sizes:
        for extended in (False, True):
            r = asyncio.run(run_one(n, extended))
            size = "65535" if extended else "4096"
            print(
                f"receive {r['n']:>7} type-2 via raw channel, {size}-byte UPDATEs: delivered as "
                f"events in {r['seconds']:.2f} s ({r['n'] / r['seconds']:,.0f} routes/s, "
                f"{r['updates']} UPDATEs)"
            )
        if "--no-breakdown" not in sys.argv:
            offline_breakdown(n)


if __name__ == "__main__":
    main()
