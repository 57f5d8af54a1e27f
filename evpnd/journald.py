"""journald's native protocol (systemd.journal-fields(7), "Native Journal Protocol") without a
dependency: one datagram per event to /run/systemd/journal/socket, each structlog key its own
upper-case journal field, so `journalctl -u evpnd PEER=10.0.0.2` and `-o json` see peer, vni and
mac as fields rather than text inside MESSAGE.

Used only when stderr really is connected to the journal (JOURNAL_STREAM names its device and
inode, as systemd.exec(5) describes): a daemon run by hand, or with stderr redirected, keeps
logging lines to stderr.
"""

from __future__ import annotations

import array
import json
import os
import re
import socket
import struct
from collections.abc import Mapping
from typing import Any

SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "evpnd"
# syslog(3) priorities, as journald's PRIORITY field wants them
PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3}
PRIORITIES |= {"critical": 2, "fatal": 2}
# Fields journald or the journal's clients give a meaning to: a structlog key that would land on
# one of them (a `message` or `priority` key of an event) gets the EVPND_ prefix instead.
RESERVED = {
    "MESSAGE", "MESSAGE_ID", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO",
    "SYSLOG_FACILITY", "SYSLOG_IDENTIFIER", "SYSLOG_PID", "SYSLOG_TIMESTAMP", "SYSLOG_RAW",
    "INVOCATION_ID", "USER_INVOCATION_ID", "TID", "UNIT", "USER_UNIT", "DOCUMENTATION",
    "COREDUMP_UNIT", "COREDUMP_USER_UNIT", "OBJECT_PID",
}  # fmt: skip
# Set by structlog's own processors and carried by journald already (the entry's own time and
# PRIORITY); MESSAGE is made from `event`.
DROPPED = {"timestamp", "level", "event"}
_NOT_NAME = re.compile(r"[^A-Z0-9_]")
_MAX_NAME = 64


def field_name(key: str) -> str:
    """A structlog key as a journal field name: upper case, [A-Z0-9_] only, not starting with a
    digit or '_' (those are journald's trusted fields), at most 64 characters."""
    name = _NOT_NAME.sub("_", key.upper()).lstrip("_")
    if not name or name[0].isdigit():
        name = "F_" + name
    if name in RESERVED:
        name = "EVPND_" + name
    return name[:_MAX_NAME]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    try:
        return json.dumps(value, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)


def _field(name: str, value: str) -> bytes:
    data = value.encode("utf-8", "replace")
    if b"\n" in data:
        # A value with a newline: the name, a newline, its length as 64-bit little endian, the
        # value, a newline.
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


def message(event: Mapping[str, Any]) -> str:
    """MESSAGE: the event and its context as `key=value`, for `journalctl` without -o json."""
    parts = [str(event.get("event", ""))]
    for key, value in event.items():
        if key in DROPPED or key == "exception":
            continue
        parts.append(f"{key}={_text(value)}")
    text = " ".join(parts)
    if "exception" in event:
        text += "\n" + str(event["exception"])
    return text


def encode(event: Mapping[str, Any], identifier: str = IDENTIFIER) -> bytes:
    """One structlog event dict as one native-protocol datagram."""
    level = str(event.get("level", "info"))
    out = [
        _field("MESSAGE", message(event)),
        _field("PRIORITY", str(PRIORITIES.get(level, 6))),
        _field("SYSLOG_IDENTIFIER", identifier),
    ]
    seen = {"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"}
    for key, value in event.items():
        if key in DROPPED:
            continue
        name = field_name(key)
        if name in seen:  # two keys that map to one name: keep the first
            continue
        seen.add(name)
        out.append(_field(name, _text(value)))
    return b"".join(out)


def decode(datagram: bytes) -> dict[str, str]:
    """The inverse of encode (for tests and for reading what was sent)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(datagram):
        end = datagram.index(b"\n", i)
        line = datagram[i:end]
        if b"=" in line:
            name, _, value = line.partition(b"=")
            fields[name.decode()] = value.decode()
            i = end + 1
        else:
            (size,) = struct.unpack("<Q", datagram[end + 1 : end + 9])
            start = end + 9
            fields[line.decode()] = datagram[start : start + size].decode()
            i = start + size + 1
    return fields


def connected_to_journal(fd: int, env: Mapping[str, str] | None = None) -> bool:
    """True when `fd` is the stream systemd connected to the journal (JOURNAL_STREAM=dev:ino)."""
    value = (env if env is not None else os.environ).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


class JournalSender:
    """Sends datagrams to journald; a datagram too big for the socket goes as a sealed memfd
    (the protocol's way for large entries). Never raises: logging must not take evpnd down."""

    def __init__(self, path: str = SOCKET) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.failures = 0

    def send(self, datagram: bytes) -> bool:
        try:
            self.sock.sendto(datagram, self.path)
            return True
        except OSError as exc:
            if exc.errno not in (90, 105):  # EMSGSIZE, ENOBUFS: too big for one datagram
                self.failures += 1
                return False
        return self._send_memfd(datagram)

    def _send_memfd(self, datagram: bytes) -> bool:
        try:
            fd = os.memfd_create("evpnd-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except (AttributeError, OSError):
            self.failures += 1
            return False
        try:
            os.write(fd, datagram)
            import fcntl

            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            fds = array.array("i", [fd])
            self.sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0, self.path)
            return True
        except OSError:
            self.failures += 1
            return False
        finally:
            os.close(fd)


class JournalLogger:
    """structlog's final logger under journald: receives encoded datagrams (JournalRenderer)."""

    def __init__(self, sender: JournalSender) -> None:
        self._sender = sender

    def msg(self, datagram: bytes) -> None:
        self._sender.send(datagram)

    log = debug = info = warn = warning = err = error = critical = exception = msg
    failure = fatal = msg


class JournalLoggerFactory:
    def __init__(self, sender: JournalSender) -> None:
        self._logger = JournalLogger(sender)

    def __call__(self, *args: object) -> JournalLogger:
        return self._logger


def render(_logger: object, _method: str, event: dict[str, Any]) -> bytes:
    """structlog's last processor under journald."""
    return encode(event)
