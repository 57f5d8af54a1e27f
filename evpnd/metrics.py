"""Prometheus metrics, read from the daemon's own counters at scrape time.

Nothing on the hot path touches a metric: a custom collector reads the core's counters, the
speaker's status and the dataplane's stats when Prometheus scrapes. The HTTP endpoint is served
in the daemon's event loop (not prometheus_client's thread), so the collector reads the core
between two turns of the owner task and never sees a half-applied event (DESIGN rule 2).

Off by default; when on, it listens on loopback unless configured otherwise (metrics: address).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from evpnd.config import Config
from evpnd.logs import get_logger
from evpnd.routes.evpn import LOCAL_PEER

log = get_logger("metrics")


def _num(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


class EvpndCollector(Collector):
    """Builds every metric family from the context's current state."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator:
        ctx = self.ctx
        yield from self._daemon(ctx)
        yield from self._sessions(ctx)
        yield from self._routes(ctx)
        yield from self._core_counters(ctx)
        yield from self._kernel(ctx)
        yield from self._speaker(ctx)

    # -- daemon -------------------------------------------------------------------------------
    def _daemon(self, ctx) -> Iterator:
        g = GaugeMetricFamily("evpnd_start_time_seconds", "When evpnd started (unix time)")
        g.add_metric([], ctx.started_at)
        yield g
        c = CounterMetricFamily("evpnd_reloads", "Configuration reloads applied (SIGHUP)")
        c.add_metric([], getattr(ctx, "reloads", 0))
        yield c
        g = GaugeMetricFamily("evpnd_vnis", "Configured VNIs", labels=["kind"])
        g.add_metric(["l2"], len(ctx.cfg.l2vnis))
        g.add_metric(["l3"], len(ctx.cfg.l3vnis))
        yield g

    # -- BGP sessions -------------------------------------------------------------------------
    def _sessions(self, ctx) -> Iterator:
        stats = ctx.core.views.peers()
        up = GaugeMetricFamily("evpnd_bgp_session_up", "1 when the session is Established",
                               labels=["peer"])  # fmt: skip
        since = GaugeMetricFamily(
            "evpnd_bgp_session_established_time_seconds",
            "When the session last became Established (unix time; absent when down)",
            labels=["peer"],
        )
        names = ("received", "accepted", "rejected", "withdrawn")
        helps = {
            "received": "NLRIs announced by the peer",
            "accepted": "NLRIs announced by the peer and imported",
            "rejected": "NLRIs announced by the peer and not imported",
            "withdrawn": "NLRIs withdrawn by the peer",
        }
        counters = {
            n: CounterMetricFamily(f"evpnd_bgp_nlri_{n}", helps[n], labels=["peer"]) for n in names
        }
        by_reason = CounterMetricFamily(
            "evpnd_bgp_peer_rejected",
            "Paths from the peer rejected by import validation and loop checks, by reason",
            labels=["peer", "reason"],
        )
        peers = {str(p.address) for p in ctx.cfg.peers} | {p for p in stats if p != LOCAL_PEER}
        for peer in sorted(peers):
            s = stats.get(peer)
            for reason, n in sorted((s.rejects if s else {}).items()):
                by_reason.add_metric([peer, reason], n)
            is_up = s is not None and s.state == "up"
            up.add_metric([peer], 1.0 if is_up else 0.0)
            if s is not None and is_up and s.since:
                since.add_metric([peer], s.since)
            values = {
                "received": s.received if s else 0,
                "accepted": s.accepted if s else 0,
                "rejected": s.rejected if s else 0,
                "withdrawn": s.withdrawn if s else 0,
            }
            for n in names:
                counters[n].add_metric([peer], values[n])
        yield up
        yield since
        yield from counters.values()
        yield by_reason

    # -- routes (counted at scrape time: a pass over the RIB's tables, no per-route work) -----
    def _routes(self, ctx) -> Iterator:
        held = GaugeMetricFamily("evpnd_bgp_paths", "Paths held in the RIB per peer and type",
                                 labels=["peer", "type"])  # fmt: skip
        adv = GaugeMetricFamily("evpnd_bgp_advertised_paths", "Local paths advertised per type",
                                labels=["type"])  # fmt: skip
        best = GaugeMetricFamily("evpnd_bgp_best_paths", "Routes with a best path, per type",
                                 labels=["type"])  # fmt: skip
        found = ctx.core.views.route_counts()
        for (peer, rtype), n in sorted(found.held.items()):
            held.add_metric([peer, str(rtype)], n)
        for rtype, n in sorted(found.advertised.items()):
            adv.add_metric([str(rtype)], n)
        for rtype, n in sorted(found.best.items()):
            best.add_metric([str(rtype)], n)
        yield held
        yield adv
        yield best

    # -- core counters ------------------------------------------------------------------------
    def _core_counters(self, ctx) -> Iterator:
        now = ctx.core.views.stats()
        counters = now.counters
        rejected = CounterMetricFamily(
            "evpnd_bgp_rejected", "Paths rejected by the core, by reason", labels=["reason"]
        )
        events = CounterMetricFamily("evpnd_core_events", "Other core events", labels=["event"])
        for name, value in sorted(counters.items()):
            if name.startswith("rejected_"):
                rejected.add_metric([name.removeprefix("rejected_")], value)
            elif _num(value) is not None:
                events.add_metric([name], value)
        yield rejected
        yield events
        g = GaugeMetricFamily("evpnd_local_macs", "MACs learned on local ports")
        g.add_metric([], now.local_macs)
        yield g
        g = GaugeMetricFamily("evpnd_duplicate_macs", "MACs frozen by duplicate detection")
        g.add_metric([], now.duplicate_macs)
        yield g
        g = GaugeMetricFamily("evpnd_desired_entries", "Kernel objects wanted, per kind",
                              labels=["kind"])  # fmt: skip
        for kind, n in now.desired.items():
            g.add_metric([kind], n)
        yield g

    # -- kernel (dataplane) -------------------------------------------------------------------
    def _kernel(self, ctx) -> Iterator:
        """Dataplane.stats(): ops, errors, passes, full_passes, last_pass_seconds,
        last_full_seconds, repairs, conflicts, dumps, owned {kind: n} (evpnd/dataplane)."""
        try:
            stats = ctx.dataplane_stats() or {}
        except Exception:
            stats = {}
        for key, name, text in (
            ("ops", "evpnd_kernel_operations", "Netlink writes (FDB, neighbour, route, link)"),
            ("errors", "evpnd_kernel_errors", "Netlink writes the kernel refused"),
            ("repairs", "evpnd_kernel_repairs", "Entries repaired after drift (changed outside)"),
            ("conflicts", "evpnd_kernel_conflicts", "Wanted entries blocked by foreign ones"),
            ("dumps", "evpnd_kernel_dumps", "Full kernel dumps"),
            (
                "tunnel_macs_refused",
                "evpnd_tunnel_macs_refused",
                "MACs learned over a static tunnel not advertised: another VTEP advertises them",
            ),
        ):
            value = _num(stats.get(key))
            if value is not None:
                c = CounterMetricFamily(name, text)
                c.add_metric([], value)
                yield c
        passes = CounterMetricFamily("evpnd_reconcile_passes", "Reconciliation passes",
                                     labels=["scope"])  # fmt: skip
        duration = GaugeMetricFamily("evpnd_reconcile_duration_seconds",
                                     "Duration of the last reconciliation pass",
                                     labels=["scope"])  # fmt: skip
        for scope, count_key, seconds_key in (
            ("incremental", "passes", "last_pass_seconds"),
            ("full", "full_passes", "last_full_seconds"),
        ):
            count, seconds = _num(stats.get(count_key)), _num(stats.get(seconds_key))
            if count is not None:
                passes.add_metric([scope], count)
            if seconds is not None:
                duration.add_metric([scope], seconds)
        yield passes
        yield duration
        cpu = _num(stats.get("last_periodic_cpu_seconds") or stats.get("last_full_cpu_seconds"))
        if cpu is not None:  # issue 17: what the periodic full pass costs at this scale
            g = GaugeMetricFamily("evpnd_full_pass_cpu_seconds",
                                  "CPU seconds of the last periodic full pass")  # fmt: skip
            g.add_metric([], cpu)
            yield g
        owned = GaugeMetricFamily("evpnd_kernel_owned_entries", "Kernel objects owned by evpnd",
                                  labels=["kind"])  # fmt: skip
        for kind, value in _flatten(stats.get("owned", {})):
            owned.add_metric([kind], value)
        yield owned

    # -- ExaBGP -------------------------------------------------------------------------------
    def _speaker(self, ctx) -> Iterator:
        try:
            status = ctx.speaker_status() or {}
        except Exception:
            status = {}
        c = CounterMetricFamily("evpnd_exabgp_restarts", "ExaBGP processes restarted by evpnd")
        c.add_metric([], _num(status.get("restarts")) or 0)
        yield c
        g = GaugeMetricFamily("evpnd_exabgp_running", "1 when the ExaBGP subprocess runs")
        pid = status.get("exabgp_pid", status.get("pid"))
        g.add_metric([], 1.0 if pid else 0.0)
        yield g
        flaps = CounterMetricFamily("evpnd_bgp_session_flaps", "Sessions that went down",
                                    labels=["peer"])  # fmt: skip
        errors = CounterMetricFamily(
            "evpnd_bgp_update_errors",
            "Malformed UPDATEs from the peer by RFC 7606 approach (session_reset, "
            "treat_as_withdraw, attribute_discard) and unsupported NLRIs skipped",
            labels=["peer", "case"],
        )
        peers = status.get("peers")
        if isinstance(peers, dict):
            for peer, st in sorted(peers.items()):
                value = _num(st.get("flaps")) if isinstance(st, dict) else None
                if value is not None:
                    flaps.add_metric([str(peer)], value)
                cases = st.get("decode_errors") if isinstance(st, dict) else None
                if isinstance(cases, dict):
                    for case, n in sorted(cases.items()):
                        if _num(n) is not None:
                            errors.add_metric([str(peer), str(case)], n)
        yield flaps
        yield errors


