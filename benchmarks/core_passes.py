"""Two passes of the core timed alone (CPU time), before and after a change in one run.

  rr-loss    N type-2 keys, each sent by two route reflectors (the same route: other peer,
             CLUSTER_LIST and ORIGINATOR_ID as reflection sets them); then the first
             reflector's session goes down: every key moves to the second reflector's path
  rr-second  the same N keys from two route reflectors: the second reflector's table, whose
             path wins (the costlier order: the best moves to it), load measured alone
  rr-withdraw  the same N keys from two route reflectors; both withdraw them (MP_UNREACH, 100
             keys per UPDATE), the winning reflector first: its keys move to the other's
             path, then the other's withdraw removes them
  advertise  N local MACs learned (LocalMac events, in batches of 1,000 like the owner task's
             turns) until each is advertised: the core's share of the advertise path

    .venv/bin/python benchmarks/core_passes.py [--macs N] [--repeat R] [--baseline TREE]

With --baseline TREE (a checkout of evpnd before a change), each repetition runs the baseline
and this tree in turn, each in a fresh interpreter, so both see the same load: the machine
this was written on is shared, so compare only figures from one run (the printed minimum is
the steadiest). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from pathlib import Path as FsPath

ROOT = FsPath(__file__).resolve().parent.parent


def _macs(n: int, prefix: str) -> list[str]:
    return [f"{prefix}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01" for i in range(n)]


def _reflector_tables(n: int, peers: tuple[str, ...]) -> list[list]:
    from tests.unit.core_helpers import t2

    macs = _macs(n, "02:00")
    tables = []
    for peer in peers:
        shared: dict = {}  # one attribute object per VTEP, as the decoder shares them
        paths = []
        for i, mac in enumerate(macs):
            vtep = f"192.0.2.{2 + i % 50}"
            path = t2(vtep, mac, peer=peer, originator_id=vtep)
            attrs = shared.setdefault(vtep, path.attrs._replace(cluster_list=(peer,)))
            paths.append(path._replace(attrs=attrs))
        tables.append(paths)
    return tables


def _load(core, peer: str, paths: list) -> None:
    from evpnd.core.events import RouteUpdate

    for i in range(0, len(paths), 100):
        core.apply(RouteUpdate(peer, paths[i : i + 100], []), 0.0)


def rr_loss(n: int) -> float:
    from evpnd.core.events import PeerState
    from tests.unit.core_helpers import make_core

    core = make_core()
    peers = ("10.0.0.101", "10.0.0.102")
    for peer, paths in zip(peers, _reflector_tables(n, peers), strict=True):
        _load(core, peer, paths)
    core.desired.drain()
    t0 = time.process_time()
    core.apply(PeerState("10.0.0.101", "down"), 1.0)
    spent = time.process_time() - t0
    assert len(core.desired.fdb[100]) == n and not core.desired.dirty
    return spent


def rr_second(n: int) -> float:
    from tests.unit.core_helpers import make_core

    core = make_core()
    peers = ("10.0.0.102", "10.0.0.101")  # the second one's paths win: the best moves
    first, second = _reflector_tables(n, peers)
    _load(core, peers[0], first)
    core.desired.drain()
    t0 = time.process_time()
    _load(core, peers[1], second)
    spent = time.process_time() - t0
    assert all(core.rib.best[p.key] is p for p in second[:100]) and not core.desired.dirty
    return spent


def rr_withdraw(n: int) -> float:
    from evpnd.core.events import RouteUpdate
    from tests.unit.core_helpers import make_core

    core = make_core()
    own = len(core.rib.best)  # this VTEP's own routes (its type-3s)
    peers = ("10.0.0.101", "10.0.0.102")  # the first one's paths win (lower peer address)
    tables = _reflector_tables(n, peers)
    for peer, paths in zip(peers, tables, strict=True):
        _load(core, peer, paths)
    core.desired.drain()
    assert core.rib.best[tables[0][0].key] is tables[0][0]
    t0 = time.process_time()
    for peer, paths in zip(peers, tables, strict=True):
        keys = [p.key for p in paths]
        for i in range(0, n, 100):
            core.apply(RouteUpdate(peer, [], keys[i : i + 100]), 0.0)
    spent = time.process_time() - t0
    assert len(core.rib.best) == own and not core.desired.fdb[100]
    return spent


def advertise(n: int) -> float:
    from evpnd.core.events import LocalMac

    try:  # the batch the dataplane sends since issue 14 (a --baseline tree may not have it)
        from evpnd.core.events import LocalMacBatch
    except ImportError:
        LocalMacBatch = None  # noqa: N806
    from tests.unit.core_helpers import make_core

    core = make_core()
    core.start(0.0)
    events = [LocalMac(100, mac, None, present=True) for mac in _macs(n, "02:01")]
    announced = 0
    t0 = time.process_time()
    for i in range(0, n, 256):  # a monitor read's worth (dataplane.py, _EVENTS_PER_READ)
        if LocalMacBatch is not None:
            announced += len(core.apply(LocalMacBatch(events[i : i + 256]), 1.0).announce)
        else:
            for event in events[i : i + 256]:
                announced += len(core.apply(event, 1.0).announce)
    spent = time.process_time() - t0
    assert announced == n
    return spent


def child(tree: str, n: int) -> None:
    """Runs in a fresh interpreter with `tree` first on sys.path."""
    sys.path.insert(0, tree)
    gc.set_threshold(100_000, 50, 1000)  # as core.py (GC_THRESHOLD: why not the daemon's)
    passes = (rr_loss(n), rr_second(n), rr_withdraw(n), advertise(n))
    print(" ".join(f"{v:.4f}" for v in passes), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--macs", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--baseline", help="an evpnd tree before a change")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.macs)
        return
    trees = [("before", str(FsPath(args.baseline).resolve()))] if args.baseline else []
    trees.append(("this tree", str(ROOT)))
    results: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in trees}
    for _ in range(args.repeat):
        for name, tree in trees:
            # PYTHONPATH comes before the venv's editable finder: the child imports `tree`
            env = dict(os.environ, PYTHONPATH=tree)
            out = subprocess.run(
                [sys.executable, __file__, "--child", tree, "--macs", str(args.macs)],
                capture_output=True, text=True, env=env, check=True,
            ).stdout.split()  # fmt: skip
            results[name].append(tuple(float(v) for v in out))
    print(f"CPU seconds, {args.macs:,} MACs, {args.repeat} repetitions: min (median) [all]")
    for name, rows in results.items():
        for i, what in enumerate(("rr-loss", "rr-second", "rr-withdraw", "advertise")):
            values = sorted(r[i] for r in rows)
            shown = " ".join(f"{v:.3f}" for v in values)
            median = values[len(values) // 2]
            print(f"  {name:10} {what:11} {values[0]:.3f} ({median:.3f}) [{shown}]")


if __name__ == "__main__":
    main()
