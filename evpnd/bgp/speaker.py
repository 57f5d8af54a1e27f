"""The Speaker: runs and supervises ExaBGP, the only code in evpnd that talks to it.

Channel: evpnd listens on a unix socket (runtime_dir/exabgp-api.sock). ExaBGP runs the relay
(`python -I -S .../relay.py SOCKET`) as its API process; the relay connects to the socket and
copies bytes both ways. ExaBGP itself is started through evpnd.bgp.exabgp.extension, which adds the
EVPN commands and the raw receive path. Each new relay connection is a fresh ExaBGP: the
Speaker then replays every local path (the resync callback); with graceful restart, it queues
End-of-RIB for each peer when that session comes up (ExaBGP runs with manual-eor), so the EoR
follows the replayed routes (RFC 4724 section 4.1).

Out (evpnd -> ExaBGP): `evpnd routes TICKET PEERS ; A NH ATTRS NLRI... ; W NLRI...` (packed
hex, evpnd.bgp.batch), up to `batch_size` routes per line, many lines per write.
announce()/withdraw() only record the latest operation per route key; a task writes them on
the next turn of the event loop.
In (ExaBGP -> evpnd): `evpnd-rx` lines (raw UPDATEs, decoded by the Speaker's UpdateDecoder,
evpnd.bgp.compact), `evpnd-ack` lines (matched by ticket, never by position), and ExaBGP's JSON
(state, notification, the peer's OPEN, End-of-RIB; the Speaker's MessageDecoder,
evpnd.bgp.codec). Both decoders' counters are in status()["decode"].

Supervision: ExaBGP is restarted with exponential backoff (capped by
cfg.exabgp.respawn_max_backoff) whenever it exits; every peer then gets a PeerState 'down'
(ExaBGP synthesises no withdraws: the core flushes on it). ExaBGP never outlives evpnd: it gets
PR_SET_PDEATHSIG=SIGKILL, shuts itself down when its relay ends (the extension does that: a
relay ends when evpnd's socket closes), and stop() terminates it (SIGTERM, then SIGKILL).
reconfigure() rewrites the file and sends SIGUSR1 (reload: unchanged sessions stay up).
SIGHUP is never sent: it shuts ExaBGP down.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path as FsPath

from evpnd.bgp import batch, exabgp_conf
from evpnd.bgp.codec import MessageDecoder
from evpnd.bgp.compact import PREFIX as RAW_PREFIX
from evpnd.bgp.compact import UpdateDecoder
from evpnd.config import Config
from evpnd.core.events import EndOfRib, Event, Notification, PeerOpen, PeerState, RouteUpdate
from evpnd.logs import get_logger
from evpnd.routes.evpn import Path, RouteKey
from evpnd.turns import Turn

_RAW = RAW_PREFIX.encode()
log = get_logger("evpnd.bgp")

_PR_SET_PDEATHSIG = 1
SOCKET_NAME = "exabgp-api.sock"
_MAX_LINE = 64 << 20  # an UPDATE is at most 65535 bytes (RFC 8654): its hex line is far less
CONFIG_NAME = "exabgp.conf"
_READ = 1 << 18  # per read from ExaBGP: decoding it is one uninterrupted turn of the loop
_READ_LIMIT = 1 << 21


def _die_with_parent() -> None:
    """preexec_fn: the kernel kills ExaBGP if evpnd (the parent) dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _ebgp_peers(cfg: Config) -> frozenset[str]:
    return frozenset(str(p.address) for p in cfg.peers if p.remote_as != cfg.asn)


class PeerStatus:
    __slots__ = ("state", "since", "updates", "routes", "reason", "flaps", "eor")

    def __init__(self) -> None:
        self.state = "idle"
        self.since = time.time()
        self.updates = 0
        self.routes = 0
        self.reason = ""
        self.flaps = 0
        self.eor = False

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "since": self.since,
            "uptime": time.time() - self.since if self.state == "up" else 0.0,
            "messages_received": self.updates,
            "routes_received": self.routes,
            "last_reason": self.reason,
            "last_error": self.reason if self.state != "up" else "",
            "flaps": self.flaps,
            "end_of_rib": self.eor,
        }


