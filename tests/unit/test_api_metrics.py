"""The Prometheus endpoint: served in the event loop, values read at scrape time."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client.parser import text_string_to_metric_families

from evpnd.config import parse_config
from evpnd.core.events import PeerState, RouteUpdate
from evpnd.metrics import start_metrics
from tests.unit.test_api_world import CONFIG, B, C, make_world, type2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def http_get(port: int, path: str = "/metrics") -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_off_by_default():
    assert start_metrics(make_world(), parse_config(CONFIG)) is None


async def test_scrape_reads_the_core_and_moves_with_traffic():
    world = make_world()
    # Dataplane.stats() and Speaker.status() as evpnd/dataplane and evpnd/bgp give them.
    world.stats = {"ops": 9, "errors": 1, "passes": 4, "full_passes": 1, "repairs": 0,
                   "last_pass_seconds": 0.002, "last_full_seconds": 0.012,
                   "owned": {"fdb": 5, "neigh": 1}}  # fmt: skip
    peers = {B: {"state": "up", "flaps": 0, "decode_errors": {"treat_as_withdraw": 2}},
             C: {"state": "down", "flaps": 1}}  # fmt: skip
    world.status = {"exabgp_pid": 4242, "restarts": 1, "peers": peers}
    port = free_port()
    cfg = parse_config({**CONFIG, "metrics": {"enabled": True, "port": port}})
    server = start_metrics(world, cfg)
    try:
        code, body = await http_get(port)
        assert code == 200
        m = samples(body)
        assert m[("evpnd_bgp_session_up", (("peer", B),))] == 1
        assert m[("evpnd_bgp_session_up", (("peer", C),))] == 0
        assert m[("evpnd_bgp_nlri_received_total", (("peer", B),))] == 8
        assert m[("evpnd_bgp_rejected_total", (("reason", "no_vni"),))] == 1
        assert m[("evpnd_bgp_peer_rejected_total", (("peer", B), ("reason", "no_vni")))] == 1
        assert m[("evpnd_bgp_advertised_paths", (("type", "3"),))] == 2
        assert m[("evpnd_bgp_advertised_paths", (("type", "5"),))] == 1
        assert m[("evpnd_bgp_paths", (("peer", C), ("type", "2")))] == 1
        assert m[("evpnd_kernel_operations_total", ())] == 9
        assert m[("evpnd_kernel_errors_total", ())] == 1
        assert m[("evpnd_reconcile_duration_seconds", (("scope", "full"),))] == 0.012
        assert m[("evpnd_reconcile_passes_total", (("scope", "incremental"),))] == 4
        assert m[("evpnd_kernel_owned_entries", (("kind", "neigh"),))] == 1
        assert m[("evpnd_bgp_session_flaps_total", (("peer", C),))] == 1
        assert (
            m[("evpnd_bgp_update_errors_total", (("case", "treat_as_withdraw"), ("peer", B)))] == 2
        )
        assert m[("evpnd_exabgp_restarts_total", ())] == 1
        assert m[("evpnd_duplicate_macs", ())] == 1
        # Traffic: B announces three more MACs, C comes back. The next scrape sees it.
        more = [type2(B, f"{B}:1", f"02:bb:00:00:00:0{i}") for i in range(3)]
        world.apply(RouteUpdate(B, more))
        world.apply(PeerState(C, "up"))
        world.status = {"exabgp_pid": 4243, "restarts": 2}
        m2 = samples((await http_get(port))[1])
        assert m2[("evpnd_bgp_nlri_received_total", (("peer", B),))] == 11
        assert m2[("evpnd_bgp_paths", (("peer", B), ("type", "2")))] == (
            m[("evpnd_bgp_paths", (("peer", B), ("type", "2")))] + 3
        )
        assert m2[("evpnd_bgp_session_up", (("peer", C),))] == 1
        assert m2[("evpnd_exabgp_restarts_total", ())] == 2
        assert (await http_get(port, "/"))[0] == 404
        assert server.scrapes == 2
    finally:
        await server.close()
