"""sendmmsg(2) for netlink batches: many small datagrams, one system call, one GIL release.

Why small datagrams (issue 14, measured with perf on this machine's 6.18 kernel): every remote
FDB entry the VXLAN driver creates gets a per-CPU dst cache, allocated with GFP_ATOMIC from the
per-CPU allocator, and that allocation is the largest part of the kernel's work for an FDB
write. Inside one long `sendto` it gets several times slower: 100k FDB adds sent as 256 KiB
datagrams took 1.5-1.8 s of kernel time (85% of the samples in pcpu_alloc), as 16 KiB datagrams
0.35-0.65 s (50%); 32 KiB was 1.0 s, 64 KiB 1.45 s. The likely mechanism, not traced
further: the per-CPU allocator keeps only a few populated pages ready for atomic allocations
and refills them from a worker, which a `sendto` running for tens of milliseconds without a
break does not let run; sendmmsg reschedules between datagrams (cond_resched). zebra's data
plane sends 100 messages (6,400 bytes) per sendmsg (strace) and its thread spent about half
evpnd's kernel time on the same 100k entries before this change.

Why one call for many: each system call from the netlink thread releases the GIL and has to get
it back from the event loop thread, which is busy decoding UPDATEs during an install and lets go
only every switch interval (1 ms as the daemon sets it, 5 ms by default). A `sendto` per 16 KiB
would be hundreds of such waits per 100k; sendmmsg is one per chunk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Callable, Sequence

DATAGRAM_BYTES = 16 * 1024
_MAX_VLEN = 1024  # UIO_MAXIOV: the kernel's limit of datagrams per call


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _load() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sendmmsg  # CDLL: the GIL is released in the call
    except AttributeError:  # a libc without it: one sendto per datagram
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_sendmmsg = _load()


def send_datagrams(sock: socket.socket, data: bytes, ends: Sequence[int]) -> int:
    """Send data[ends[k-1]:ends[k]] as one datagram each, in order; return the system calls made.

    An unconnected netlink socket sends to the kernel (portid 0) when no address is given, as
    sendto(..., (0, 0)) does. A datagram the kernel refuses raises OSError; those before it
    were sent."""
    count = len(ends)
    if count == 1 or _sendmmsg is None:
        start = 0
        for end in ends:
            sock.send(data[start:end])
            start = end
        return count
    base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0  # no copy: data's buffer
    iovs = (_Iovec * count)()
    msgs = (_Mmsghdr * count)()
    start = 0
    for k, end in enumerate(ends):
        iovs[k].base = base + start
        iovs[k].len = end - start
        msgs[k].hdr.iov = ctypes.pointer(iovs[k])
        msgs[k].hdr.iovlen = 1
        start = end
    fd = sock.fileno()
    sent = calls = 0
    size = ctypes.sizeof(_Mmsghdr)
    at = ctypes.addressof(msgs)
    while sent < count:
        done = _sendmmsg(fd, at + sent * size, min(_MAX_VLEN, count - sent), 0)
        calls += 1
        if done > 0:
            sent += done
            continue
        err = ctypes.get_errno()
        if err == errno.EINTR:
            continue
        if err in (errno.EAGAIN, errno.EWOULDBLOCK):  # the socket has a timeout (non-blocking
            first = ends[sent - 1] if sent else 0  # fd): let Python's send do the waiting
            sock.send(data[first : ends[sent]])
            sent += 1
            continue
        raise OSError(err, os.strerror(err))
    return calls
