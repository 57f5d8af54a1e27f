"""A batch reaches the kernel in small datagrams, one sendmmsg per chunk (mmsg.py: the kernel's
per-CPU allocator is several times slower inside one long `sendto`; issue 14), and each
refusal still comes back to the op that caused it, whichever datagram it was in."""

from __future__ import annotations

import errno
import socket

import pytest

from evpnd.dataplane import netlink as nl
from evpnd.dataplane.worker import Worker

pytestmark = pytest.mark.netns

FLAGS = nl.NTF_SELF | nl.NTF_MASTER | nl.NTF_EXT_LEARNED


def topology(lab):
    ns = lab.netns("dgram")
    ns.ip("link", "add", "br0", "type", "bridge")
    ns.ip("link", "add", "vx0", "type", "vxlan", "id", "100", "dstport", "4789",
          "local", "10.0.0.1", "nolearning")  # fmt: skip
    ns.ip("link", "set", "vx0", "master", "br0")
    for dev in ("br0", "vx0"):
        ns.ip("link", "set", dev, "up")
    return ns


def test_small_datagrams_one_call_errors_mapped(lab, monkeypatch):
    ns = topology(lab)
    worker = Worker(ns.name)
    lab.on_cleanup(worker.shutdown)
    vx = worker.call_sync(socket.if_nametoindex, "vx0")
    count, bad = 3000, {0, 1234, 2999}  # first, middle and last datagram
    ops = []
    for i in range(count):
        mac = f"02:00:00:01:{i >> 8:02x}:{i & 255:02x}"
        body = nl.fdb_body(999_999 if i in bad else vx, mac, "10.0.0.2", FLAGS, nl.NUD_REACHABLE)
        ops.append(nl.Op(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_REPLACE, body))

    sent: list[list[int]] = []
    real = nl.send_datagrams

    def recording(sock: socket.socket, data: bytes, ends: list[int]) -> int:
        sent.append(list(ends))  # what goes to the kernel, then the real send
        return real(sock, data, ends)

    monkeypatch.setattr(nl, "send_datagrams", recording)
    req = worker.call_sync(nl.Requester)
    lab.on_cleanup(lambda: worker.call_sync(req.close))
    assert worker.call_sync(req.run, ops)

    assert len(sent) == 1  # the whole batch (144 KB) is one chunk
    ends = sent[0]
    sizes = [b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    assert len(sizes) >= 8 and max(sizes) <= nl.Requester.DATAGRAM_BYTES
    assert req.sends == 1  # one system call for all of them
    assert [i for i, op in enumerate(ops) if op.error] == sorted(bad)
    assert {ops[i].error for i in bad} == {-errno.ENODEV}
    kernel = ns.run(["bridge", "fdb", "show", "dev", "vx0"])
    assert sum("extern_learn" in line and "self" in line for line in kernel.splitlines()) == (
        count - len(bad)
    )
