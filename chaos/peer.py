"""A BGP peer for the chaos suite: holds N type-2 routes and sends them on every session.

    python chaos/peer.py N --listen ADDR [--churn ROUNDS]

Built on benchmarks/bgp_blaster.py (its OPEN and pre-encoded UPDATEs), but it accepts a new
session whenever the last one ends (evpnd killed, the underlay down) and keeps sending
KEEPALIVEs. With --churn it then withdraws and re-announces all N routes ROUNDS times as fast
as TCP allows (2*N*ROUNDS route updates), ending with all N announced. Prints `up T`, `sent T`
and `churned T` (time.monotonic()) per session.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from benchmarks.bgp_blaster import (  # noqa: E402
    KEEPALIVE,
    OPEN,
    mac_paths,
    message,
    open_message,
    read_message,
    updates,
    withdraws,
)


def keepalives(conn: socket.socket, lock: threading.Lock, stop: threading.Event) -> None:
    while not stop.wait(3.0):
        try:
            with lock:
                conn.sendall(message(KEEPALIVE, b""))
        except OSError:
            return


def drain(conn: socket.socket, stop: threading.Event) -> None:
    try:
        while True:
            read_message(conn)
    except (OSError, ConnectionError):
        stop.set()


def session(conn: socket.socket, args: argparse.Namespace, table: bytes, churn: bytes) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(open_message(args.asn, args.router_id, hold=args.hold))
    kind, _ = read_message(conn)
    if kind != OPEN:
        return
    conn.sendall(message(KEEPALIVE, b""))
    while read_message(conn)[0] != KEEPALIVE:
        pass
    print(f"up {time.monotonic()}", flush=True)
    stop, lock = threading.Event(), threading.Lock()
    threading.Thread(target=drain, args=(conn, stop), daemon=True).start()
    threading.Thread(target=keepalives, args=(conn, lock, stop), daemon=True).start()
    with lock:
        conn.sendall(table)
    print(f"sent {time.monotonic()}", flush=True)
    if churn:
        for _ in range(args.churn):
            with lock:  # one round at a time, so KEEPALIVEs get in between
                conn.sendall(churn)
        with lock:
            conn.sendall(table)
        print(f"churned {time.monotonic()}", flush=True)
    stop.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("n", type=int)
    p.add_argument("--listen", required=True)
    p.add_argument("--asn", type=int, default=65002)
    p.add_argument("--router-id", default="192.0.2.2")
    p.add_argument("--next-hop", default="192.0.2.2")
    p.add_argument("--vni", type=int, default=100)
    p.add_argument("--hold", type=int, default=9)
    p.add_argument("--churn", type=int, default=0)
    args = p.parse_args()
    paths = mac_paths(args.n, args.vni, f"{args.router_id}:1", args.next_hop, args.asn)
    msgs = updates(paths, args.asn, args.next_hop)
    table = b"".join(msgs[:-1])  # without End-of-RIB
    eor = msgs[-1]
    churn = b"".join(withdraws(paths)) + table if args.churn else b""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, 179))
    srv.listen(1)
    print(f"ready {len(msgs)}", flush=True)
    while True:
        conn, _ = srv.accept()
        try:
            session(conn, args, table + eor, churn)
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()
        print(f"down {time.monotonic()}", flush=True)


if __name__ == "__main__":
    main()
