"""max_local_macs with real kernel learning (issue 10 item 2): three hosts talk behind an
evpnd leaf whose L2VNI allows two local MACs. The kernel bridge learns all three (local
forwarding is untouched); evpnd advertises two of them to its peer (a test-controlled ExaBGP
that records what it receives) and counts and logs the third."""

from __future__ import annotations

import asyncio

import pytest

from evpnd.routes.evpn import MacIpKey
from tests.netns.fabric import add_host, evpnd_config, host_mac, start_evpnd, two_leaves
from tests.netns.speaker_lab import Recorder, make_speaker, peer, speaker_config, until

pytestmark = pytest.mark.netns


async def test_local_macs_beyond_the_limit_are_not_advertised(lab, tmp_path):
    a, b = two_leaves(lab)
    hosts = [add_host(lab, a, f"h{i}", f"p{i}", f"10.100.0.{i}", host_mac(1, i))
             for i in (1, 2, 3)]  # fmt: skip
    vni = {"vni": 100, "bridge": "br100", "access_ports": ["p1", "p2", "p3"],
           "max_local_macs": 2}  # fmt: skip
    node = start_evpnd(lab, a, evpnd_config(a, [b], [vni]))
    rec = Recorder()
    cfg = speaker_config(tmp_path, router_id=b.vtep, asn=65002,
                         peers=[peer(a.vtep, 65001, b.vtep)])  # fmt: skip
    speaker = make_speaker(cfg, b.ns, rec)
    await speaker.start()
    try:
        await until(lambda: rec.state(a.vtep) == "up", 60, what="session up")
        for host in hosts:
            await asyncio.to_thread(host.ns.ping, "10.100.0.254", 1, 0.3)  # an ARP request
            await until(lambda h=host: h.mac in a.ns.run(["bridge", "fdb", "show", "br", "br100"]),
                        10, 0.1, f"{host.mac} learned by the kernel")  # fmt: skip
            await asyncio.sleep(0.5)

        def advertised() -> set[str]:
            return {p.key.mac for p in rec.from_peer(a.vtep) if isinstance(p.key, MacIpKey)}

        await until(lambda: len(advertised()) >= 2, 30, 0.2, "two local MACs advertised")
        await asyncio.sleep(2.0)  # time for a third to (wrongly) arrive
        # two of the three (which two is the order evpnd's learning saw them in)
        got = advertised()
        assert len(got) == 2 and got <= {h.mac for h in hosts}, got
        (refused,) = {h.mac for h in hosts} - got
        learned = a.ns.run(["bridge", "fdb", "show", "br", "br100"])
        assert all(h.mac in learned for h in hosts)  # local forwarding is not limited
        await until(lambda: "max_local_macs 2 reached" in node.log(), 10, 0.2, "logged")
        log = node.log()
        assert refused in log and "Traceback" not in log
    finally:
        await speaker.stop()
