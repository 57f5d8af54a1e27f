"""containerlab/evpn-fabric, the whole fabric (2 FRR route reflectors, 16 evpnd leaves, 2 FRR
leaves, a host per leaf) in network namespaces, shortened to 50 MACs behind every leaf
(benchmarks/fabric.py runs the same scenario with 1,000): every leaf's kernel holds every other
leaf's MACs at the right VTEP; a MAC move (RARP from its new place, the old leaf untouched) is
followed by every leaf; killing a route reflector (SIGKILL) deletes no FDB entry anywhere,
leaves no MAC missing after twice the hold time, and loses no ping; evpnd leaves stay small.

One scenario, one lab; the fixture removes the lab (by its name) also on failure.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from evpnd.lab import fabric, runner

pytestmark = [pytest.mark.netns, pytest.mark.frr, pytest.mark.slow]

TOPOLOGY = Path(__file__).resolve().parents[2] / "containerlab/evpn-fabric/evpn-fabric.clab.yml"
PER_LEAF = 50


@pytest.fixture(scope="module")
def result():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (run `make test` as root)")
    name = f"fab{uuid.uuid4().hex[:5]}"
    lines: list[str] = []
    try:
        lab = runner.up(TOPOLOGY, name=name, progress=lines.append)
        try:
            runner.wait_converged(lab, timeout=180, progress=lines.append)
            res = fabric.run_scenario(lab, PER_LEAF, lines.append, converge_timeout=120)
        except runner.LabError as exc:
            pytest.fail(f"{exc}\n" + "\n".join(lines) + "\n" + lab.log("leaf01")[-3000:])
        print("\n".join(lines))
        yield res
    finally:
        runner.down(name, progress=lines.append)
        left = [ns for ns in os.listdir("/run/netns") if ns.startswith(f"clab-{name}-")]
        assert not left and not (runner.STATE_ROOT / name).exists(), left


def test_every_leaf_holds_every_remote_mac(result):
    # wait_all_remote raises unless each leaf's kernel has all 17 x 50 at the right VTEP
    assert sorted(result.all_macs_by_leaf) == [f"leaf{i:02d}" for i in range(1, 19)]
    assert result.all_macs_s < 60, result.all_macs_by_leaf


def test_mac_move_seen_by_every_leaf(result):
    assert len(result.move_by_leaf) == 17  # every leaf but the MAC's new one, the old one too
    assert result.move_s < 10, result.move_by_leaf


def test_route_reflector_killed_loses_nothing(result):
    assert result.rr_down_on == 16, "rr1's sessions went down on every evpnd leaf"
    assert all(n == 0 for n in result.rr_missing.values()), result.rr_missing
    assert all(n == 0 for n in result.rr_fdb_deletions.values()), result.rr_fdb_deletions
    for pair, (sent, received) in result.rr_pings.items():
        assert sent >= 50 and received == sent, f"{pair}: {received}/{sent} answered"


def test_evpnd_leaf_memory(result):
    assert len(result.rss) == 16
    # measured ~95 MiB (evpnd ~54, ExaBGP + relay ~42) with 850 remote MACs
    assert all(r.total < 200 for r in result.rss.values()), result.rss
