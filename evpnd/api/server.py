"""The control socket: an asyncio unix server that answers evpnctl's requests.

Access is checked twice: by the socket file's mode and group (set before the socket becomes
visible under its name), and per connection by the peer's credentials (SO_PEERCRED and
SO_PEERGROUPS), so a socket made too permissive by a careless mode still refuses strangers.
Allowed: root, the daemon's own user, and members of the configured group (by default the
daemon's group, which owns the socket file).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import socket
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

from evpnd.api import protocol
from evpnd.api.queries import QueryError, Raw, run_query
from evpnd.config import Config
from evpnd.logs import get_logger

if TYPE_CHECKING:
    from evpnd.api import ApiContext

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux 4.13+, missing from older Pythons
_MAX_GROUPS = 256  # Python caps getsockopt's buffer at 1024 bytes

log = get_logger("api")


class ApiSetupError(Exception):
    """The socket cannot be created (bad group, another daemon listening, permissions)."""


def resolve_group(name: str | None) -> int:
    """The group allowed to connect: the configured one, else the daemon's own group."""
    if name is None:
        return os.getegid()
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ApiSetupError(f"api.group: no such group {name!r}") from None


def _in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def bind_socket(path: Path, mode: int, gid: int) -> socket.socket:
    """Bind under a temporary name in the same directory, set mode and group, then rename:
    the socket never exists under its real name with the wrong permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and _in_use(path):
        raise ApiSetupError(f"{path}: another process is listening (is evpnd already running?)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # umask 0o177 while binding: the temporary name is private until chmod.
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(tmp))
        finally:
            os.umask(old_umask)
        if os.stat(tmp).st_gid != gid:
            os.chown(tmp, -1, gid)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ApiSetupError(f"{path}: cannot create the control socket: {exc.strerror}") from None
    return sock


def peer_credentials(sock: socket.socket) -> tuple[int, int, int, set[int]]:
    """(pid, uid, gid, supplementary groups) of the connected peer, from the kernel."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * _MAX_GROUPS)
        return pid, uid, gid, set(struct.unpack(f"{len(raw) // 4}I", raw))
    except OSError:
        pass  # more groups than fit, or an old kernel: ask the user database instead
    try:
        return pid, uid, gid, set(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    except (KeyError, OSError):
        return pid, uid, gid, set()


def allowed(uid: int, gid: int, groups: set[int], allowed_gid: int) -> bool:
    return uid == 0 or uid == os.geteuid() or gid == allowed_gid or allowed_gid in groups


class ApiServer:
    def __init__(self, ctx: ApiContext, cfg: Config, sock: socket.socket, gid: int) -> None:
        self.ctx = ctx
        self.path = Path(cfg.api.socket)
        self.group_name = cfg.api.group
        self.gid = gid
        self._sock = sock
        self._inode = os.stat(self.path).st_ino
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.refused = 0

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._client, sock=self._sock, limit=protocol.MAX_REQUEST
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        # Remove the file only if it is still ours (a new daemon may have replaced it).
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            sock = writer.get_extra_info("socket")
            pid, uid, gid, groups = peer_credentials(sock)
            if not allowed(uid, gid, groups, self.gid):
                self.refused += 1
                group = self.group_name or _group_name(self.gid)
                log.warning("api_refused", pid=pid, uid=uid, gid=gid)
                # Read the request first, so the client's write does not fail (EPIPE) and
                # closing with unread data does not reset the answer away.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader.readline(), 1.0)
                writer.write(
                    protocol.error(f"permission denied: uid {uid} is not root or in group {group}")
                )
                await writer.drain()
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                writer.write(protocol.error(f"request longer than {protocol.MAX_REQUEST} bytes"))
                await writer.drain()
                return
            if not line:
                return
            if not line.strip():
                continue
            writer.write(await self.answer(line))
            await writer.drain()

    async def answer(self, line: bytes) -> bytes:
        """One request line -> one reply line. Never raises: every failure is an error reply."""
        self.requests += 1
        started = time.perf_counter()
        cmd = "?"
        try:
            cmd, args = protocol.parse_request(line)
            reply = await run_query(self.ctx, cmd, args)
            data = reply.data if isinstance(reply, Raw) else reply.model_dump(mode="json")
            out = protocol.ok(data)
        except (protocol.ProtocolError, QueryError) as exc:
            out = protocol.error(str(exc))
        except Exception as exc:  # a bug in one query must not close the socket for everyone
            log.exception("api_query_failed", cmd=cmd)
            out = protocol.error(f"internal error in {cmd!r}: {type(exc).__name__}: {exc}")
        log.debug("api_request", cmd=cmd, ms=round((time.perf_counter() - started) * 1000, 2))
        return out


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


async def start_api(ctx: ApiContext, cfg: Config) -> ApiServer:
    """Create the control socket at cfg.api.socket and serve it until `close()`."""
    gid = resolve_group(cfg.api.group)
    sock = bind_socket(Path(cfg.api.socket), cfg.api.mode, gid)
    server = ApiServer(ctx, cfg, sock, gid)
    await server.start()
    log.info("api_listening", socket=str(cfg.api.socket), mode=oct(cfg.api.mode), gid=gid)
    return server
