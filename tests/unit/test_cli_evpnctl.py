"""evpnctl end to end against a real API server: every command, table and JSON, and errors."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from evpnd.api.models import REPLIES
from evpnd.cli import evpnctl as ctl
from tests.unit.test_api_server import api_config, serving
from tests.unit.test_api_world import MAC_DUP, MAC_REMOTE, B, make_world

COMMANDS = [
    (["show", "routes"], "show routes", "Route Distinguisher: 10.0.0.1:1"),
    (["show", "routes", "--type", "3", "--vni", "100"], "show routes", "Displayed 2 paths"),
    (["show", "routes", "--rd", f"{B}:1"], "show routes", f"Route Distinguisher: {B}:1"),
    (["show", "peers"], "show peers", "Total peers 2, established 1"),
    (["show", "vni"], "show vni", "Local/Remote: MACs (L2)"),
    (["show", "vni", "100"], "show vni", "VNI: 100 (L2)"),
    (["show", "macs"], "show macs", "VNI 100 #MACs"),
    (["show", "macs", "--vni", "100", "--duplicate"], "show macs", MAC_DUP),
    (["show", "kernel", "--diff"], "show kernel diff", "converged"),
    (["show", "status"], "show status", "peers established"),
    (["explain", MAC_REMOTE], "explain", f"fdb {MAC_REMOTE} -> {B}"),
    (["explain", "10.1.0.21", "--vni", "100"], "explain", "neigh 10.1.0.21"),
    (["clear", "dup-addr", "--vni", "100", MAC_DUP], "clear dup-addr", "1 MACs released"),
    (["clear", "peer", B], "clear peer", f"No max_routes hold on peer {B}"),
    (["clear", "peer"], "clear peer", "No max_routes hold on all peers"),
]


@pytest.fixture
def api(tmp_path):
    sock = tmp_path / "evpnd.sock"
    with serving(make_world(), api_config(sock)):
        yield sock


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = ctl.run(argv, out=out)
    return code, out.getvalue()


@pytest.mark.parametrize(
    ("argv", "cmd", "expect"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
def test_every_command_as_table_and_json(api, argv, cmd, expect):
    code, text = run(["-s", str(api), *argv])
    assert code == 0 and expect in text
    if cmd == "clear dup-addr":
        return  # the first run cleared it; the JSON form is checked below
    code, text = run(["-s", str(api), *argv, "--json"])
    assert code == 0
    data = json.loads(text)
    REPLIES[cmd].model_validate(data)  # the printed JSON is the published model


def test_clear_dup_addr_json(api):
    code, text = run(["-s", str(api), "clear", "dup-addr", "--json"])
    assert code == 0 and json.loads(text) == {"vni": None, "mac": None, "cleared": 1}


def test_unknown_vni_is_one_line_and_exit_1(api, capsys):
    code, text = run(["-s", str(api), "show", "vni", "4242"])
    err = capsys.readouterr().err
    assert (code, text, err) == (1, "", "evpnctl: unknown VNI 4242\n")


def test_bad_input_rejected_by_the_daemon(api, capsys):
    assert run(["-s", str(api), "explain", "not-an-address"])[0] == 1
    assert capsys.readouterr().err == "evpnctl: not a MAC or IP address: 'not-an-address'\n"
    assert run(["-s", str(api), "clear", "dup-addr", "zz:zz"])[0] == 1
    assert "not a MAC address" in capsys.readouterr().err


def test_daemon_not_running(tmp_path, capsys):
    code, _ = run(["-s", str(tmp_path / "none.sock"), "show", "peers"])
    err = capsys.readouterr().err
    assert code == ctl.EXIT_UNREACHABLE
    assert (
        err
        == f"evpnctl: cannot connect to {tmp_path}/none.sock: no such socket (is evpnd running?)\n"
    )
    dead = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(dead))
    s.close()
    code, _ = run(["-s", str(dead), "show", "peers"])
    assert code == ctl.EXIT_UNREACHABLE
    assert "connection refused (is evpnd running?)" in capsys.readouterr().err


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        ctl.run(["show", "vni", "0"])
    assert exc.value.code == ctl.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "VNI out of range" in err


def test_console_script_prints_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("evpnctl")
    proc = subprocess.run([str(exe), "-s", str(tmp_path / "x.sock"), "show", "routes"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == ctl.EXIT_UNREACHABLE
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_default_socket_from_the_config(tmp_path):
    cfg = tmp_path / "evpnd.yaml"
    cfg.write_text("router_id: 10.0.0.1\napi:\n  socket: /run/x/y.sock\n")
    assert ctl.default_socket(cfg) == Path("/run/x/y.sock")
    cfg.write_text("just text")
    assert ctl.default_socket(cfg) == ctl.DEFAULT_SOCKET
    assert ctl.default_socket(tmp_path / "missing.yaml") == ctl.DEFAULT_SOCKET


def test_refused_by_the_daemon_is_one_line_exit_3(tmp_path, capsys):
    # A stand-in for a daemon that refuses this user (the real refusal is tested as a
    # throwaway user in tests/netns/test_ops_socket_access.py): one canned answer line.
    import threading

    path = tmp_path / "refusing.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)

    def answer():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(b'{"ok": false, "error": "permission denied: uid 1234 is not root '
                         b'or in group evpnd"}\n')  # fmt: skip

    t = threading.Thread(target=answer)
    t.start()
    code, _ = run(["-s", str(path), "show", "peers"])
    t.join(5)
    srv.close()
    assert code == ctl.EXIT_UNREACHABLE
    assert capsys.readouterr().err == (
        "evpnctl: permission denied: uid 1234 is not root or in group evpnd\n"
    )


def test_large_replies_render_the_same_as_validated_ones():
    from evpnd.api.models import RoutesReply
    from evpnd.cli import tables

    row = {"type": 2, "rd": "10.0.0.2:1", "prefix": "[2]:[0]:[48]:[02:00:00:00:00:01]",
           "mac": "02:00:00:00:00:01", "vni": 100, "next_hop": "10.0.0.2", "peer": "10.0.0.2",
           "flags": ["best"]}  # fmt: skip
    full = RoutesReply.model_validate({"routes": [row]}).model_dump(mode="json")["routes"][0]
    data = {"routes": [dict(full, seq=i) for i in range(ctl.LARGE_REPLY + 1)]}
    fast = ctl.decode("show routes", data)
    assert tables.render_routes(fast) == tables.render_routes(RoutesReply.model_validate(data))
    with pytest.raises(ValidationError):  # a reply of another version is still caught
        ctl.decode("show routes", {"routes": [dict(full, type="x")] * (ctl.LARGE_REPLY + 1)})


def test_clear_peer_of_an_unknown_peer_is_one_line_and_exit_1(api, capsys):
    assert run(["-s", str(api), "clear", "peer", "192.0.2.99"])[0] == 1
    assert capsys.readouterr().err == "evpnctl: no peer 192.0.2.99 is configured\n"
    assert run(["-s", str(api), "clear", "peer", "not-an-ip"])[0] == 1
    assert "evpnctl:" in capsys.readouterr().err
