"""`queue_changes` (a whole `evpnd routes` group queued at once) leaves ExaBGP's Adj-RIB-Out in
exactly the state that queueing the same changes one by one with `queue_change` does: the
pending changes, their attribute buckets, the cache of what the peer has, and the UPDATE bytes
sent. Random groups of announces and withdraws over a few MACs, attribute sets and next hops,
so that replacements, repeats of what the peer already has and withdraws of pending announces
all occur."""

from __future__ import annotations

import random

import pytest

from evpnd.bgp import batch
from evpnd.bgp.exabgp import extension
from tests.unit.exabgp_helpers import negotiated_and_neighbor, outgoing_rib
from tests.unit.test_extension_wire import VXLAN, mac_path


@pytest.fixture(scope="module")
def negotiated():
    return negotiated_and_neighbor()[0]


def one_by_one(rib, changes, announce, attributes, nexthop) -> None:
    for change in changes:
        extension.queue_change(rib, change)


def state(rib) -> tuple:
    buckets = {a: {f: sorted(b) for f, b in fams.items()}
               for a, fams in rib._new_attr_af_nlri.items()}  # fmt: skip
    pending = {i: (c.nlri.action, c.attributes.index()) for i, c in rib._new_nlri.items()}
    seen = {f: {i: c.attributes.index() for i, c in d.items()} for f, d in rib._seen.items()}
    return buckets, pending, sorted(rib._new_attribute), seen


def groups(seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(40):
        ops = []
        for _ in range(rnd.randint(1, 6)):
            mac = f"02:00:00:00:aa:{rnd.randint(0, 7):02x}"
            attrs = VXLAN._replace(mobility_seq=rnd.randint(0, 2), has_mobility=True)
            path = mac_path(mac=mac, attrs=attrs)._replace(next_hop=rnd.choice(
                ["192.0.2.1", "192.0.2.2"]))  # fmt: skip
            ops.append((rnd.random() < 0.7, path))
        out.append(batch.encode(ops))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_a_group_at_once_equals_one_change_at_a_time(negotiated, seed, monkeypatch):
    fast, slow = outgoing_rib(), outgoing_rib()
    for n, body in enumerate(groups(seed)):
        extension.apply_groups([fast], body)
        with monkeypatch.context() as m:
            m.setattr(extension, "queue_changes", one_by_one)
            extension.apply_groups([slow], body)
        assert state(fast) == state(slow), n
        if n % 5 == 4:  # now and then the peer is sent what is pending
            sent_fast = [m for u in fast.updates(True) for m in u.messages(negotiated)]
            sent_slow = [m for u in slow.updates(True) for m in u.messages(negotiated)]
            assert sent_fast == sent_slow, n
            assert state(fast) == state(slow), n