class Speaker:
    def __init__(
        self,
        cfg: Config,
        emit: Callable[[Event], None],
        *,
        wrapper: Sequence[str] = (),
        python: str = sys.executable,
        batch_size: int = 1000,
        initial_backoff: float = 0.5,
        extended_message: bool = True,
        room: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`wrapper` prefixes ExaBGP's command line (tests: `ip netns exec NS`). `room`, if
        given, is awaited before each read from ExaBGP: the consumer's back-pressure."""
        self._room = room
        self._last_pause = 0.0  # monotonic time the reads last waited for room
        self.frozen_kills = 0
        self._extended_message = extended_message
        self.cfg = cfg
        self._emit = emit
        self._wrapper = list(wrapper)
        self._python = python
        self._batch_size = batch_size
        self._initial_backoff = initial_backoff
        self._resync: Callable[[], list[Path]] = list
        # What to send: the core's lists as handed over (announce?, paths), coalesced by key
        # into _pending only when more than one is waiting (the last operation on a key wins)
        self._queued: list[tuple[bool, list[Path]]] = []
        self._pending: dict[RouteKey, tuple[bool, Path]] = {}
        self._flush_task: asyncio.Task | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.AbstractServer | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._peers: dict[str, PeerStatus] = {str(p.address): PeerStatus() for p in cfg.peers}
        self._restarts = 0
        self._ticket = 0
        # peers held down in ExaBGP (max_routes): address -> until (monotonic; None: until
        # released), replayed to a restarted ExaBGP
        self._holds: dict[str, float | None] = {}
        self._error_summary: asyncio.TimerHandle | None = None  # RFC 7606 burst log line
        self._errors_logged: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Future] = {}
        self._acks = {"ok": 0, "errors": 0, "last_error": ""}
        self._sent_routes = 0
        self._encode_errors = 0
        self._stopping = False
        self._ready = asyncio.Event()  # a relay is connected and the replay was written
        self._started_at = 0.0
        self.updates = UpdateDecoder()  # raw UPDATEs -> routes; counters and caches
        self.updates.ebgp_peers = _ebgp_peers(cfg)
        self.messages = MessageDecoder()  # ExaBGP's JSON -> session events; counters

    # ------------------------------------------------------------------ paths

    @property
    def runtime_dir(self) -> FsPath:
        return FsPath(self.cfg.runtime_dir)

    @property
    def socket_path(self) -> FsPath:
        return self.runtime_dir / SOCKET_NAME

    @property
    def config_path(self) -> FsPath:
        return self.runtime_dir / CONFIG_NAME

    # ------------------------------------------------------------------ contract

    def set_resync(self, fn: Callable[[], list[Path]]) -> None:
        self._resync = fn

    def announce(self, paths: list[Path]) -> None:
        self._queued.append((True, paths))
        self._schedule_flush()

    def withdraw(self, paths: list[Path]) -> None:
        self._queued.append((False, paths))
        self._schedule_flush()

    def _take_pending(self) -> list[tuple[bool, Path]]:
        """Everything announced or withdrawn since the last flush, one operation per key. A
        single list (the usual case: one owner turn's Effects per flush) has each key once
        already (Effects' rule) and goes as it is: no dict of 100k keys per burst."""
        queued, self._queued = self._queued, []
        if len(queued) == 1 and not self._pending:
            announce, paths = queued[0]
            return [(announce, path) for path in paths]
        pending, self._pending = self._pending, {}
        for announce, paths in queued:
            for path in paths:
                pending[path.key] = (announce, path)
        return list(pending.values())

    async def start(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(
            # the limit also bounds what the transport buffers before it stops reading (2x)
            self._on_relay,
            path=str(self.socket_path),
            limit=_READ_LIMIT,
        )
        os.chmod(self.socket_path, 0o600)
        self._write_config(self.cfg)
        self._stopping = False
        await self._launch()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        self._spawn(self._liveness())

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._terminate()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._all_down("evpnd stopped")

    async def reconfigure(self, cfg: Config) -> None:
        """Add/remove/change peers with a reload (SIGUSR1): other sessions are not bounced."""
        old = {str(p.address): p for p in self.cfg.peers}
        new = {str(p.address): p for p in cfg.peers}
        restart = exabgp_conf.environment(self.cfg) != exabgp_conf.environment(cfg)
        added = [a for a in new if a not in old]
        removed = [a for a in old if a not in new]
        self._write_config(cfg)  # ExabgpConfigError leaves the running configuration alone
        self.cfg = cfg
        self.updates.ebgp_peers = _ebgp_peers(cfg)
        for addr in added:
            self._peers[addr] = PeerStatus()
        for addr in removed:
            status = self._peers.pop(addr, None)
            if status is not None and status.state not in ("down", "idle"):
                self._emit(PeerState(addr, "down", "peer removed from the configuration"))
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return  # the next start reads the new file
        if restart:
            # listening address/port or logging changed: ExaBGP reads those only at start
            log.warning("exabgp settings changed: restarting it (all sessions reset)")
            await self._terminate()  # the supervisor starts it again with the new settings
            return
        if not self._ready.is_set():
            # ExaBGP is starting: SIGUSR1 before its handlers exist would kill it, and it may
            # have read the old file already. Its relay connecting means its reactor runs.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 15.0)
            if proc is not self._proc or proc.returncode is not None:
                return  # it was restarted meanwhile: the new one read the new file
        proc.send_signal(signal.SIGUSR1)
        log.info("exabgp reload", added=added, removed=removed, pid=proc.pid)
        if added and self._writer is not None:
            await self._wait_for_neighbors(set(new), timeout=10.0)
            peers = "+".join(added)
            await self._command(f"evpnd clear {{ticket}} {peers}")
            self._write_paths(self._resync_paths(), peers)

    def _resync_paths(self) -> list[Path]:
        try:
            return list(self._resync())
        except Exception as exc:  # noqa: BLE001 - a bad callback must not kill the channel
            log.error("resync callback failed", error=repr(exc))
            return []

    def status(self) -> dict:
        proc = self._proc
        return {
            "exabgp_pid": proc.pid if proc is not None and proc.returncode is None else None,
            "restarts": self._restarts,
            "frozen_kills": self.frozen_kills,
            "connected": self._writer is not None,
            "pending": len(self._pending) + sum(len(paths) for _, paths in self._queued),
            "routes_sent": self._sent_routes,
            "encode_errors": self._encode_errors,
            "acks": dict(self._acks),
            "decode": self.decode_stats(),
            "peers": {
                addr: {**st.as_dict(), "decode_errors": self.updates.peer_stats(addr)}
                for addr, st in self._peers.items()
            },
        }

    def decode_stats(self) -> dict:
        """The counters of the Speaker's two decoders: raw UPDATEs (routes) and ExaBGP's JSON
        (session messages), and the latest reason something was rejected."""
        return {
            "raw": self.updates.stats(),
            "json": self.messages.stats(),
            "last_reject": self.updates.last_reject or self.messages.last_reject,
        }

    # ------------------------------------------------------------------ process

    def check(self, cfg: Config) -> None:
        """Raise ExabgpConfigError if `cfg` cannot be rendered (a reload validates first)."""
        exabgp_conf.render(cfg, self.socket_path, self._python, self._extended_message)

    def _write_config(self, cfg: Config) -> None:
        text = exabgp_conf.render(cfg, self.socket_path, self._python, self._extended_message)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)  # MD5 passwords
        tmp.replace(self.config_path)

    async def _launch(self) -> None:
        env = dict(os.environ)
        env.update(exabgp_conf.environment(self.cfg))
        args = [
            *self._wrapper,
            self._python,
            "-m",
            "evpnd.bgp.exabgp.extension",
            "server",
            str(self.config_path),
        ]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        self._started_at = time.monotonic()
        log.info("exabgp started", pid=self._proc.pid, restarts=self._restarts)
        self._spawn(self._log_output(self._proc))

    async def _supervise(self) -> None:
        backoff = self._initial_backoff
        cap = self.cfg.exabgp.respawn_max_backoff
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            ran = time.monotonic() - self._started_at
            log.warning("exabgp exited", pid=proc.pid, code=code, ran=round(ran, 1))
            self._disconnect()
            self._all_down(f"exabgp exited ({code})")
            if ran > 60:
                backoff = self._initial_backoff  # it ran fine for a while: a fresh failure
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, cap)
            if self._stopping:
                return
            self._restarts += 1
            try:
                await self._launch()
            except OSError as exc:
                log.error("exabgp start failed", error=str(exc))
                self._proc = await asyncio.create_subprocess_exec("false")

    async def _liveness(self) -> None:
        """A frozen ExaBGP (SIGSTOP, a hang) keeps its sessions' sockets but answers nothing:
        ping it; no answer within exabgp.liveness_timeout -> kill it (the supervisor restarts
        it, the peers see a new session and the routes are sent again). A ping that waits only
        because evpnd itself stopped reading (back-pressure) does not count."""
        while not self._stopping:
            timeout = self.cfg.exabgp.liveness_timeout
            await asyncio.sleep(min(5.0, timeout / 3) if timeout else 5.0)
            proc = self._proc
            if not timeout or proc is None or self._writer is None or not self._ready.is_set():
                continue
            asked = time.monotonic()
            try:
                await self._command("evpnd ping {ticket}", timeout)
            except ConnectionError:
                continue
            except TimeoutError:
                if (
                    self._last_pause >= asked
                    or proc is not self._proc
                    or proc.returncode is not None
                ):
                    continue
                self.frozen_kills += 1
                log.error("exabgp not answering: killed", pid=proc.pid, waited=timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()  # SIGTERM: ExaBGP closes its sessions with a Cease
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _log_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            if not text:
                continue
            if "CRITICAL" in text or "ERROR" in text or "evpnd extension" in text:
                log.warning("exabgp", pid=proc.pid, line=text[:500])
            else:
                log.debug("exabgp", pid=proc.pid, line=text[:500])

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _all_down(self, reason: str) -> None:
        for addr, status in self._peers.items():
            if status.state not in ("down", "idle"):
                self._set_state(addr, "down", reason)
                self._emit(PeerState(addr, "down", reason))

    def _set_state(self, addr: str, state: str, reason: str = "") -> None:
        status = self._peers.get(addr)
        if status is None:
            return  # a peer just removed from the configuration: ExaBGP's last word on it
        if state != status.state:
            if state == "down" and status.state == "up":
                status.flaps += 1
            status.state = state
            status.since = time.time()
        if state == "up":
            status.eor = False
        status.reason = reason or status.reason

    # ------------------------------------------------------------------ channel

    def _disconnect(self) -> None:
        self._ready.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionError("exabgp went away"))
        self._waiters.clear()

    async def _on_relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            log.warning("a second relay connected: replacing the first")
            self._disconnect()
        self._writer = writer
        log.info("exabgp relay connected", pid=self._proc.pid if self._proc else None)
        # A fresh ExaBGP knows no routes: replay every local path, then End-of-RIB.
        self._pending.clear()
        self._queued.clear()
        self._write_paths(self._resync_paths(), "*")
        self._replay_holds()
        # End-of-RIB (graceful restart) goes per peer when its session comes up (_on_state):
        # that line is read after this replay, so ExaBGP queues the EoR behind the routes.
        self._ready.set()
        try:
            await self._read_loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("exabgp relay connection lost", error=str(exc))
        finally:
            if self._writer is writer:
                self._disconnect()
            writer.close()

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        room = self._room
        turn = Turn()
        fresh = False
        while True:
            if room is not None:
                t0 = time.monotonic()
                await room()  # a flood waits here, not in memory
                if time.monotonic() - t0 > 0.005:
                    self._last_pause = time.monotonic()
                else:
                    # read() does not yield while its buffer has data: one chunk per turn
                    await asyncio.sleep(0)
            asked = time.monotonic()
            data = await reader.read(_READ)
            # Waited for it: the first UPDATE of a burst. It gets a turn of its own, so that
            # the owner task applies it and the dataplane writes it while the rest is decoded
            # (the first entry within milliseconds, not after a turn of decoding; issue 14).
            # Armed until an UPDATE comes: a session's first read often starts with ExaBGP's
            # JSON (open, state), and the UPDATEs follow in the next read without a wait.
            fresh = fresh or time.monotonic() - asked > 0.001
            if not data or self._writer is not writer:
                # closed, or this ExaBGP was declared dead (its peers reported down): whatever
                # it still had in flight must not reach the core after those down events
                return
            buffer += data
            if b"\n" not in data:
                if len(buffer) > _MAX_LINE:
                    log.error("exabgp line too long: dropped", size=len(buffer))
                    buffer = b""
                continue
            lines = buffer.split(b"\n")
            buffer = lines.pop()
            turn.restart()
            for raw in lines:
                # a read holds hundreds of UPDATEs: decode for one turn's time, then let the
                # owner task apply (and the dataplane write) the first ones and the API answer
                # while the rest wait (issues 10, 14; evpnd/turns.py)
                await turn.pause()
                if self._writer is not writer:
                    return
                if raw:
                    try:
                        self._on_line(raw.decode("ascii", errors="replace"))
                    except Exception as exc:  # noqa: BLE001 - one bad line never stops the channel
                        log.error("exabgp line not handled", error=repr(exc), line=raw[:200])
                    if fresh and raw.startswith(_RAW):
                        # The owner task applies this line's events, and the dataplane pass
                        # that starts plans and submits the first batch, before the next
                        # line: one yield for each (a task created while others are ready
                        # runs after them; asyncio has no priorities). Measured: the pass
                        # otherwise waited a whole 5 ms turn of decoding (issue 14).
                        fresh = False
                        await asyncio.sleep(0)
                        await asyncio.sleep(0)
                        turn.restart()

    def _on_line(self, line: str) -> None:
        if line.startswith(RAW_PREFIX):
            errors = self.updates.counters
            before = errors["malformed_attributes"] + errors["attribute_discard"]
            events = self.updates.decode_line(line)
            if self.updates.resets_pending:
                self._reset_sessions()
            if errors["malformed_attributes"] + errors["attribute_discard"] != before:
                self._schedule_error_summary()
        elif line.startswith("evpnd-ack "):
            self._on_ack(line)
            return
        else:
            events = self.messages.decode_line(line)
        emit = self._emit
        for event in events:
            if isinstance(event, RouteUpdate):
                status = self._peers.get(event.peer)
                if status is not None:
                    status.updates += 1
                    status.routes += len(event.announced) + len(event.withdrawn)
            elif isinstance(event, PeerState):
                self._on_state(event)
            elif isinstance(event, EndOfRib):
                status = self._peers.get(event.peer)
                if status is not None:
                    status.eor = True
            elif isinstance(event, PeerOpen):  # the core decides graceful restart from it
                log.info(
                    "bgp open",
                    peer=event.peer,
                    graceful_restart_time=event.gr_time,
                    graceful_restart_families=event.gr_families,
                )
            elif isinstance(event, Notification):
                log.info(
                    "bgp notification",
                    peer=event.peer,
                    code=event.code,
                    subcode=event.subcode,
                    message=event.message,
                )
            emit(event)

    _ERROR_CASES = ("malformed_attributes", "attribute_discard", "unsupported_nlri")

    def _schedule_error_summary(self) -> None:
        """One log line per second of a burst of malformed UPDATEs, never one per UPDATE."""
        if self._error_summary is None:
            self._error_summary = asyncio.get_running_loop().call_later(
                1.0, self._log_error_summary
            )

    def _log_error_summary(self) -> None:
        self._error_summary = None
        counters = self.updates.counters
        logged = self._errors_logged
        delta = {k: counters[k] - logged.get(k, 0) for k in self._ERROR_CASES}
        self._errors_logged = {k: counters[k] for k in self._ERROR_CASES}
        log.warning("bgp update errors (RFC 7606)",
                    treat_as_withdraw=delta["malformed_attributes"],
                    attribute_discard=delta["attribute_discard"],
                    unsupported_nlri=delta["unsupported_nlri"],
                    last=self.updates.last_reject)  # fmt: skip

    def _reset_sessions(self) -> None:
        """RFC 7606 session reset of what the decoder found malformed: ExaBGP sends the
        UPDATE Message Error NOTIFICATION (the extension's `evpnd notify`)."""
        for peer, subcode, reason in self.updates.drain_resets():
            log.warning("bgp update error: session reset (RFC 7606)", peer=peer,
                        subcode=subcode, reason=reason)  # fmt: skip
            self.notify(peer, 3, subcode)

    def notify(self, peer: str, code: int, subcode: int) -> None:
        """End the session with `peer` with a NOTIFICATION (code, subcode)."""
        self._write(f"evpnd notify {self._next_ticket()} {peer} {code} {subcode}\n")

    def hold(self, peer: str, seconds: float | None) -> None:
        """Keep `peer` down in ExaBGP for `seconds` (None: until `release`): no connection out,
        every one in refused, as FRR keeps a peer over its maximum-prefix idle."""
        self._holds[peer] = None if seconds is None else time.monotonic() + seconds
        self._write(f"evpnd hold {self._next_ticket()} {peer} {seconds or 0:g}\n")

    def held(self) -> list[str]:
        """The peers this speaker told ExaBGP to keep down (timed holds may have ended)."""
        return list(self._holds)

    def release(self, peers: Sequence[str]) -> None:
        """End the holds of `peers` (`evpnctl clear peer`): they may connect again."""
        for peer in peers:
            if peer in self._holds:
                del self._holds[peer]
                self._write(f"evpnd release {self._next_ticket()} {peer}\n")

    def _replay_holds(self) -> None:
        now = time.monotonic()
        for peer, until in list(self._holds.items()):
            if until is not None and until <= now:
                del self._holds[peer]
            else:
                self.hold(peer, None if until is None else until - now)

    def _on_state(self, event: PeerState) -> None:
        self._set_state(event.peer, event.state, event.reason)
        log.info("bgp peer", peer=event.peer, state=event.state, reason=event.reason)
        if event.state == "up" and self.cfg.exabgp.graceful_restart and self._ready.is_set():
            # manual-eor: ExaBGP re-sends its Adj-RIB-Out after a session comes up; the EoR
            # queued now goes out after it (RFC 4724 section 4.1)
            self._write(f"evpnd eor {self._next_ticket()} {event.peer}\n")

    def _on_ack(self, line: str) -> None:
        parts = line.split(" ", 4)
        if len(parts) < 4:
            return
        ticket, ok, errors = parts[1], parts[2], parts[3]
        n_ok = int(ok) if ok.isdigit() else 0
        n_err = int(errors) if errors.isdigit() else 0
        self._acks["ok"] += n_ok
        self._acks["errors"] += n_err
        if n_err:
            self._acks["last_error"] = parts[4][:300] if len(parts) > 4 else ""
            log.error(
                "exabgp rejected commands",
                ticket=ticket,
                errors=n_err,
                first=self._acks["last_error"],
            )
        fut = self._waiters.pop(ticket, None)
        if fut is not None and not fut.done():
            fut.set_result((n_ok, n_err, parts[4] if len(parts) > 4 else ""))

    def _next_ticket(self) -> str:
        self._ticket += 1
        return f"t{self._ticket}"

    def _write(self, text: str) -> None:
        if self._writer is not None:
            self._writer.write(text.encode())

    async def _command(self, template: str, timeout: float = 10.0) -> tuple[int, int, str]:
        """Send one `evpnd` command (with {ticket}) and wait for its evpnd-ack."""
        ticket = self._next_ticket()
        fut = asyncio.get_running_loop().create_future()
        self._waiters[ticket] = fut
        self._write(template.format(ticket=ticket) + "\n")
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.pop(ticket, None)

    async def sync(self, timeout: float = 30.0) -> None:
        """Wait until ExaBGP has processed everything written so far (a ping barrier)."""
        await self._ready.wait()
        await self._flush_now()
        await self._command("evpnd ping {ticket}", timeout)

    async def _wait_for_neighbors(self, wanted: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                _, _, text = await self._command("evpnd peers {ticket}", 2.0)
            except (TimeoutError, ConnectionError):
                return
            if set(text.split()) == wanted:
                return
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ batching

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # not started yet: the replay at connection covers it
            self._flush_task = loop.create_task(self._flush_now())

    async def _flush_now(self) -> None:
        while (self._queued or self._pending) and self._writer is not None:
            self._write_ops(self._take_pending(), "*")
            writer = self._writer
            if writer is not None:
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    def _write_paths(self, paths: list[Path], peers: str) -> None:
        self._write_ops([(True, p) for p in paths], peers)

    def _write_ops(self, ops: list[tuple[bool, Path]], peers: str) -> None:
        if self._writer is None or not ops:
            return
        size = self._batch_size
        errors: list[str] = []
        chunks = [
            batch.line(self._next_ticket(), peers, ops[start : start + size], errors)
            for start in range(0, len(ops), size)
        ]
        for error in errors[:5]:
            log.error("cannot encode path", error=error)
        self._encode_errors += len(errors)
        self._sent_routes += len(ops) - len(errors)
        self._writer.write("".join(chunks).encode())
