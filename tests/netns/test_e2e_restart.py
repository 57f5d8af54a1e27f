"""Restart and drift: the kernel is evpnd's source of truth only for what evpnd owns.

Leaf B holds 10,000 static MACs on an access port (a person put them there: evpnd advertises
them, sticky). Leaf A installs them. Then evpnd on A is killed with SIGKILL and started again:
netlink monitoring on A must show zero deletions of entries that are still wanted, and a route
withdrawn while A was down must be swept after the hold time.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from evpnd.lab.netns import wait_for
from tests.netns.fabric import evpnd_config, start_evpnd, two_leaves

pytestmark = [pytest.mark.netns, pytest.mark.slow]

N = 10_000


def mac(i: int) -> str:
    return f"02:bb:00:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"


def test_kill9_restart_keeps_wanted_entries_and_sweeps_withdrawn(lab, tmp_path):
    a, b = two_leaves(lab)
    # an access port on B with N static MACs behind it (the far end is a host namespace)
    host = lab.netns("hb")
    lab.link(host, "eth0", b.ns, "p2")
    batch = tmp_path / "fdb.batch"
    batch.write_text("".join(f"fdb add {mac(i)} dev p2 master static\n" for i in range(N)))
    start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100"}]))
    start_evpnd(
        lab, b, evpnd_config(b, [a], [{"vni": 100, "bridge": "br100", "access_ports": ["p2"]}])
    )
    b.ns.run(["bridge", "-batch", str(batch)])

    def ours() -> dict[str, str]:  # the host's own MAC (IPv6 chatter) is learned too: skip it
        return {m: v for m, v in a.remote_macs("vx100").items() if m.startswith("02:bb:")}

    wait_for(lambda: len(ours()) == N, 60, interval=0.5, what=f"{N} MACs on A")

    # A person's own entry on evpnd's device: must survive everything below.
    a.ns.run(["bridge", "fdb", "add", "02:cc:00:00:00:01", "dev", "vx100", "dst", "10.0.0.99",
              "self", "permanent"])  # fmt: skip

    # Drift: delete an owned entry by hand; it is back within 1 s.
    a.ns.run(["bridge", "fdb", "del", mac(7), "dev", "vx100", "dst", b.vtep, "self"])
    t0 = time.monotonic()
    wait_for(lambda: a.remote_macs("vx100").get(mac(7)) == b.vtep, 1.0, interval=0.05,
             what="owned FDB entry repaired")  # fmt: skip
    assert time.monotonic() - t0 <= 1.0

    a.node.kill9()
    gone = mac(42)
    b.ns.run(["bridge", "fdb", "del", gone, "dev", "p2", "master"])  # withdrawn while A is down

    monitor = subprocess.Popen(
        a.ns.cmd("bridge", "monitor", "fdb"), stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.3)
        a.node.start()
        # wait for the session to come back, then past the sweep hold time (5 s in the config)
        wait_for(lambda: gone not in ours(), 40, interval=0.5, what="sweep")
        time.sleep(1.0)
    finally:
        monitor.terminate()
        out, _ = monitor.communicate(timeout=5)
    deleted = [ln for ln in out.splitlines() if ln.startswith("Deleted")]
    deleted_macs = {ln.split()[1] for ln in deleted}
    assert deleted_macs <= {gone}, f"wanted entries were deleted: {sorted(deleted_macs)[:10]}"
    assert len(ours()) == N - 1
    assert ours().keys() == {mac(i) for i in range(N)} - {gone}
    assert a.remote_macs("vx100").get("02:cc:00:00:00:01") == "10.0.0.99"
