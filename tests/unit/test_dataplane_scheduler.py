"""The scheduler without a kernel: which keys a pass takes, what the sweep hold time allows,
chunking, and the accounting of a batch's outcome."""

from __future__ import annotations

import errno

from evpnd.dataplane import scheduler as sch
from evpnd.dataplane.mirror import Mirror
from evpnd.dataplane.model import FDB, FLOOD, DesiredState, DeviceMap, VniDevices
from evpnd.dataplane.scheduler import Scheduler

M1 = "02:00:00:00:00:01"


def dm() -> DeviceMap:
    out = DeviceMap()
    out.add(VniDevices(100, False, 10, 11, "br100", "vx100"))
    return out


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def warning(self, event: str, **kw) -> None:
        self.lines.append(("warning", event, kw))

    def error(self, event: str, **kw) -> None:
        self.lines.append(("error", event, kw))


def test_hold_time_starts_at_start():
    s = Scheduler(sweep_hold_time=10)
    s.start(100.0)
    assert not s.hold_over(105.0) and s.hold_remaining(105.0) == 5.0
    assert s.hold_over(110.0) and s.hold_remaining(200.0) == 0.0


def test_dirty_keys_take_the_cores_keys_and_repairs_once():
    s = Scheduler()
    d = DesiredState()
    d.dirty.add((FDB, 100, M1))
    s.wants_repair((FLOOD, 100, "10.0.0.2"))
    assert s.pending(d)
    assert s.dirty_keys(d) == {(FDB, 100, M1), (FLOOD, 100, "10.0.0.2")}
    assert s.stats["repairs"] == 1
    assert not s.pending(d) and s.dirty_keys(d) == set()


def test_chunks_are_planned_when_asked_for(monkeypatch):
    monkeypatch.setattr(sch, "CHUNK_KEYS", 3)
    d = DesiredState(fdb={100: {f"02:00:00:00:01:{i:02x}": "10.0.0.2" for i in range(7)}})
    m = Mirror()
    s = Scheduler()
    keys = sorted((FDB, 100, mac) for mac in d.fdb[100])
    chunks = s.chunks(keys, d, m, dm(), allow_delete=True)
    first = next(chunks)
    assert len(first) == 3
    for op in first:  # the kernel took chunk 1 before chunk 2 is planned
        op.error = 0
    s.finished(m, first, complete=True)
    assert len(m.fdb[100]) == 3
    assert [len(c) for c in chunks] == [3, 1]


def test_a_pass_starts_with_a_small_chunk_and_grows_to_full_ones(monkeypatch):
    """The first entries of a burst reach the kernel at once; the bulk goes in big chunks."""
    monkeypatch.setattr(sch, "FIRST_CHUNK_KEYS", 2)
    monkeypatch.setattr(sch, "CHUNK_KEYS", 16)
    # Growth depends on how long a chunk took to plan; a loaded machine (CI's, once) can take
    # longer than PLAN_BUDGET/4 for two keys and the size then rightly stays put. A budget no
    # plan reaches makes the sizes this test is about independent of the machine; shrinking
    # is test_turns.py's.
    monkeypatch.setattr(sch, "PLAN_BUDGET", 10.0)
    d = DesiredState(fdb={100: {f"02:00:00:00:01:{i:02x}": "10.0.0.2" for i in range(50)}})
    keys = sorted((FDB, 100, mac) for mac in d.fdb[100])
    sizes = [len(c) for c in Scheduler().chunks(keys, d, Mirror(), dm(), allow_delete=True)]
    assert sizes == [2, 8, 16, 16, 8]


def test_unwanted_entries_are_held_and_counted_until_deletes_are_allowed():
    m = Mirror()
    m.set_fdb(100, M1, "10.0.0.2")
    s = Scheduler()
    keys = s.full_keys(DesiredState(), m, dm())
    assert list(s.chunks(keys, DesiredState(), m, dm(), allow_delete=False)) == [[]]
    assert s.stats["held"] == 1
    [ops] = list(s.chunks(keys, DesiredState(), m, dm(), allow_delete=True))
    assert [op.tag[0] for op in ops] == ["fdb-"] and s.stats["held"] == 0


def test_refusals_are_counted_and_kept_and_lost_reports_ask_for_a_dump():
    log = Recorder()
    s = Scheduler(log=log)
    d = DesiredState(fdb={100: {M1: "10.0.0.2"}})
    m = Mirror()
    [ops] = list(s.chunks([(FDB, 100, M1)], d, m, dm(), allow_delete=True))
    ops[0].error = -errno.EINVAL
    s.finished(m, ops, complete=True)
    assert s.stats["errors"] == 1 and not s.need_dump and m.fdb.get(100, {}) == {}
    assert s.last_errors == [{"op": "fdb+", "vni": 100, "key": M1, "error": "Invalid argument"}]
    assert log.lines[0][:2] == ("warning", "netlink operation failed")
    s.finished(m, [], complete=False)
    assert s.need_dump
    s.batch_failed(ops, "boom")
    assert s.stats["errors"] == 2 and log.lines[-1][:2] == ("error", "netlink batch failed")


def test_invalid_values_are_logged_not_raised():
    log = Recorder()
    s = Scheduler(log=log)
    d = DesiredState(fdb={100: {"zz": "10.0.0.2"}})
    assert list(s.chunks([(FDB, 100, "zz")], d, Mirror(), dm(), allow_delete=True)) == [[]]
    assert s.stats["invalid"] == 1 and log.lines[0][1] == "invalid desired object skipped"
