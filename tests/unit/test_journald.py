"""evpnd.journald: structlog events as journald native-protocol datagrams, one field per key.

journald itself is not running on this host; a datagram socket bound in tmp_path stands in for
/run/systemd/journal/socket and receives exactly what journald would. The systemd tier
(tests/systemd/) checks the same fields in a real journal with `journalctl -o json`.
"""

from __future__ import annotations

import array
import os
import socket
import struct
import sys

import pytest
import structlog

from evpnd import journald as journal
from evpnd import logs

CONTEXT = {"peer": "10.0.1.2", "vni": 100, "mac": "02:00:00:00:aa:01"}


@pytest.fixture(autouse=True)
def _restore_logging():
    config, configured = structlog.get_config(), logs._configured
    yield
    structlog.configure(**config)
    logs._configured = configured


@pytest.fixture
def journald(tmp_path):
    """A datagram socket where journald's would be."""
    path = str(tmp_path / "journal.socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    yield path, s
    s.close()


def test_each_key_is_an_upper_case_field():
    event = {**CONTEXT, "event": "route learned", "level": "info", "logger": "evpnd.bgp"}
    event["timestamp"] = "2026-01-01T00:00:00Z"
    fields = journal.decode(journal.encode(event))
    assert fields["PEER"] == "10.0.1.2" and fields["VNI"] == "100"
    assert fields["MAC"] == "02:00:00:00:aa:01" and fields["LOGGER"] == "evpnd.bgp"
    assert fields["PRIORITY"] == "6" and fields["SYSLOG_IDENTIFIER"] == "evpnd"
    # journald stamps entries itself; the level is PRIORITY; the event is MESSAGE
    assert not {"TIMESTAMP", "LEVEL", "EVENT"} & fields.keys()
    assert fields["MESSAGE"].startswith("route learned ")
    assert "peer=10.0.1.2" in fields["MESSAGE"] and "vni=100" in fields["MESSAGE"]


def test_the_wire_format_byte_for_byte():
    datagram = journal.encode({"event": "up", "level": "warning", "vni": 7})
    assert datagram == b"MESSAGE=up vni=7\nPRIORITY=4\nSYSLOG_IDENTIFIER=evpnd\nVNI=7\n"


def test_a_value_with_a_newline_is_length_prefixed():
    datagram = journal.encode({"event": "x", "level": "error", "problems": "a: bad\nb: worse"})
    value = b"a: bad\nb: worse"
    assert b"PROBLEMS\n" + struct.pack("<Q", len(value)) + value + b"\n" in datagram
    assert journal.decode(datagram)["PROBLEMS"] == "a: bad\nb: worse"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("peer", "PEER"),
        ("router-id", "ROUTER_ID"),
        ("_secret", "SECRET"),  # a leading '_' would claim a trusted field
        ("4byte", "F_4BYTE"),
        ("message", "EVPND_MESSAGE"),  # never overrides MESSAGE
        ("priority", "EVPND_PRIORITY"),
        ("x" * 80, "X" * 64),
        ("vnï", "VN_"),
    ],
)
def test_field_names(key, name):
    assert journal.field_name(key) == name


def test_levels_become_syslog_priorities():
    for level, prio in [("debug", "7"), ("info", "6"), ("warning", "4"), ("error", "3")]:
        fields = journal.decode(journal.encode({"event": "e", "level": level}))
        assert fields["PRIORITY"] == prio, level


def test_structured_values_are_json():
    fields = journal.decode(journal.encode({"event": "e", "vnis": [100, 200], "ok": True}))
    assert fields["VNIS"] == "[100,200]" and fields["OK"] == "true"


def test_setup_logging_sends_to_the_journal_socket(journald):
    path, sock = journald
    logs.setup_logging("info", journal_socket=path)
    logs.get_logger("evpnd.bgp", peer=CONTEXT["peer"]).info(
        "route learned", vni=100, mac=CONTEXT["mac"]
    )
    logs.get_logger("x").debug("filtered out at info")
    logs.get_logger("evpnd.core").bind(vni=200).error("mac frozen", mac="02:00:00:00:aa:02")
    first = journal.decode(sock.recv(65536))
    second = journal.decode(sock.recv(65536))
    assert {k: first[k] for k in ("PEER", "VNI", "MAC")} == {"PEER": "10.0.1.2", "VNI": "100",
                                                           "MAC": "02:00:00:00:aa:01"}  # fmt: skip
    assert first["PRIORITY"] == "6" and first["LOGGER"] == "evpnd.bgp"
    assert (second["VNI"], second["PRIORITY"], second["MAC"]) == ("200", "3", "02:00:00:00:aa:02")
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(65536)  # the debug event was filtered


def test_an_exception_keeps_its_traceback(journald):
    path, sock = journald
    logs.setup_logging("info", journal_socket=path)
    try:
        raise ValueError("bad NLRI")
    except ValueError:
        logs.get_logger("x", peer="10.0.2.2").exception("decode failed")
    fields = journal.decode(sock.recv(65536))
    assert fields["PRIORITY"] == "3" and fields["PEER"] == "10.0.2.2"
    assert "ValueError: bad NLRI" in fields["EXCEPTION"]
    assert "ValueError: bad NLRI" in fields["MESSAGE"]


def test_a_huge_event_goes_as_a_sealed_memfd(journald):
    path, sock = journald
    sender = journal.JournalSender(path)
    big = "m" * 400_000  # more than one AF_UNIX datagram may carry (EMSGSIZE)
    datagram = journal.encode({"event": "dump", "level": "info", "macs": big})
    assert sender.send(datagram) and sender.failures == 0
    fds = array.array("i")
    _, ancdata, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
    ((level, kind, data),) = ancdata
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    fds.frombytes(data[: fds.itemsize])
    with os.fdopen(fds[0], "rb") as f:
        f.seek(0)  # the sender's write moved the shared offset; journald reads with mmap
        assert journal.decode(f.read())["MACS"] == big


def test_a_missing_journal_never_raises(tmp_path):
    sender = journal.JournalSender(str(tmp_path / "gone"))
    assert sender.send(b"MESSAGE=x\n") is False and sender.failures == 1


def test_journal_stream_must_name_this_very_stream(tmp_path):
    with open(tmp_path / "f", "w") as f, open(tmp_path / "g", "w") as g:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert journal.connected_to_journal(f.fileno(), env)
        # stderr redirected elsewhere by the operator: back to lines on stderr
        assert not journal.connected_to_journal(g.fileno(), env)
    assert not journal.connected_to_journal(sys.stderr.fileno(), {})
    assert not journal.connected_to_journal(sys.stderr.fileno(), {"JOURNAL_STREAM": "x:y"})


def test_outside_systemd_logging_stays_on_the_stream(monkeypatch, capsys):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logs.setup_logging("info")
    logs.get_logger("x", vni=5).info("hello")
    assert '"vni": 5' in capsys.readouterr().err
