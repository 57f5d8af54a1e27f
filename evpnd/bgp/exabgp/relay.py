"""ExaBGP's API process: relays its stdin/stdout to evpnd's unix socket, both ways.

ExaBGP runs `python -I -S .../relay.py SOCKET` as its helper process
(exabgp_conf.relay_command). The relay never blocks on one direction while the other has
data (ExaBGP writes to us with blocking writes, so a relay stuck writing commands to ExaBGP
while ExaBGP is stuck writing events to the relay would deadlock both): every fd is
non-blocking and each direction has its own buffer. Each buffer is bounded (BUFFER_MAX):
while one is full the relay stops reading its source, so a flood pushes back instead of
growing memory: evpnd stops reading -> the relay's buffer fills -> the relay stops reading
ExaBGP -> ExaBGP's blocking write waits, it reads no more from its TCP sessions -> the peer's
TCP window closes. The other direction keeps flowing meanwhile. When either end closes, the
relay exits; ExaBGP (exabgp.api.terminate) then exits too, and evpnd's supervisor restarts it.
Only the standard library is imported, and it runs as a script without site-packages: it
starts in 17 ms (46-49 ms as `-m evpnd...`). UPDATEs that arrive before it runs wait in
ExaBGP's pipe, so a session that came up as ExaBGP started waited that long.
"""

from __future__ import annotations

import os
import select
import socket
import sys

CHUNK = 1 << 18
BUFFER_MAX = 4 * CHUNK  # per direction; a read adds at most CHUNK, so a buffer stays < 5 CHUNKs


def relay(sock: socket.socket, fd_in: int, fd_out: int) -> None:
    sock.setblocking(False)
    os.set_blocking(fd_in, False)
    os.set_blocking(fd_out, False)
    sfd = sock.fileno()
    to_sock = bytearray()  # ExaBGP -> evpnd
    to_exabgp = bytearray()  # evpnd -> ExaBGP
    in_open = sock_open = True
    poller = select.poll()
    while True:
        if not sock_open and not to_exabgp:
            return
        if not in_open and not to_sock:
            return
        masks = {}
        if in_open and len(to_sock) < BUFFER_MAX:
            masks[fd_in] = select.POLLIN
        if sock_open:
            reading = select.POLLIN if len(to_exabgp) < BUFFER_MAX else 0
            mask = reading | (select.POLLOUT if to_sock else 0)
            if mask:
                masks[sfd] = mask
        elif to_sock:
            return  # evpnd went away: nobody left to deliver events to
        if to_exabgp:
            masks[fd_out] = masks.get(fd_out, 0) | select.POLLOUT
        for fd in (fd_in, sfd, fd_out):
            try:
                poller.unregister(fd)
            except KeyError:
                pass
        for fd, mask in masks.items():
            poller.register(fd, mask)
        for fd, event in poller.poll():
            if fd == fd_in and event & (select.POLLIN | select.POLLHUP | select.POLLERR):
                data = _read(fd)
                if data:
                    to_sock += data
                elif data is not None:
                    in_open = False
            if fd == sfd:
                if event & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        data = sock.recv(CHUNK)
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    if data:
                        to_exabgp += data
                    elif data is not None:
                        sock_open = False
                if event & select.POLLOUT and to_sock:
                    try:
                        sent = sock.send(to_sock)
                        del to_sock[:sent]
                    except BlockingIOError:
                        pass
                    except OSError:
                        return
            if fd == fd_out and event & select.POLLOUT and to_exabgp:
                try:
                    written = os.write(fd, to_exabgp[:CHUNK])
                    del to_exabgp[:written]
                except BlockingIOError:
                    pass
                except OSError:
                    return
            if fd == fd_out and event & (select.POLLERR | select.POLLHUP):
                return


def _read(fd: int) -> bytes | None:
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return None  # spurious wake-up: not an end of file
    except OSError:
        return b""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -I -S relay.py SOCKET\n")
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(args[0])
    except OSError as exc:
        sys.stderr.write(f"evpnd relay: cannot connect to {args[0]}: {exc}\n")
        return 1
    relay(sock, sys.stdin.fileno(), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
