"""The control socket: creation, permissions, framing, errors. A real asyncio server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from evpnd.api import start_api
from evpnd.api.server import ApiSetupError, allowed
from evpnd.config import parse_config
from tests.unit.test_api_world import CONFIG, make_world


def api_config(sock: Path, **api) -> object:
    return parse_config({**CONFIG, "api": {"socket": str(sock), **api}})


@contextlib.contextmanager
def serving(world, cfg):
    """Run the API server in its own event loop thread (evpnctl is a blocking client)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    async def main():
        try:
            box["server"] = await start_api(world, cfg)
        except Exception as exc:
            box["error"] = exc
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(main(), loop)
    started.wait(10)
    try:
        if "error" in box:
            raise box["error"]
        yield box["server"]
    finally:
        if "server" in box:
            asyncio.run_coroutine_threadsafe(box["server"].close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def talk(path: Path, *lines: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"".join(lines))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_socket_is_created_atomically_with_mode_and_group(tmp_path):
    sock = tmp_path / "run" / "evpnd.sock"
    with serving(make_world(), api_config(sock, mode=0o640)) as server:
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
        assert st.st_gid == os.getegid() == server.gid
        assert [p.name for p in sock.parent.iterdir()] == ["evpnd.sock"]  # no temp name left
        # A second daemon on the same socket is refused, and the first one keeps it.
        with (
            pytest.raises(ApiSetupError, match="already running"),
            serving(make_world(), api_config(sock)),
        ):
            pass
        assert talk(sock, b'{"cmd": "show status"}\n')[0]["ok"]
    assert not sock.exists()  # removed on close


def test_stale_socket_file_is_replaced(tmp_path):
    sock = tmp_path / "evpnd.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock))
    dead.close()  # a socket file nobody listens on: what a crash leaves behind
    with serving(make_world(), api_config(sock)):
        assert talk(sock, b'{"cmd": "show peers"}\n')[0]["ok"]


def test_unknown_group_is_a_clear_error(tmp_path):
    with (
        pytest.raises(ApiSetupError, match="no such group 'no-such-group-x'"),
        serving(make_world(), api_config(tmp_path / "s", group="no-such-group-x")),
    ):
        pass


def test_several_requests_and_errors_on_one_connection(tmp_path):
    sock = tmp_path / "evpnd.sock"
    with serving(make_world(), api_config(sock)) as server:
        replies = talk(
            sock,
            b'{"cmd": "show vni", "args": {"vni": 100}}\n',
            b"not json\n",
            b"\n",
            b'{"cmd": "show everything"}\n',
            b'{"cmd": "show routes", "args": {"type": 4}}\n',
            b'{"cmd": "show routes", "args": {"colour": "red"}}\n',
            b'{"cmd": "show vni", "args": {"vni": 4242}}\n',
            b'{"cmd": "show peers", "args": []}\n',
            b'{"cmd": "show status"}\n',
        )
        assert server.requests == 8
    assert replies[0]["ok"] and replies[0]["data"]["vnis"][0]["vni"] == 100
    errors = [r["error"] for r in replies[1:-1]]
    assert errors[0].startswith("request is not JSON")
    assert errors[1].startswith("unknown command 'show everything'")
    assert errors[2].startswith("show routes: type:")
    assert errors[3] == "show routes: colour: unknown argument"
    assert errors[4] == "unknown VNI 4242"
    assert errors[5] == '"args" must be an object'
    assert replies[-1]["ok"]


def test_oversized_request_is_refused(tmp_path):
    sock = tmp_path / "evpnd.sock"
    with serving(make_world(), api_config(sock)):
        reply = talk(sock, b'{"cmd": "' + b"x" * 70000 + b'"}\n')
        assert reply == [{"ok": False, "error": "request longer than 65536 bytes"}]
        assert talk(sock, b'{"cmd": "show status"}\n')[0]["ok"]  # still serving


def test_a_failing_query_is_an_error_reply_not_a_crash(tmp_path):
    sock = tmp_path / "evpnd.sock"
    world = make_world()

    def broken_diff():
        raise KeyError("boom")

    world.kernel_diff = broken_diff
    with serving(world, api_config(sock)):
        (reply,) = talk(sock, b'{"cmd": "show kernel diff"}\n')
        assert not reply["ok"] and "internal error in 'show kernel diff'" in reply["error"]
        assert talk(sock, b'{"cmd": "show status"}\n')[0]["ok"]


def test_access_rule():
    me = os.geteuid()
    assert allowed(0, 0, set(), 1234)
    assert allowed(me, 99, set(), 1234)
    assert allowed(5000, 1234, set(), 1234)  # primary group
    assert allowed(5000, 10, {7, 1234}, 1234)  # supplementary group (SO_PEERGROUPS)
    assert not allowed(5000, 10, {7}, 1234) or me == 5000


def test_peer_credentials_of_a_real_connection():
    from evpnd.api.server import peer_credentials

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        pid, uid, gid, groups = peer_credentials(a)
    assert (pid, uid, gid) == (os.getpid(), os.geteuid(), os.getegid())
    assert set(os.getgroups()) <= groups | {gid}
