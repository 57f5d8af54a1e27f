"""The relay copies both directions at once without deadlock, and ends with either side."""

from __future__ import annotations

import os
import socket
import threading

from evpnd.bgp.exabgp.relay import relay

SIZE = 8 << 20  # far more than a pipe (64 KiB) or socket buffer holds


def _drain(read, out: bytearray, size: int) -> None:
    while len(out) < size:
        data = read()
        if not data:
            return
        out += data


def test_both_directions_at_once():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    in_r, in_w = os.pipe()  # ExaBGP -> relay (the relay's stdin)
    out_r, out_w = os.pipe()  # relay -> ExaBGP (the relay's stdout)
    worker = threading.Thread(target=relay, args=(theirs, in_r, out_w), daemon=True)
    worker.start()
    events = bytes(range(256)) * (SIZE // 256)
    commands = bytes(reversed(range(256))) * (SIZE // 256)
    got_events, got_commands = bytearray(), bytearray()
    readers = [
        threading.Thread(target=_drain, args=(lambda: ours.recv(1 << 16), got_events, SIZE)),
        threading.Thread(target=_drain, args=(lambda: os.read(out_r, 1 << 16), got_commands, SIZE)),
    ]
    writers = [
        threading.Thread(target=os.write, args=(in_w, events)),  # blocking pipe: writes all
        threading.Thread(target=ours.sendall, args=(commands,)),
    ]
    for t in readers + writers:
        t.start()
    for t in writers + readers:
        t.join(30)
    assert bytes(got_events) == events
    assert bytes(got_commands) == commands
    os.close(in_w)  # ExaBGP closed its side: the relay ends
    worker.join(10)
    assert not worker.is_alive()
    for fd in (in_r, out_r, out_w):
        os.close(fd)
    ours.close()


def test_ends_when_evpnd_goes_away():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    worker = threading.Thread(target=relay, args=(theirs, in_r, out_w), daemon=True)
    worker.start()
    ours.sendall(b"evpnd ping t1\n")
    assert os.read(out_r, 100) == b"evpnd ping t1\n"
    ours.close()
    worker.join(10)
    assert not worker.is_alive()
    for fd in (in_r, in_w, out_r, out_w):
        os.close(fd)


def test_a_flood_pushes_back_instead_of_growing_the_buffer():
    """evpnd reads nothing: the relay stops reading ExaBGP once its buffer is full, so ExaBGP's
    writes stop being accepted (in production they block, and ExaBGP stops reading its TCP
    sessions); the relay's memory stays bounded and nothing is lost once evpnd reads again."""
    from evpnd.bgp.exabgp.relay import BUFFER_MAX, CHUNK

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    worker = threading.Thread(target=relay, args=(theirs, in_r, out_w), daemon=True)
    worker.start()
    os.set_blocking(in_w, False)
    block = b"x" * (1 << 16)
    accepted = 0
    stalled_since = None
    import time

    while True:  # write as ExaBGP would, until nothing more is taken for half a second
        try:
            accepted += os.write(in_w, block)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 0.5:
                break
            time.sleep(0.01)
        assert accepted < 64 << 20, "the relay kept reading: no back-pressure"
    kernel = 2 * (theirs.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) + (1 << 16))
    assert accepted <= BUFFER_MAX + CHUNK + kernel
    got = bytearray()
    os.set_blocking(in_w, True)
    os.close(in_w)
    _drain(lambda: ours.recv(1 << 16), got, accepted)
    assert len(got) == accepted and set(got) == {ord("x")}
    worker.join(10)
    assert not worker.is_alive()
    for fd in (in_r, out_r, out_w):
        os.close(fd)
    ours.close()


def test_the_command_exabgp_runs_relays_with_the_standard_library_only(tmp_path):
    """The relay as ExaBGP starts it (exabgp_conf.relay_command: -I -S, no site-packages, so
    it starts in milliseconds): it connects, copies both ways, and loads no evpnd module."""
    import shlex
    import subprocess

    from evpnd.bgp import exabgp_conf

    path = tmp_path / "api.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    cmd = shlex.split(exabgp_conf.relay_command(path))
    assert cmd[1:3] == ["-I", "-S"]
    # what the script imports, printed to stderr at its end (it must not be evpnd's)
    probe = (
        "import atexit, sys; atexit.register(lambda: print(sorted(sys.modules), file=sys.stderr))"
    )
    proc = subprocess.Popen(
        [cmd[0], "-I", "-S", "-c", f"{probe}; sys.argv = {cmd[3:]!r}; "
         f"exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        proc.stdin.write(b"neighbor 10.0.0.2 up\n")
        proc.stdin.flush()
        conn.settimeout(10)
        assert conn.recv(100) == b"neighbor 10.0.0.2 up\n"
        conn.sendall(b"evpnd routes 1\n")
        assert proc.stdout.readline() == b"evpnd routes 1\n"
        conn.close()  # evpnd gone: the relay ends
        assert proc.wait(10) == 0
        modules = proc.stderr.read().decode()
        assert "'socket'" in modules and "evpnd" not in modules, modules
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        srv.close()
