"""The monitor socket's filter: the kernel drops the echo of evpnd's own writes, deletes included.

Every FDB entry, neighbour or route evpnd writes or deletes comes back on the monitor socket as
a notification, one `recv` each: a withdrawal of 100k MACs echoes 200k RTM_DELNEIGH (the
vxlan `self` half and the bridge `master` half), a third of evpnd's py-spy samples in the
withdraw (issue 14). The outcome of those writes is known already from the request socket.

The classic-BPF filter (netlink.attach_own_add_filter) can drop the echo of evpnd's adds by
their flags (NTF_EXT_LEARNED, protocol 235), but not of its deletes: a delete notification
looks the same whoever deleted the entry, and a person deleting an entry evpnd wants must be
seen (drift repair). What tells them apart is who deleted: the kernel raises the notification
synchronously in the context of the task whose request made the change, and every netlink
write of evpnd goes through its one worker thread (worker.py). So this eBPF socket filter, in
addition to the classic filter's rules, drops

    RTM_DELNEIGH with NTF_EXT_LEARNED, RTM_DELROUTE with protocol 235
    raised while the current task is evpnd's worker thread (bpf_get_current_pid_tgid)

Kept narrow on purpose: a softirq (bridge learning, ARP) can run on top of any task, the worker
included, so "current task" alone could hide a locally learned MAC; but neither path deletes an
extern_learn entry (extern_learn entries neither age nor are garbage-collected) nor a protocol
235 route. A delete by anyone else (`bridge fdb del`, another daemon, another evpnd thread)
still comes through, as does everything that is not a delete of an evpnd-shaped object.
Deletes the kernel makes as a side effect of evpnd's own device changes are dropped too: those
changes are followed by a dump of the VNI concerned already (a bridge moved into its VRF, a
device made again; dataplane.py `_dump_changes`), as the kernel does not report all of them.

The writer is told by its thread id (bpf_get_current_pid_tgid: 6.18, this project's host; only
in the initial PID namespace, whose ids that helper returns: in a container the task is used) or,
where socket filters may not ask for it (Debian 12's 6.1: "unknown func", checked in the VM
tier's kernel), by its task_struct (bpf_get_current_task, which needs CAP_PERFMON; the address
is read once by `current_task`). Loading needs CAP_BPF (or CAP_SYS_ADMIN): unprivileged BPF is
disabled, Debian's default. Without these (the shipped systemd unit grants CAP_NET_ADMIN only)
`attach` returns "", the classic filter stays, and the delete echoes are read and found to be
no news as before.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct

from evpnd.dataplane import netlink as nl

SO_ATTACH_BPF = 50
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_FUNC_GET_CURRENT_PID_TGID = 14
BPF_FUNC_GET_CURRENT_TASK = 35
_LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW
# bpf(2) has no libc wrapper; its syscall number per architecture (asm/unistd.h)
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "i686": 357, "i386": 357, "armv7l": 386}

# Offsets in a notification (nlmsghdr is 16 bytes): the type's low byte (little endian; the
# rtnetlink types are < 256), ndmsg.ndm_family and ndm_flags, rtmsg.rtm_protocol.
_TYPE, _NDM_FAMILY, _NDM_FLAGS, _RTM_PROTOCOL = 4, 16, 16 + 10, 16 + 5

_ACCEPT, _DROP, _MINE = "accept", "drop", "mine"


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(writer_tid: int, task: int | None = None) -> list[tuple]:
    """The filter as (opcode, dst, src, jump target label or 0, imm) rows and labels; `assemble`
    resolves the labels. Opcodes: eBPF (linux/bpf.h). `task`: the writer thread's task_struct
    address (`current_task`), compared with bpf_get_current_task instead of the thread id."""
    ldb = 0x30  # r0 = skb[imm] (BPF_LD | BPF_ABS | BPF_B; the context in r6)
    jeq, jne, jgt, jset, ja = 0x15, 0x55, 0x25, 0x45, 0x05
    return [
        (0xBF, 6, 1, 0, 0),  # r6 = r1 (the skb, for the loads)
        (ldb, 0, 0, 0, _TYPE),
        (jeq, 0, 0, "del_neigh", nl.RTM_DELNEIGH),
        (jeq, 0, 0, "del_route", nl.RTM_DELROUTE),
        (jeq, 0, 0, "new_neigh", nl.RTM_NEWNEIGH),
        (jeq, 0, 0, "new_route", nl.RTM_NEWROUTE),
        (ja, 0, 0, _ACCEPT, 0),
        "new_neigh",  # the classic filter's rules: an extern_learn add, a protocol 235 route
        (ldb, 0, 0, 0, _NDM_FLAGS),
        (jset, 0, 0, _DROP, nl.NTF_EXT_LEARNED),
        (ja, 0, 0, "generic", 0),
        "new_route",
        (ldb, 0, 0, 0, _RTM_PROTOCOL),
        (jeq, 0, 0, _DROP, nl.RTPROT_EVPND),
        (ja, 0, 0, _ACCEPT, 0),
        "del_neigh",
        (ldb, 0, 0, 0, _NDM_FLAGS),
        (jset, 0, 0, _MINE, nl.NTF_EXT_LEARNED),
        "generic",  # r0 = ndm_flags; older kernels' generic FDB duplicate (netlink.py)
        (jne, 0, 0, _ACCEPT, nl.NTF_SELF),
        (ldb, 0, 0, 0, _NDM_FAMILY),
        (jne, 0, 0, _ACCEPT, nl.AF_BRIDGE),
        (0x61, 0, 6, 0, 0),  # r0 = skb->len (struct __sk_buff: len first)
        (jgt, 0, 0, _ACCEPT, nl.GENERIC_FDB_NOTIFY_MAX),
        (ja, 0, 0, _DROP, 0),
        "del_route",
        (ldb, 0, 0, 0, _RTM_PROTOCOL),
        (jeq, 0, 0, _MINE, nl.RTPROT_EVPND),
        (ja, 0, 0, _ACCEPT, 0),
        _MINE,  # deleted by evpnd's worker thread?
        *(
            [
                (0x85, 0, 0, 0, BPF_FUNC_GET_CURRENT_PID_TGID),  # r0 = tgid << 32 | pid
                (0xBC, 0, 0, 0, 0),  # w0 = w0: the thread id
                (jeq, 0, 0, _DROP, writer_tid),
            ]
            if task is None
            else [
                (0x85, 0, 0, 0, BPF_FUNC_GET_CURRENT_TASK),  # r0 = current task_struct
                (_LD_IMM64, 1, 0, 0, task),  # r1 = the writer's
                (0x1D, 0, 1, _DROP, 0),  # if r0 == r1
            ]
        ),
        _ACCEPT,
        (0xB7, 0, 0, 0, -1),  # r0 = all of it
        (0x95, 0, 0, 0, 0),  # exit
        _DROP,
        (0xB7, 0, 0, 0, 0),
        (0x95, 0, 0, 0, 0),
    ]


def assemble(rows: list) -> bytes:
    where: dict[str, int] = {}
    pc = 0
    for row in rows:
        if isinstance(row, str):
            where[row] = pc
        else:
            pc += 2 if row[0] == _LD_IMM64 else 1
    out, pc = [], 0
    for row in rows:
        if isinstance(row, str):
            continue
        code, dst, src, target, imm = row
        if code == _LD_IMM64:  # a 64-bit constant: two instruction slots
            out.append(struct.pack("<BBhI", code, dst, 0, imm & 0xFFFFFFFF))
            out.append(struct.pack("<BBhI", 0, 0, 0, imm >> 32))
            pc += 2
            continue
        off = where[target] - pc - 1 if isinstance(target, str) else 0
        out.append(_insn(code, dst, src, off, imm))
        pc += 1
    return b"".join(out)


def load(writer_tid: int, task: int | None = None) -> int:
    """The program's file descriptor; OSError if the kernel refuses it (EPERM: no CAP_BPF)."""
    return load_code(assemble(program(writer_tid, task)))


