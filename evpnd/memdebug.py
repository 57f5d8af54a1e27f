"""Where evpnd's memory goes, on request (a debugging aid, off unless asked for).

    EVPND_MEMDEBUG=/tmp/evpnd-mem.txt evpnd -c ...      then  kill -USR2 <pid>

With the variable set, tracemalloc traces allocations from the start (EVPND_MEMDEBUG_FRAMES
frames each, default 6; tracing costs CPU and memory of its own, so the figures are for finding
the cause, not for the benchmark) and SIGUSR2 appends a report to the file: RSS and the
process's memory map summary, Python's allocator state, the live objects counted by type, and
the largest allocation sites (grouped by line, and by traceback for the top few).
"""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ENV, ENV_FRAMES = "EVPND_MEMDEBUG", "EVPND_MEMDEBUG_FRAMES"
ENV_HOLDERS = "EVPND_MEMDEBUG_HOLDERS"  # type names: who refers to one object of each


def requested() -> str | None:
    return os.environ.get(ENV) or None


def start() -> None:
    """Start tracing when asked for: as early as possible, so start-up's peak is in it."""
    frames = int(os.environ.get(ENV_FRAMES, "6"))  # 0: the report without tracing
    if requested() and frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)


def install(loop) -> None:
    """SIGUSR2 writes a report (nothing is installed unless EVPND_MEMDEBUG is set)."""
    import signal

    path = requested()
    if path is None:
        return
    start()
    loop.add_signal_handler(signal.SIGUSR2, lambda: write_report(Path(path)))


def _proc(name: str) -> str:
    try:
        return Path(f"/proc/self/{name}").read_text()
    except OSError:
        return ""


def report(top: int = 40) -> str:
    lines = [f"== evpnd memory report {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"]
    status = _proc("status")
    lines += [ln for ln in status.splitlines() if ln.startswith(("VmRSS", "VmHWM", "RssAnon"))]
    lines += ["-- smaps_rollup", _proc("smaps_rollup").strip()]
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    frozen, pending = gc.get_freeze_count(), gc.get_count()
    lines.append(f"-- gc-tracked objects by type (top 25; {frozen} frozen; gc counts {pending})")
    lines += [f"{n:>10} {name}" for name, n in counts.most_common(25)]
    for name in filter(None, os.environ.get(ENV_HOLDERS, "").split(",")):
        lines.append(f"-- what holds one {name} (referrer chains)")
        lines += holders(name)
    if tracemalloc.is_tracing():
        cur, peak = tracemalloc.get_traced_memory()
        lines.append(f"-- tracemalloc: current {cur / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB")
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        for stat in snap.statistics("lineno")[:top]:
            lines.append(f"{stat.size / 2**10:>10.0f} KiB {stat.count:>8} {stat.traceback[0]}")
        lines.append("-- by traceback (top 8)")
        for stat in snap.statistics("traceback")[:8]:
            lines.append(f"{stat.size / 2**10:.0f} KiB in {stat.count} blocks")
            lines += [f"    {frame}" for frame in stat.traceback.format()]
    found = gc.collect()  # what a full collection frees: cyclic garbage the thresholds kept
    rss = next((ln for ln in _proc("status").splitlines() if ln.startswith("VmRSS")), "")
    lines.append(f"-- gc.collect(): {found} unreachable objects freed; then {rss}")
    lines.append("-- pymalloc")
    stats = _pymalloc_stats()
    lines += stats.splitlines()[-12:]
    return "\n".join(lines) + "\n"


def holders(type_name: str, depth: int = 6) -> list[str]:
    """The chains of objects referring to one live object of the type, `depth` levels up."""
    obj = next((o for o in gc.get_objects() if type(o).__name__ == type_name), None)
    if obj is None:
        return ["    (none alive)"]
    out: list[str] = []
    seen = {id(obj)}

    def walk(o, level: int) -> None:
        for r in gc.get_referrers(o):
            if id(r) in seen or type(r).__name__ == "frame" or r is out:
                continue
            seen.add(id(r))
            if isinstance(r, dict):
                what = f"dict keys {list(r)[:8]}"
            else:
                what = f"{type(r).__name__} {repr(r)[:120]}"
            out.append("    " + "  " * level + what)
            if level < depth and len(out) < 60:
                walk(r, level + 1)

    walk(obj, 0)
    return out


def _pymalloc_stats() -> str:
    """sys._debugmallocstats() writes to the C stderr: captured through a temporary file."""
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def write_report(path: Path) -> None:
    with path.open("a") as f:
        f.write(report())
