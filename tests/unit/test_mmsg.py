"""evpnd/dataplane/mmsg.py: datagrams sent by sendmmsg(2) keep their boundaries and order,
more than the kernel's 1,024 per call take more calls, and a refused send raises. A connected
AF_UNIX datagram pair stands in for the netlink socket here (tests/netns/test_netlink_datagrams.py
sends to the kernel)."""

from __future__ import annotations

import socket
import threading

import pytest

from evpnd.dataplane import mmsg


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.settimeout(5.0)
    return a, b


def test_boundaries_order_and_one_call() -> None:
    a, b = pair()
    parts = [bytes([k]) * (100 + 37 * k) for k in range(6)]
    data = b"".join(parts)
    ends = [sum(len(p) for p in parts[: k + 1]) for k in range(len(parts))]
    assert mmsg.send_datagrams(a, data, ends) == 1
    assert [b.recv(65536) for _ in parts] == parts
    a.close()
    b.close()


def test_more_than_a_call_holds() -> None:
    a, b = pair()
    count = 1500  # UIO_MAXIOV is 1,024: two calls
    data = b"".join(k.to_bytes(4, "big") for k in range(count))
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(b.recv(64) for _ in range(count)))
    reader.start()  # the pair queues fewer datagrams than this (net.unix.max_dgram_qlen)
    assert mmsg.send_datagrams(a, data, [4 * (k + 1) for k in range(count)]) >= 2
    reader.join(10)
    assert [int.from_bytes(g, "big") for g in got] == list(range(count))
    a.close()
    b.close()


def test_one_datagram_is_a_plain_send() -> None:
    a, b = pair()
    assert mmsg.send_datagrams(a, b"xyz", [3]) == 1
    assert b.recv(16) == b"xyz"
    a.close()
    b.close()


def test_a_refused_send_raises() -> None:
    a, b = pair()
    b.close()
    with pytest.raises(OSError):
        mmsg.send_datagrams(a, b"abcdef", [3, 6])
    a.close()
