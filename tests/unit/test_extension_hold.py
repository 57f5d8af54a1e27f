"""The extension's hold-down of a peer over its max_routes (ExaBGP side): a held peer starts no
connection and refuses incoming ones until released or until its time runs out. The whole path
with real ExaBGP on both ends: tests/netns/test_bgp_max_routes.py."""

from __future__ import annotations

import time

from evpnd.bgp.exabgp import extension


class FakeProcesses:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, service: str, line: str) -> None:
        self.lines.append(line)


class FakeReactor:
    """Just what handle_evpnd reads for hold/release: the configured neighbours, the API."""

    def __init__(self, *addresses: str) -> None:
        class Configuration:
            neighbors = {a: {"peer-address": a} for a in addresses}

        self.configuration = Configuration()
        self.processes = FakeProcesses()


def test_hold_until_released_and_hold_for_seconds():
    extension.install(raw_receive=False)
    reactor = FakeReactor("10.0.0.1", "10.0.0.2")
    extension._HELD.clear()
    extension.handle_evpnd(reactor, "evpnd", "evpnd hold t1 10.0.0.1 0")
    extension.handle_evpnd(reactor, "evpnd", "evpnd hold t2 10.0.0.2 0.05")
    assert reactor.processes.lines == ["evpnd-ack t1 1 0", "evpnd-ack t2 1 0"]
    assert extension.held("10.0.0.1") and extension.held("10.0.0.2")
    time.sleep(0.06)
    assert not extension.held("10.0.0.2")  # its restart time ran out
    assert extension.held("10.0.0.1")  # 0: until released
    extension.handle_evpnd(reactor, "evpnd", "evpnd release t3 10.0.0.1")
    assert not extension.held("10.0.0.1") and reactor.processes.lines[-1] == "evpnd-ack t3 1 0"
