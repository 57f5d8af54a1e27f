"""Only root and the configured group may use the control socket.

Throwaway users (made with useradd here, removed after) connect with the system python3 (the
venv's interpreter lives under /root, which other users cannot enter): a stranger is refused by
the socket file's mode, and, when the mode is made too permissive, by the server's
SO_PEERCRED/SO_PEERGROUPS check; a member of the configured group is served.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.unit.test_api_server import api_config, serving
from tests.unit.test_api_world import make_world

pytestmark = pytest.mark.netns

CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect": type(exc).__name__})); sys.exit(0)
try:
    s.sendall(b'{"cmd": "show status"}\\n')
except BrokenPipeError:
    pass  # refused: the server already wrote its answer and closed
data = b""
while not data.endswith(b"\\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps({"reply": json.loads(data) if data else None}))
"""


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def accounts():
    if os.geteuid() != 0:
        pytest.fail("needs root (useradd)")
    tag = uuid.uuid4().hex[:6]
    group, stranger, member = f"evpg{tag}", f"evps{tag}", f"evpm{tag}"
    made: list[tuple[str, str]] = []
    try:
        run("groupadd", group)
        made.append(("groupdel", group))
        for user, extra in ((stranger, []), (member, ["-G", group])):
            run("useradd", "-M", "-N", "-g", "nogroup", "-s", "/usr/sbin/nologin", *extra, user)
            made.insert(0, ("userdel", user))
        yield {"group": group, "stranger": stranger, "member": member}
    finally:
        for cmd, name in made:
            subprocess.run([cmd, name], capture_output=True, timeout=30)


@pytest.fixture
def sockdir():
    d = Path(tempfile.mkdtemp(prefix="evpnd-access-"))
    d.chmod(0o755)  # others may reach the socket; the socket itself decides
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def connect_as(user: str, sock: Path) -> dict:
    proc = subprocess.run(
        ["setpriv", f"--reuid={user}", "--regid=nogroup", "--init-groups",
         "/usr/bin/python3", "-c", CLIENT, str(sock)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_socket_file_refuses_a_stranger(accounts, sockdir):
    sock = sockdir / "evpnd.sock"
    with serving(make_world(), api_config(sock, group=accounts["group"])):
        st = os.stat(sock)
        assert grp.getgrgid(st.st_gid).gr_name == accounts["group"]
        assert st.st_mode & 0o777 == 0o660
        assert connect_as(accounts["stranger"], sock) == {"connect": "PermissionError"}
        member = connect_as(accounts["member"], sock)
        assert member["reply"]["ok"] and member["reply"]["data"]["peers"] == 2


def test_peer_credentials_refuse_a_stranger_even_on_a_world_writable_socket(accounts, sockdir):
    sock = sockdir / "evpnd.sock"
    with serving(make_world(), api_config(sock, group=accounts["group"], mode=0o666)) as server:
        uid = pwd.getpwnam(accounts["stranger"]).pw_uid
        reply = connect_as(accounts["stranger"], sock)["reply"]
        assert reply == {
            "ok": False,
            "error": f"permission denied: uid {uid} is not root or in group {accounts['group']}",
        }
        assert server.refused == 1 and server.requests == 0
        # The member's group is a supplementary one: SO_PEERGROUPS lets it in.
        assert connect_as(accounts["member"], sock)["reply"]["ok"]