def _flatten(value: object, prefix: str = "") -> Iterator[tuple[str, float]]:
    """{'fdb': {'add': 3}} -> ('fdb.add', 3); a bare number -> (prefix or 'all', n)."""
    n = _num(value)
    if n is not None:
        yield (prefix or "all"), n
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))


def make_registry(ctx) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EvpndCollector(ctx))
    ProcessCollector(registry=registry)
    return registry


class MetricsServer:
    """A minimal HTTP/1.0 endpoint in the event loop: GET /metrics, nothing else."""

    def __init__(self, ctx, sock: socket.socket) -> None:
        self.registry = make_registry(ctx)
        self.sock = sock
        self.address = sock.getsockname()
        self.scrapes = 0
        self.last_scrape_seconds = 0.0
        self._server: asyncio.base_events.Server | None = None
        self._task = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, sock=self.sock)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, _, rest = head.decode("latin-1").partition(" ")
            target = rest.split(" ", 1)[0]
            if method not in ("GET", "HEAD"):
                self._reply(writer, 405, "text/plain", b"GET only\n")
            elif target.split("?", 1)[0] != "/metrics":
                self._reply(writer, 404, "text/plain", b"see /metrics\n")
            else:
                started = time.perf_counter()
                body = generate_latest(self.registry)
                self.last_scrape_seconds = time.perf_counter() - started
                self.scrapes += 1
                self._reply(writer, 200, CONTENT_TYPE_LATEST, body, head_only=method == "HEAD")
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        except Exception:
            log.exception("metrics_scrape_failed")
            with contextlib.suppress(Exception):
                self._reply(writer, 500, "text/plain", b"collector failed, see the log\n")
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _reply(writer, status: int, ctype: str, body: bytes, head_only: bool = False) -> None:
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        head = (
            f"HTTP/1.0 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + (b"" if head_only else body))

    async def close(self) -> None:
        await asyncio.gather(self._task, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self.sock.close()


def start_metrics(ctx, cfg: Config) -> MetricsServer | None:
    """Listen on cfg.metrics (address, port) if enabled; call from inside the event loop.

    The socket is bound here, synchronously, so a port in use fails the start loudly.
    """
    if not cfg.metrics.enabled:
        return None
    address = str(cfg.metrics.address)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, cfg.metrics.port))
        sock.listen(16)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    server = MetricsServer(ctx, sock)
    log.info("metrics_listening", address=address, port=cfg.metrics.port)
    return server