def load_code(code: bytes) -> int:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2) syscall number unknown on {platform.machine()}")
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(4096)
    attr = bytearray(128)  # union bpf_attr, the BPF_PROG_LOAD part
    struct.pack_into(
        "=IIQQIIQ", attr, 0, BPF_PROG_TYPE_SOCKET_FILTER, len(code) // 8,
        ctypes.addressof(insns), ctypes.addressof(license_), 1, len(log), ctypes.addressof(log),
    )  # fmt: skip
    raw = (ctypes.c_char * len(attr)).from_buffer(attr)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(BPF_PROG_LOAD), raw, len(attr))
    if fd < 0:
        err = ctypes.get_errno()
        # the verifier's reason, not its closing statistics ("processed N insns ...")
        lines = log.value.decode(errors="replace").strip().splitlines()
        why = [ln for ln in lines if ln and not ln.startswith(("processed ", "verification "))]
        raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}: {why[-1] if why else ''}")
    return fd


def current_task() -> int:
    """The calling thread's task_struct address, as bpf_get_current_task gives it (kernels
    whose socket filters may not ask for the thread id, Debian 12's 6.1, allow this with
    CAP_PERFMON). Read by four probe filters on a private NETLINK_USERSOCK pair: a unicast
    runs the receiver's filter in the sender's context, and each probe keeps 1 + 16 bits of
    the address as the message's length."""
    rx = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 2)
    tx = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 2)
    try:
        rx.bind((0, 0))
        tx.bind((0, 0))
        rx.settimeout(1.0)
        address, probe = 0, bytes(1 << 17)  # longer than any 16-bit length + 1
        for part in range(4):
            fd = load_code(
                b"".join(
                    [
                        _insn(0x85, imm=BPF_FUNC_GET_CURRENT_TASK),  # r0 = current task
                        _insn(0x77, dst=0, imm=16 * part),  # r0 >>= 16 * part
                        _insn(0x57, dst=0, imm=0xFFFF),  # r0 &= 0xffff
                        _insn(0x07, dst=0, imm=1),  # r0 += 1 (0 would drop it)
                        _insn(0x95),
                    ]
                )
            )
            try:
                rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, struct.pack("=i", fd))
            finally:
                os.close(fd)
            tx.sendto(probe, rx.getsockname())
            address |= (len(rx.recv(len(probe))) - 1) << (16 * part)
        return address
    finally:
        rx.close()
        tx.close()


