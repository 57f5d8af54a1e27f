"""The daemon: one asyncio task owns the core; the edges talk to it through one queue.

    Speaker (ExaBGP) --events--> queue --> owner task --> Core.apply --> Effects --> Speaker
    Dataplane (netlink) --LocalMac--^            |       (it also runs its own periodic full pass)
                                                 +--> desired.dirty --> Dataplane.wanted_changed
    API --commands--^  (reads Core's state directly: the loop is single-threaded, no locks)

DESIGN.md rule 2: only the owner task mutates the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from evpnd.config import Config, ConfigError, core_settings, load_config
from evpnd.core import Core, Effects, Event
from evpnd.core.events import RouteUpdate
from evpnd.logs import get_logger, set_log_level, setup_logging
from evpnd.turns import Turn

BATCH_MAX = 5000  # events applied per owner-loop turn before the edges get to run
# Back-pressure (bounded memory under a flood): while this many events or routes wait for the
# owner task, the speaker stops reading ExaBGP (then the relay, ExaBGP and the TCP window stop:
# evpnd/bgp/exabgp/relay.py). One read (1 MiB of UPDATEs) may go over by its own size.
QUEUE_HIGH_EVENTS = 5000
QUEUE_HIGH_ROUTES = 50_000
# Routes applied per owner-loop turn, at most; a turn also ends when its TURN_BUDGET of time is
# spent (evpnd/turns.py), so the API answers in between on a slow or loaded machine too.
BATCH_ROUTES = 5_000
EXIT_TASK_DIED = 70  # EX_SOFTWARE: an essential task died; systemd (Restart=on-failure) restarts
NOTICES_PER_KIND = 5  # beyond this many notices of one kind per batch, log one summary line
TICK_INTERVAL = 1.0
# sys.setswitchinterval: how long a thread waiting for the GIL waits before the holder must let go
SWITCH_INTERVAL = 0.001


class ReloadPartFailed(Exception):
    """One part (dataplane, core, speaker) could not take the new configuration."""


@dataclass
class Command:
    """A request for the owner task (from the API or a signal), answered through a future."""

    fn: Callable[[float], Any]
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Daemon:
    def __init__(
        self, cfg: Config, config_path: str | None = None, log_level: str | None = None
    ) -> None:
        from evpnd.bgp.speaker import Speaker
        from evpnd.dataplane import Dataplane

        self.cfg = cfg
        self.config_path = config_path
        self.started_at = time.time()
        self.log = get_logger("daemon")
        self.queue: asyncio.Queue[Event | Command] = asyncio.Queue()
        self.core = Core(core_settings(cfg))
        self._queued_routes = 0  # routes in the RouteUpdates waiting in the queue
        self._room = asyncio.Event()
        self._room.set()
        self.backpressure_waits = 0
        self.speaker = Speaker(cfg, self.emit, room=self.room)
        self.dataplane = Dataplane(cfg, self.emit)
        from evpnd.policy.enforcer import PolicyEnforcer

        self.policy = PolicyEnforcer(
            policy_spec(cfg),
            self.core.views.endpoints,
            get_logger("policy"),
            hold_time=cfg.sweep_hold_time,
        )
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closers: list[Callable[[], Awaitable[None] | None]] = []
        self.reloads = 0
        self.exit_code = 0
        self._stopping = False
        self._log_level_override = log_level  # --log-level wins over the file, also on reload
        self._metrics: Any = None
        self._reload_lock = asyncio.Lock()
        self._reload_task: asyncio.Task | None = None
        self._reload_again = False

    # -- the edges call this (non-blocking) --------------------------------------------------
    def emit(self, event: Event) -> None:
        if type(event) is RouteUpdate:
            self._queued_routes += len(event.announced) + len(event.withdrawn)
        self.queue.put_nowait(event)

    def _full(self) -> bool:
        return self.queue.qsize() >= QUEUE_HIGH_EVENTS or self._queued_routes >= QUEUE_HIGH_ROUTES

    async def room(self) -> None:
        """The speaker awaits this before each read from ExaBGP: it returns once the owner task
        has caught up below the bounds (at once when it has)."""
        while self._full():
            self.backpressure_waits += 1
            self._room.clear()
            await self._room.wait()

    # -- the API context (evpnd/api reads these) ---------------------------------------------
    def speaker_status(self) -> dict:
        return self.speaker.status()

    def dataplane_stats(self) -> dict:
        return self.dataplane.stats()

    def kernel_diff(self) -> dict:
        return self.dataplane.kernel_diff()

    def policy_status(self) -> dict:
        return self.policy.status()

    def policy_verdict(self, src: str, dst: str, proto: str | None, port: int | None):
        return self.policy.verdict(src, dst, proto, port)

    async def clear_duplicates(self, vni: int | None = None, mac: str | None = None) -> dict:
        def clear(now: float) -> Effects:
            return self.core.clear_duplicates(now, vni=vni, mac=mac)

        await self.submit(clear)
        return {"cleared": True, "vni": vni, "mac": mac}

    async def clear_peer(self, peer: str | None = None) -> list[str]:
        """`evpnctl clear peer`: release peers held down over their max_routes."""
        released: list[str] = await self.submit(lambda now: self.core.clear_peer(now, peer))
        self._sync_holds()  # ExaBGP connects (and accepts) the released peers again
        return released

    def _sync_holds(self) -> None:
        """Peers held down in ExaBGP that the core no longer holds (cleared, or their limit
        removed by a reload) are released there too."""
        now = time.time()
        self.speaker.release(
            [p for p in self.speaker.held() if self.core.hold_seconds(p, now) is None]
        )

    async def submit(self, fn: Callable[[float], Any]) -> Any:
        cmd = Command(fn)
        self.queue.put_nowait(cmd)
        return await cmd.done

    # -- the owner task ----------------------------------------------------------------------
    def _publish(self, effects: Effects) -> None:
        if effects.withdraw:
            self.speaker.withdraw(effects.withdraw)
        if effects.announce:
            self.speaker.announce(effects.announce)
        for peer, code, subcode in effects.notify:  # e.g. max_routes: Cease subcode 1
            self.log.warning("bgp session ended", peer=peer, code=code, subcode=subcode)
            self.speaker.notify(peer, code, subcode)
            held = self.core.hold_seconds(peer, time.time())
            if held is not None:  # over max_routes: ExaBGP keeps it down, FRR-like (issue 10)
                self.speaker.hold(peer, held or None)
        if self.core.desired.dirty:
            self.dataplane.wanted_changed()
        self.policy.changed()  # endpoints may have changed (local MACs make no dirty keys)

    def _log_notices(self) -> None:
        """The core's notable events, with their context; never one line per route under load."""
        by_kind: dict[str, list[dict]] = {}
        for notice in self.core.drain_notices():
            by_kind.setdefault(notice.pop("event"), []).append(notice)
        for kind, items in by_kind.items():
            level = self.log.warning if kind == "duplicate_detected" else self.log.info
            if kind == "paths_rejected":  # merge per-UPDATE counts into one line per batch
                total: dict[str, int] = {}
                for item in items:
                    for reason, n in item.get("reasons", {}).items():
                        total[reason] = total.get(reason, 0) + n
                peers = sorted({str(item.get("peer")) for item in items})
                self.log.info(kind, peers=peers, reasons=total, updates=len(items))
            elif len(items) <= NOTICES_PER_KIND:
                for item in items:
                    item.pop("at", None)
                    level(kind, **item)
            else:
                level(kind + "_summary", count=len(items), first=items[0])

    async def _owner(self) -> None:
        turn = Turn()
        while True:
            item = await self.queue.get()
            # Apply events until the turn's time is spent (evpnd/turns.py), then publish and
            # yield: a turn is TURN_BUDGET whatever the machine's speed or load, and the API
            # answers in between (issue 10). BATCH_ROUTES/BATCH_MAX still cap a turn's count.
            turn.restart()
            now = time.time()
            effects = Effects([], [])
            taken = routes = 0
            while True:
                taken += 1
                if type(item) is RouteUpdate:
                    n = len(item.announced) + len(item.withdrawn)
                    self._queued_routes -= n
                    routes += n
                try:
                    if isinstance(item, Command):
                        result = item.fn(now)
                        if isinstance(result, Effects):
                            effects.extend(result)
                        if not item.done.done():
                            item.done.set_result(result)
                    else:
                        effects.extend(self.core.apply(item, now))
                except Exception as exc:  # a bad event must never take the daemon down
                    self.log.exception("event_failed", event=type(item).__name__)
                    if isinstance(item, Command) and not item.done.done():
                        item.done.set_exception(exc)
                if taken >= BATCH_MAX or routes >= BATCH_ROUTES or turn.over():
                    break
                if self.queue.empty():
                    break
                item = self.queue.get_nowait()
            self._publish(effects)
            if self.core.has_notices():
                self._log_notices()
            if not self._room.is_set() and not self._full():
                self._room.set()
            # get() does not yield while the queue has items: let the API and the edges run
            await asyncio.sleep(0)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            await self.submit(self.core.tick)

    async def _watchdog(self) -> None:
        """Ping systemd only when the owner task answers: a stuck core must get restarted."""
        from evpnd import sdnotify

        interval = sdnotify.watchdog_interval()
        if interval is None:
            return  # not under a systemd watchdog
        while True:
            try:
                await asyncio.wait_for(self.submit(lambda now: None), timeout=interval)
            except TimeoutError:
                self.log.error("owner_task_stuck", waited=interval)
            else:
                sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # -- essential tasks ---------------------------------------------------------------------
    def _essential(self, coro: Any, name: str) -> asyncio.Task:
        """A task the daemon cannot run without: if it ends, the process ends (non-zero)."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._essential_done)
        self._tasks.append(task)
        return task

    def _essential_done(self, task: asyncio.Task) -> None:
        if self._stopping or task.cancelled():
            return
        exc = task.exception()
        where = ""
        if exc is not None and exc.__traceback__ is not None:
            tb = exc.__traceback__
            while tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        # One line, no traceback: the API must not go on serving a core nobody updates.
        self.log.critical(
            "essential_task_died",
            task=task.get_name(),
            error=repr(exc) if exc is not None else "returned",
            where=where,
            exit_code=EXIT_TASK_DIED,
        )
        self.exit_code = EXIT_TASK_DIED
        self._stop.set()

    # -- reload (SIGHUP) ---------------------------------------------------------------------
    def request_reload(self) -> None:
        """SIGHUP: one reload at a time; signals during one queue exactly one more."""
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_again = False
        self._reload_task = asyncio.create_task(self._reload_loop(), name="reload")

    async def _reload_loop(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception as exc:  # noqa: BLE001 - reload() logs its own failures
                self.log.error("reload_failed", error=repr(exc))
            if not self._reload_again or self._stopping:
                return
            self._reload_again = False  # the signals so far are all served by this next run

    async def reload(self) -> bool:
        """Re-read the config; validate all of it, then apply all of it or none of it."""
        async with self._reload_lock:
            return await self._reload_once()

    async def _reload_once(self) -> bool:
        from evpnd import reload_rules
        from evpnd.bgp.exabgp_conf import ExabgpConfigError

        if not self.config_path:
            return False
        old = self.cfg
        # 1. validate: the file, the settings a reload cannot apply, what each part derives
        try:
            cfg = load_config(self.config_path)
        except ConfigError as exc:
            self.log.error("reload_rejected", problems=exc.render())
            return False
        refused = reload_rules.refused(old, cfg)
        for setting, reason in refused:
            self.log.error("reload_refused", setting=setting, reason=reason)
        if refused:
            return False
        cfg.keep_rd_indexes(old)
        try:
            settings = core_settings(cfg)
            self.speaker.check(cfg)
        except (ExabgpConfigError, ValueError) as exc:
            self.log.error("reload_rejected", problems=str(exc))
            return False
        metrics = None
        if cfg.metrics != old.metrics and cfg.metrics.enabled:
            from evpnd.metrics import start_metrics

            try:
                metrics = start_metrics(self, cfg)  # bound before anything else changes
            except OSError as exc:
                self.log.error("reload_rejected", setting="metrics", problems=str(exc))
                return False
        # 2. apply, part by part; a failing part rolls back every part applied so far
        applied: list[str] = []
        part = "dataplane"
        try:
            problems_before = set(self.dataplane.dm.problems)
            applied.append(part)
            await self.dataplane.reconfigure(cfg)
            new_problems = [p for p in self.dataplane.dm.problems if p not in problems_before]
            if new_problems:
                raise ReloadPartFailed("; ".join(new_problems))
            part = "core"
            applied.append(part)
            await self.submit(lambda now: self.core.reconfigure(settings, now))
            part = "speaker"
            applied.append(part)
            await self.speaker.reconfigure(cfg)
            part = "policy"
            applied.append(part)
            await self.policy.reconfigure(policy_spec(cfg))
        except Exception as exc:  # noqa: BLE001 - any failure: back to the old configuration
            self.log.error("reload_failed", part=part, error=str(exc) or repr(exc))
            if metrics is not None:
                await metrics.close()
            await self._roll_back(old, applied)
            return False
        # 3. commit: settings that live only in the daemon
        if metrics is not None or cfg.metrics != old.metrics:
            await self._close_metrics()
            self._metrics = metrics
        if cfg.log_level != old.log_level and self._log_level_override is None:
            set_log_level(cfg.log_level)
        self.cfg = cfg
        self.reloads += 1
        self._sync_holds()  # a peer whose max_routes was removed may connect again
        self.log.info(
            "reloaded",
            changed=reload_rules.changed(old, cfg),
            peers=len(cfg.peers),
            l2vnis=len(cfg.l2vnis),
            l3vnis=len(cfg.l3vnis),
            peers_before=len(old.peers),
        )
        return True

    async def _roll_back(self, old: Config, applied: list[str]) -> None:
        """Put the parts already given the new config back on the old one, last first."""
        settings = core_settings(old)
        try:
            for part in reversed(applied):
                if part == "speaker":
                    await self.speaker.reconfigure(old)
                elif part == "core":
                    await self.submit(lambda now: self.core.reconfigure(settings, now))
                elif part == "dataplane":
                    await self.dataplane.reconfigure(old)
                elif part == "policy":
                    await self.policy.reconfigure(policy_spec(old))
        except Exception as exc:  # noqa: BLE001 - state unknown: a restart is churn-free
            self.log.critical("reload_rollback_failed", part=part, error=repr(exc))
            self.exit_code = EXIT_TASK_DIED
            self._stop.set()
            return
        self.log.warning("reload_rolled_back", parts=list(reversed(applied)))

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.log.info("starting", router_id=str(self.cfg.router_id), asn=self.cfg.asn)
        self.cfg.runtime_dir.mkdir(parents=True, exist_ok=True)
        self._essential(self._owner(), "owner")
        await self.dataplane.start(self.core.desired)
        await self.submit(self.core.start)
        self.speaker.set_resync(self.core.advertised)
        await self.speaker.start()
        await self._start_api()
        await self.policy.start()
        self._essential(self._ticker(), "ticker")
        from evpnd import sdnotify

        if sdnotify.watchdog_interval() is not None:  # else it has nothing to do
            self._essential(self._watchdog(), "watchdog")

        sdnotify.notify("READY=1\nSTATUS=running")
        self.ready.set()
        self.log.info("ready", vnis=[v.vni for v in self.cfg.all_vnis()])

    async def _start_api(self) -> None:
        from evpnd.api import start_api

        api = await start_api(self, self.cfg)
        self._closers.append(api.close)
        if self.cfg.metrics.enabled:
            from evpnd.metrics import start_metrics

            self._metrics = start_metrics(self, self.cfg)
        self._closers.append(self._close_metrics)

    async def _close_metrics(self) -> None:
        if self._metrics is not None and hasattr(self._metrics, "close"):
            await self._metrics.close()
        self._metrics = None

    async def stop(self) -> None:
        self._stopping = True
        self.log.info("stopping")
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.policy.stop()  # evpnd's nftables tables stay: a restart changes nothing
        await self.speaker.stop()
        await self.dataplane.stop()  # kernel entries stay: a restart never flushes
        self.log.info("stopped")

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        from evpnd import memdebug

        memdebug.install(loop)  # SIGUSR2: a memory report, only when EVPND_MEMDEBUG asks
        try:
            # an essential task dying during start must not leave start() waiting forever
            starting = asyncio.create_task(self.start(), name="start")
            stopped = asyncio.create_task(self._stop.wait(), name="stop")
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a failed start raises here
                await stopped
            else:
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
        finally:
            await self.stop()


def policy_spec(cfg: Config):
    """The policy section as the compiler's plain data, with the bridges it acts on."""
    from evpnd.policy.schema import policy_spec as build

    bridges = {v.vni: v.bridge for v in cfg.l2vnis}
    # routed traffic enters the inet forward hook from an SVI, an L3VNI's bridge or (VRF) the
    # VRF device itself
    l3 = [v.bridge_name for v in cfg.l3vnis] + [v.vrf for v in cfg.l3vnis if v.vrf]
    return build(cfg.policy, bridges, tuple(l3))


