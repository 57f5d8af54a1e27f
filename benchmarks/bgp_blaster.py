"""A minimal BGP speaker that replays N pre-encoded EVPN type-2 routes as fast as TCP allows.

    ip netns exec NS python benchmarks/bgp_blaster.py --listen ADDR --asn 65002 \
        --router-id 192.0.2.2 --next-hop 192.0.2.2 --vni 100 N

Benchmark tool only (not part of evpnd): it lets a benchmark time the device under test rather
than the sender. Passive: it accepts one session, exchanges OPEN (multiprotocol L2VPN EVPN,
4-byte ASN) and KEEPALIVE, then writes every UPDATE (about 110 NLRIs in each 4096-byte message)
and End-of-RIB. Prints `up T` when Established and `sent T` after the last byte (T =
time.monotonic()), then keeps the session alive until killed.

With `--hold` it writes nothing after `up` until told on stdin, so routes can be sent over an
established session: `go` (announce all; prints `first T` just before the first byte, `sent T`
after the last), `withdraw` (the same NLRIs in MP_UNREACH; `wfirst T`, `wsent T`), `expect K`
(prints `got K T` once K type-2 NLRIs have been received from the peer: advertise timing).
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from pathlib import Path as FsPath

sys.path.insert(0, str(FsPath(__file__).resolve().parent.parent))

from evpnd.bgp import wire  # noqa: E402
from evpnd.bgp.batch import pack_attributes, pack_path_nlri  # noqa: E402
from evpnd.routes.evpn import LOCAL_PEER, Attributes, MacIpKey, Path  # noqa: E402

MARKER = b"\xff" * 16
OPEN, UPDATE, KEEPALIVE = 1, 2, 4
AFI_L2VPN, SAFI_EVPN = 25, 70
MAX_MESSAGE = 4096


def message(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def open_message(asn: int, router_id: str, hold: int = 90) -> bytes:
    caps = struct.pack("!BBHBB", 1, 4, AFI_L2VPN, 0, SAFI_EVPN)  # multiprotocol
    caps += struct.pack("!BBI", 65, 4, asn)  # 4-byte ASN
    params = struct.pack("!BB", 2, len(caps)) + caps
    my_as = asn if asn <= 0xFFFF else 23456
    body = struct.pack("!BHH4sB", 4, my_as, hold, socket.inet_aton(router_id), len(params))
    return message(OPEN, body + params)


def nlri_chunks(paths: list[Path], room: int) -> list[list[bytes]]:
    """The paths' NLRIs in runs that fit `room` bytes: one run per UPDATE."""
    out: list[list[bytes]] = []
    chunk: list[bytes] = []
    size = 0
    for path in paths:
        nlri = pack_path_nlri(path)
        if size + len(nlri) > room:
            out.append(chunk)
            chunk, size = [], 0
        chunk.append(nlri)
        size += len(nlri)
    if chunk:
        out.append(chunk)
    return out


def updates(paths: list[Path], asn: int, next_hop: str) -> list[bytes]:
    common = bytes.fromhex(pack_attributes(paths[0].attrs))
    common += wire.pack_attribute(2, 0x40, struct.pack("!BBI", 2, 1, asn))  # AS_PATH
    nh = socket.inet_aton(next_hop)
    mp_head = struct.pack("!HBB", AFI_L2VPN, SAFI_EVPN, len(nh)) + nh + b"\x00"
    room = MAX_MESSAGE - 19 - 4 - len(common) - 4 - len(mp_head)
    out = nlri_chunks(paths, room)
    msgs = []
    for chunk in out:
        mp = wire.pack_attribute(14, 0x80, mp_head + b"".join(chunk))
        attrs = common + mp
        msgs.append(message(UPDATE, struct.pack("!HH", 0, len(attrs)) + attrs))
    eor = wire.pack_attribute(15, 0x80, struct.pack("!HB", AFI_L2VPN, SAFI_EVPN))
    msgs.append(message(UPDATE, struct.pack("!HH", 0, len(eor)) + eor))
    return msgs


def withdraws(paths: list[Path]) -> list[bytes]:
    """The same NLRIs in MP_UNREACH_NLRI, packed like `updates`."""
    room = MAX_MESSAGE - 19 - 4 - 4 - 3
    out = nlri_chunks(paths, room)
    msgs = []
    for chunk in out:
        attrs = wire.pack_attribute(
            15, 0x80, struct.pack("!HB", AFI_L2VPN, SAFI_EVPN) + b"".join(chunk)
        )
        msgs.append(message(UPDATE, struct.pack("!HH", 0, len(attrs)) + attrs))
    return msgs