PROC_PID_INIT_INO = 0xEFFFFFFC  # the initial PID namespace's inode (include/linux/proc_ns.h)


def in_initial_pid_namespace() -> bool:
    try:
        return os.stat("/proc/self/ns/pid").st_ino == PROC_PID_INIT_INO
    except OSError:
        return False


def attach(sock: socket.socket, writer_tid: int, methods: tuple[str, ...] = ("tid", "task")) -> str:
    """Replace the monitor's classic filter with this one, telling the writer by its thread id
    ("tid") or, where the kernel does not let socket filters ask for it, by its task ("task":
    run this in the writer thread). The method that loaded, or "" (the classic filter stays).
    writer_tid: threading.get_native_id() of the worker."""
    if struct.pack("=H", 1) != b"\x01\0":  # the type is read as its low byte (little endian)
        return ""
    if not in_initial_pid_namespace():
        # bpf_get_current_pid_tgid gives the thread id of the initial PID namespace, the
        # worker's own id is that of its namespace (a container, `unshare --pid`): they differ,
        # and the number might even be another process's thread on the host. The task is the
        # same everywhere.
        methods = tuple(m for m in methods if m != "tid")
    for method in methods:
        try:
            fd = load(writer_tid) if method == "tid" else load(writer_tid, current_task())
        except OSError:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, struct.pack("=i", fd))
        except OSError:
            continue
        finally:
            os.close(fd)  # the socket holds the program now
        return method
    return ""