def tune_interpreter() -> None:
    """The garbage collector and the GIL, set for a daemon holding ~10^5 routes with a
    netlink thread beside the event loop (process-wide: run() calls it once)."""
    # The RIB holds ~10^5 long-lived tuples; the default thresholds make the collector rescan
    # them every 700 allocations (measured: halves the decode cost of a 100k-route burst).
    # A young generation of 100k objects took 20-80 ms of CPU to scan in one piece during a
    # churn flood (the API waits for it, issue 10); 25k still paused 9-17 ms. 10k keeps each
    # pause a few ms for the same total work (each young object is scanned once either way):
    # the API's worst answer during `make chaos`'s 1M churn went from 96-122 ms to 85-91 ms
    # together with the 5 ms turns (evpnd/turns.py), the churn as fast as before (5.1-5.9 s).
    gc.freeze()
    gc.set_threshold(10_000, 20, 1000)
    # The netlink thread needs the GIL for a moment after each sendmmsg and recv; while the
    # loop thread decodes UPDATEs it got it only when the interpreter's switch interval (5 ms)
    # forced the loop thread to let go, and the kernel waited meanwhile. Two route reflectors'
    # 100k routes on 2 cores, interleaved pairs: installed in 1.53-1.71 s at 1 ms against
    # 1.59-1.94 s at 5 ms (3 of 4 pairs faster; 6 of 6 in an earlier run); the withdraw
    # faster in 3 of 4 pairs too.
    sys.setswitchinterval(SWITCH_INTERVAL)


def run(cfg: Config, config_path: str | None = None, log_level: str | None = None) -> int:
    setup_logging(log_level or cfg.log_level)
    from evpnd import memdebug

    memdebug.start()  # off unless EVPND_MEMDEBUG is set
    tune_interpreter()
    daemon = Daemon(cfg, config_path, log_level)
    try:
        asyncio.run(daemon.serve())
    except KeyboardInterrupt:
        pass
    return daemon.exit_code
