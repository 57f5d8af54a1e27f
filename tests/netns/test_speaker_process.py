"""Supervision of the ExaBGP process (no BGP peer needed): relay death, backoff, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.netns.speaker_lab import Recorder, speaker_config, until

pytestmark = pytest.mark.netns


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_relay_death_restarts_exabgp_and_replays(tmp_path):
    from evpnd.bgp.speaker import Speaker

    replays: list[float] = []
    speaker = Speaker(speaker_config(tmp_path), Recorder())
    speaker.set_resync(lambda: replays.append(time.monotonic()) or [])
    await speaker.start()
    try:
        await until(lambda: replays, 20, what="first replay")
        pid = speaker.status()["exabgp_pid"]
        (relay,) = await until(lambda: _children(pid), 10, what="the relay process")
        await speaker.sync(10)  # the channel answers
        os.kill(relay, signal.SIGKILL)
        # exabgp.api.terminate: ExaBGP exits with its API process; the Speaker starts another
        await until(lambda: not _alive(pid), 10, what="ExaBGP to exit")
        await until(lambda: len(replays) == 2, 20, what="second replay")
        assert speaker.status()["restarts"] == 1
        await speaker.sync(10)
    finally:
        await speaker.stop()
    new_pid = speaker.status()["exabgp_pid"]
    assert new_pid is None  # stopped
    assert not _alive(pid)


async def test_restart_backoff_is_exponential_and_capped(tmp_path):
    from evpnd.bgp.speaker import Speaker

    cfg = speaker_config(tmp_path, exabgp={"respawn_max_backoff": 0.8})
    # a launcher that dies at once: every start fails
    speaker = Speaker(cfg, Recorder(), python="/bin/false", initial_backoff=0.1)
    started = time.monotonic()
    await speaker.start()
    try:
        await until(lambda: speaker.status()["restarts"] >= 5, 20, what="five restarts")
        elapsed = time.monotonic() - started
        # 0.1 + 0.2 + 0.4 + 0.8 + 0.8 (capped) = 2.3 s of waiting at least
        assert elapsed >= 2.2
    finally:
        await speaker.stop()


async def test_stop_leaves_no_process(tmp_path):
    from evpnd.bgp.speaker import Speaker

    speaker = Speaker(speaker_config(tmp_path), Recorder())
    await speaker.start()
    await speaker.sync(20)
    pid = speaker.status()["exabgp_pid"]
    relay = _children(pid)
    await speaker.stop()
    await asyncio.sleep(0.2)
    assert not _alive(pid)
    assert not any(_alive(r) for r in relay)
    assert not (tmp_path / "exabgp-api.sock").exists()


SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from evpnd.bgp.speaker import Speaker
from tests.netns.speaker_lab import Recorder, speaker_config

async def main():
    speaker = Speaker(speaker_config({tmp!r}), Recorder())
    await speaker.start()
    await speaker.sync(20)
    print(speaker.status()["exabgp_pid"], flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_exabgp_dies_with_evpnd_even_on_sigkill(tmp_path):
    """PR_SET_PDEATHSIG: no ExaBGP is left behind when evpnd is killed without cleanup."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent.parent)
    script = SCRIPT.format(root=root, tmp=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        exabgp = int(line)
        assert _alive(exabgp)
        proc.kill()
        proc.wait(5)
        await until(lambda: not _alive(exabgp), 10, what="ExaBGP to die with its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