def count_type2(body: bytes) -> int:
    """Type-2 NLRIs in an UPDATE's MP_REACH_NLRI."""
    wlen = struct.unpack_from("!H", body, 0)[0]
    off = 2 + wlen
    alen = struct.unpack_from("!H", body, off)[0]
    off += 2
    end = off + alen
    while off < end:
        flags, code = body[off], body[off + 1]
        if flags & 0x10:
            length = struct.unpack_from("!H", body, off + 2)[0]
            off += 4
        else:
            length = body[off + 2]
            off += 3
        if code == 14:
            nhlen = body[off + 3]
            p, stop, n = off + 5 + nhlen, off + length, 0
            while p + 2 <= stop:
                n += body[p] == 2
                p += 2 + body[p + 1]
            return n
        off += length
    return 0


def mac_paths(n: int, vni: int, rd: str, next_hop: str, asn: int) -> list[Path]:
    attrs = Attributes(route_targets=(f"{asn}:{vni}",), encap=8)
    out = []
    for i in range(n):
        b = i.to_bytes(4, "big")
        mac = f"02:00:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"
        out.append(Path(MacIpKey(rd, 0, mac, None), LOCAL_PEER, next_hop, vni, attrs=attrs))
    return out


def read_message(conn: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 19:
        chunk = conn.recv(19 - len(head))
        if not chunk:
            raise ConnectionError("peer closed")
        head += chunk
    length, kind = struct.unpack("!HB", head[16:19])
    body = b""
    while len(body) < length - 19:
        chunk = conn.recv(length - 19 - len(body))
        if not chunk:
            raise ConnectionError("peer closed")
        body += chunk
    return kind, body


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("n", type=int)
    p.add_argument("--listen", required=True)
    p.add_argument("--asn", type=int, default=65002)
    p.add_argument("--router-id", default="192.0.2.2")
    p.add_argument("--next-hop", default="192.0.2.2")
    p.add_argument("--vni", type=int, default=100)
    p.add_argument(
        "--rd",
        help="route distinguisher (default ROUTER_ID:1; a second route "
        "reflector sends the same routes: same RD and next hop)",
    )
    p.add_argument("--hold", action="store_true", help="send only when told on stdin")
    args = p.parse_args()
    paths = mac_paths(args.n, args.vni, args.rd or f"{args.router_id}:1", args.next_hop, args.asn)
    msgs = updates(paths, args.asn, args.next_hop)
    blob = b"".join(msgs)
    wblob = b"".join(withdraws(paths)) if args.hold else b""
    del paths
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, 179))
    srv.listen(1)
    print(f"ready {len(msgs)}", flush=True)
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(open_message(args.asn, args.router_id))
    kind, _ = read_message(conn)
    if kind != OPEN:
        raise SystemExit(f"expected OPEN, got {kind}")
    conn.sendall(message(KEEPALIVE, b""))
    while read_message(conn)[0] != KEEPALIVE:
        pass
    print(f"up {time.monotonic()}", flush=True)
    if args.hold:
        held(conn, blob, wblob)
        return
    print(f"first {time.monotonic()}", flush=True)
    conn.sendall(blob)
    print(f"sent {time.monotonic()}", flush=True)
    conn.settimeout(1)  # KEEPALIVE every second: FRR (datacenter) negotiates a 9 s hold time
    while True:  # answer nothing but keepalives; the benchmark kills this process
        try:
            try:
                read_message(conn)
            except TimeoutError:
                pass
            conn.sendall(message(KEEPALIVE, b""))
        except ConnectionError:
            return  # the DUT ended the session (the restart row stops it): nothing to report


def held(conn: socket.socket, blob: bytes, wblob: bytes) -> None:
    """Established: a reader thread counts what the peer advertises and answers nothing;
    keepalives every second; stdin says when to send."""
    lock = threading.Lock()
    expect = [0]
    got = [0]

    def reader() -> None:
        while True:
            kind, body = read_message(conn)
            if kind == UPDATE:
                got[0] += count_type2(body)
                if expect[0] and got[0] >= expect[0]:
                    print(f"got {got[0]} {time.monotonic()}", flush=True)
                    expect[0] = 0

    def keepalive() -> None:
        while True:
            time.sleep(1)
            with lock:
                conn.sendall(message(KEEPALIVE, b""))

    threading.Thread(target=reader, daemon=True).start()
    threading.Thread(target=keepalive, daemon=True).start()
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] in ("go", "withdraw"):
            data, tag = (blob, "") if cmd[0] == "go" else (wblob, "w")
            with lock:
                print(f"{tag}first {time.monotonic()}", flush=True)
                conn.sendall(data)
                print(f"{tag}sent {time.monotonic()}", flush=True)
        elif cmd and cmd[0] == "expect":
            expect[0] = int(cmd[1])
            if got[0] >= expect[0]:
                print(f"got {got[0]} {time.monotonic()}", flush=True)
                expect[0] = 0


if __name__ == "__main__":
    main()
