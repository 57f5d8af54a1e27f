"""The monitor socket's eBPF filter (evpnd/dataplane/echo_filter.py) against the real kernel: the
echo of the worker thread's own adds and deletes never reaches the socket; a person's delete, a
delete from another thread, local learning and a foreign route delete all do. Without CAP_BPF
the classic filter stays (own adds dropped, deletes read)."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

import pytest

from evpnd.dataplane import echo_filter
from evpnd.dataplane import netlink as nl
from evpnd.dataplane.worker import Worker

pytestmark = pytest.mark.netns

FLAGS = nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED  # one message, both halves (fdb.py)
MACS = [f"02:00:00:00:01:{i:02x}" for i in range(40)]
LOCAL = "02:00:00:00:02:01"


def topology(lab):
    ns = lab.netns("echo")
    # no IPv6: h1's DAD and MLD packets would make the bridge learn h1's MAC on p1 at a moment
    # of their own, a notification the tests do not expect
    for conf in ("all", "default"):
        ns.run(["sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1"])
    ns.ip("link", "add", "br0", "type", "bridge")
    ns.ip("link", "add", "vx0", "type", "vxlan", "id", "100", "dstport", "4789",
          "local", "10.0.0.1", "nolearning")  # fmt: skip
    ns.ip("link", "add", "p1", "type", "veth", "peer", "name", "h1")
    for dev in ("vx0", "p1"):
        ns.ip("link", "set", dev, "master", "br0")
    for dev in ("br0", "vx0", "p1", "h1"):
        ns.ip("link", "set", dev, "up")
    return ns


def fdb_op(vx: int, mac: str, add: bool) -> nl.Op:
    if add:
        body = nl.fdb_body(vx, mac, "10.0.0.2", FLAGS, nl.NUD_REACHABLE)
        return nl.Op(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_REPLACE, body)
    return nl.Op(nl.RTM_DELNEIGH, 0, nl.fdb_body(vx, mac, None, FLAGS, 0))


def route_op(table: int, prefix: str, oif: int, add: bool) -> nl.Op:
    body = nl.route_body(table, prefix, None, oif)
    if add:
        return nl.Op(nl.RTM_NEWROUTE, nl.NLM_F_CREATE | nl.NLM_F_REPLACE, body)
    return nl.Op(nl.RTM_DELROUTE, 0, body)


def drain(mon: socket.socket, wait: float = 0.2) -> list[tuple[str, str]]:
    """(kind, what) of every neighbour and route notification queued: kind is new/del +
    neigh/route, what the MAC or prefix."""
    time.sleep(wait)
    out = []
    buf = bytearray(1 << 16)
    while True:
        try:
            size = mon.recv_into(buf)
        except BlockingIOError:
            return out
        for mtype, _fl, _seq, off, end in nl.iter_messages(buf, size):
            if mtype in (nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH):
                n = nl.parse_neigh(mtype, buf, off, end)
                out.append(("del" if n.deleted else "new", n.mac or ""))
            elif mtype in (nl.RTM_NEWROUTE, nl.RTM_DELROUTE):
                r = nl.parse_route(mtype, buf, off, end)
                if r.protocol == nl.RTPROT_EVPND:
                    out.append(("delroute" if r.deleted else "newroute", r.prefix))


def run(worker: Worker, ops: list[nl.Op]) -> None:
    req = worker.call_sync(nl.Requester)
    try:
        assert worker.call_sync(req.run, ops)
        assert [op.error for op in ops] == [0] * len(ops)
    finally:
        worker.call_sync(req.close)


@pytest.mark.parametrize("method", ["tid", "task"])
def test_only_the_echo_of_the_writer_threads_own_writes_is_dropped(lab, method):
    """Both ways of telling the writer: its thread id (this kernel), its task (kernels whose
    socket filters may not ask for the thread id, Debian 12's 6.1)."""
    ns = topology(lab)
    writer, other = Worker(ns.name), Worker(ns.name)
    try:
        tid = writer.call_sync(threading.get_native_id)
        mon = writer.call_sync(nl.open_monitor)
        lab.on_cleanup(mon.close)
        # root on a 6.18 kernel here: both must load (in the writer thread, as the backend
        # does); the thread id only in the initial PID namespace (not in `unshare --pid`, where
        # the pristine-root check runs the suite: there the task is the only way)
        if method == "tid" and not echo_filter.in_initial_pid_namespace():
            assert writer.call_sync(echo_filter.attach, mon, tid, (method,)) == ""
            method = "task"
        assert writer.call_sync(echo_filter.attach, mon, tid, (method,)) == method
        vx, br = (writer.call_sync(socket.if_nametoindex, d) for d in ("vx0", "br0"))
        drain(mon, 0.05)  # whatever the set-up raised

        # evpnd's own writes: 40 MACs (both halves) and 2 routes added, 30 MACs and 1 route
        # deleted; nothing of it comes back
        ops = [fdb_op(vx, m, True) for m in MACS]
        ops += [route_op(254, p, br, True) for p in ("192.168.5.0/24", "192.168.6.0/24")]
        run(writer, ops)
        run(writer, [fdb_op(vx, m, False) for m in MACS[:30]])
        run(writer, [route_op(254, "192.168.5.0/24", br, False)])
        assert drain(mon) == []
        kernel = ns.run(["bridge", "fdb", "show", "dev", "vx0"])
        assert all((m in kernel) == (i >= 30) for i, m in enumerate(MACS))

        # a person deletes both halves of one, and evpnd's other route: seen
        ns.run(["bridge", "fdb", "del", MACS[30], "dev", "vx0", "self"])
        ns.run(["bridge", "fdb", "del", MACS[30], "dev", "vx0", "master"])
        ns.ip("route", "del", "192.168.6.0/24")
        assert sorted(drain(mon)) == [
            ("del", MACS[30]), ("del", MACS[30]), ("delroute", "192.168.6.0/24"),
        ]  # fmt: skip

        # a person replaces one of evpnd's entries (takes it over: no extern_learn): seen
        ns.run(["bridge", "fdb", "replace", MACS[32], "dev", "vx0", "dst", "10.0.0.7", "self"])
        assert drain(mon) == [("new", MACS[32])]

        # another thread of the same process deletes one: seen (the filter is per thread)
        run(other, [fdb_op(vx, MACS[31], False)])
        assert drain(mon) == [("del", MACS[31]), ("del", MACS[31])]

        # local learning on an access port, and the entry going again: seen
        ns.run(["bridge", "fdb", "add", LOCAL, "dev", "p1", "master", "dynamic"])
        ns.run(["bridge", "fdb", "del", LOCAL, "dev", "p1", "master"])
        assert drain(mon) == [("new", LOCAL), ("del", LOCAL)]

        # a person's extern_learn add is still dropped, as by the classic filter
        ns.run(["bridge", "fdb", "add", MACS[0], "dev", "vx0", "dst", "10.0.0.3", "self",
                "extern_learn"])  # fmt: skip
        assert drain(mon) == []
    finally:
        writer.shutdown()
        other.shutdown()


CHILD = r"""
import socket, sys, threading
from evpnd.dataplane import echo_filter, netlink as nl
mon = nl.open_monitor()
print(repr(echo_filter.attach(mon, threading.get_native_id())), flush=True)
vx = socket.if_nametoindex("vx0")
ops = [nl.Op(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_REPLACE,
             nl.fdb_body(vx, "02:00:00:00:03:01", "10.0.0.2", 0x16, nl.NUD_REACHABLE)),
       nl.Op(nl.RTM_DELNEIGH, 0, nl.fdb_body(vx, "02:00:00:00:03:01", None, 0x16, 0))]
req = nl.Requester()
req.run(ops)
print([op.error for op in ops], flush=True)
import time; time.sleep(0.2)
kinds = []
buf = bytearray(65536)
mon.setblocking(False)
while True:
    try:
        size = mon.recv_into(buf)
    except BlockingIOError:
        break
    for mtype, _f, _s, off, end in nl.iter_messages(buf, size):
        if mtype in (nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH):
            kinds.append(mtype)
print(kinds, flush=True)
"""


def test_without_cap_bpf_the_classic_filter_stays(lab):
    """The shipped systemd unit grants CAP_NET_ADMIN only: the eBPF filter does not load, the
    classic one still drops the echo of own adds, the echo of own deletes is read."""
    ns = topology(lab)
    out = ns.run(
        ["setpriv", "--bounding-set", "-bpf,-sys_admin", "--inh-caps", "-bpf,-sys_admin",
         sys.executable, "-c", CHILD],
        timeout=60,
    )  # fmt: skip
    attached, errors, kinds = out.strip().splitlines()[-3:]
    assert attached == "''"
    assert errors == "[0, 0]"
    assert kinds == f"[{nl.RTM_DELNEIGH}, {nl.RTM_DELNEIGH}]"  # both halves' deletes, no add


CHILD_PIDNS = r"""
import threading
from evpnd.dataplane import echo_filter, netlink as nl
mon = nl.open_monitor()
tid = threading.get_native_id()
print(echo_filter.in_initial_pid_namespace(), repr(echo_filter.attach(mon, tid, ("tid",))),
      repr(echo_filter.attach(mon, tid)), flush=True)
"""


def test_in_a_pid_namespace_the_thread_id_is_not_used(lab):
    """In a container (here `unshare --pid`) the worker's thread id is not the one the eBPF
    helper returns (the initial namespace's): the filter must not be built on it; the task
    way still loads."""
    ns = topology(lab)
    out = ns.run(["unshare", "--pid", "--fork", sys.executable, "-c", CHILD_PIDNS], timeout=60)
    assert out.strip().splitlines()[-1] == "False '' 'task'", out


def test_the_program_assembles_to_whole_instructions():
    task = 0xFFFF888101210000
    with_task = [r for r in echo_filter.program(1234, task) if not isinstance(r, str)]
    code = echo_filter.assemble(echo_filter.program(1234, task))
    assert len(code) == 8 * (len(with_task) + 1)  # the 64-bit constant takes two slots
    lo, hi = task & 0xFFFFFFFF, task >> 32  # r1 = task: ld_imm64, then its upper half
    assert struct.pack("<BBhIBBhI", 0x18, 1, 0, lo, 0, 0, 0, hi) in code
    code = echo_filter.assemble(echo_filter.program(1234))
    rows = [row for row in echo_filter.program(1234) if not isinstance(row, str)]
    assert len(code) == 8 * len(rows)
    # every jump lands on an instruction of the program, forwards
    for i in range(len(rows)):
        code_i, _regs, off, _imm = struct.unpack_from("<BBhi", code, 8 * i)
        if code_i in (0x05, 0x15, 0x25, 0x45, 0x55):
            assert off >= 0 and i + 1 + off < len(rows)
