"""systemd's notify protocol (sd_notify(3)) without a dependency: datagrams to $NOTIFY_SOCKET.

Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op, so the daemon calls these
unconditionally. A failure to notify is logged by the caller's choice, never raised: systemd
being unreachable must not take the data plane down.
"""

from __future__ import annotations

import os
import socket

_ENV = "NOTIFY_SOCKET"


def _address(value: str) -> str | bytes:
    # '@name' is an abstract socket: the leading '@' stands for a NUL byte (sd_notify(3)).
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def notify(state: str, env: dict[str, str] | None = None) -> bool:
    """Send `state` (e.g. 'READY=1', 'WATCHDOG=1', 'STATUS=...', 'RELOADING=1').

    Returns True when a datagram was sent, False when not under systemd or sending failed.
    """
    target = (env if env is not None else os.environ).get(_ENV)
    if not target:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(target))
            sock.sendall(state.encode())
        return True
    except OSError:
        return False


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WatchdogSec (as sd_watchdog_enabled(3) advises),
    or None when the watchdog is off or meant for another process (WATCHDOG_PID)."""
    env = env if env is not None else os.environ
    usec = env.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2_000_000
