"""The extension's fix to ExaBGP's reactor: closed descriptors do not throttle the loop.

ExaBGP 5.0.15 leaves a closed connection's descriptor registered in its poller; poll() then
reports POLLNVAL on every loop and the reactor's spin prevention sleeps 10 ms per iteration,
which capped UPDATE intake. The extension unregisters such descriptors instead.
"""

from __future__ import annotations

import os
import select

from evpnd.bgp.exabgp import extension


class FakeReactor:
    """Just what Reactor._wait_for_io uses: a poller and the spin-prevention hook."""

    def __init__(self) -> None:
        self._poller = select.poll()
        self.spins = 0

    def _prevent_spin(self) -> bool:
        self.spins += 1
        return True


def test_closed_descriptor_is_unregistered_without_sleeping():
    extension.install(raw_receive=False)
    from exabgp.reactor.loop import Reactor

    fake = FakeReactor()
    r, w = os.pipe()
    fake._poller.register(r, select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLNVAL)
    os.close(r)
    os.close(w)
    assert list(Reactor._wait_for_io(fake, 0)) == []
    assert fake.spins == 0  # stock ExaBGP calls _prevent_spin here, on every loop
    assert fake._poller.poll(0) == []  # gone from the poller for good


def test_readable_descriptor_is_still_yielded():
    extension.install(raw_receive=False)
    from exabgp.reactor.loop import Reactor

    fake = FakeReactor()
    r, w = os.pipe()
    try:
        fake._poller.register(r, select.POLLIN | select.POLLPRI)
        os.write(w, b"x")
        assert list(Reactor._wait_for_io(fake, 0)) == [r]
        assert fake.spins == 0
    finally:
        os.close(r)
        os.close(w)
