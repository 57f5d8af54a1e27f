"""RFC 7606 through real ExaBGP (issue 10 item 3): a peer's ExaBGP sends UPDATEs evpnd's
decoder finds malformed. A malformed optional attribute withdraws the UPDATE's routes from
evpnd's kernel FDB (treat-as-withdraw); a syntactically incorrect NLRI resets the session with
an UPDATE Message Error NOTIFICATION (3, 10 Invalid Network Field), nothing of that UPDATE is
installed, the session comes back; each case counted per peer in `show peers`."""

from __future__ import annotations

import pytest

from evpnd.bgp import wire
from evpnd.bgp.batch import pack_attributes, pack_path_nlri
from evpnd.core.events import Notification
from evpnd.routes.evpn import LOCAL_PEER, Attributes, MacIpKey, Path
from tests.netns.fabric import add_host, evpnd_config, start_evpnd, two_leaves
from tests.netns.speaker_lab import Recorder, make_speaker, peer, speaker_config, until

pytestmark = pytest.mark.netns

L2 = Attributes(route_targets=("65002:100",), encap=8)


def _mac(mac: str) -> Path:
    return Path(MacIpKey("10.0.0.2:100", 0, mac, None), LOCAL_PEER, "10.0.0.2", 100, attrs=L2)


async def test_treat_as_withdraw_and_session_reset_through_exabgp(lab, tmp_path):
    a, b = two_leaves(lab)
    add_host(lab, a, "h1", "p1", "10.100.0.1", "02:aa:00:00:01:01")
    node = start_evpnd(lab, a, evpnd_config(a, [b], [{"vni": 100, "bridge": "br100",
                                                      "access_ports": ["p1"]}]))  # fmt: skip
    rec = Recorder()
    cfg = speaker_config(tmp_path, router_id=b.vtep, asn=65002,
                         peers=[peer(a.vtep, 65001, b.vtep)])  # fmt: skip
    speaker = make_speaker(cfg, b.ns, rec)
    await speaker.start()

    def peer_entry() -> dict:
        (p,) = node.data("show peers")["peers"]
        return p

    try:
        await until(lambda: rec.state(a.vtep) == "up", 60, what="session up")
        one, two = _mac("02:bb:00:00:00:01"), _mac("02:bb:00:00:00:02")
        speaker.announce([one, two])
        await until(lambda: set(a.remote_macs("vx100")) == {one.key.mac, two.key.mac}, 30,
                    0.2, "both MACs installed")  # fmt: skip

        # treat-as-withdraw: `one` again, with extended communities of 7 bytes
        attrs = bytes.fromhex(pack_attributes(L2))[:4]  # ORIGIN only
        flags = wire.FLAG_OPTIONAL | wire.FLAG_TRANSITIVE
        attrs += wire.pack_attribute(wire.EXTENDED_COMMUNITIES, flags, bytes(7))
        ok, errors, first = await speaker._command(
            f"evpnd routes {{ticket}} * ; A {b.vtep} {attrs.hex()} {pack_path_nlri(one).hex()}"
        )
        assert errors == 0, first
        await until(lambda: set(a.remote_macs("vx100")) == {two.key.mac}, 30, 0.2,
                    "the malformed UPDATE's MAC withdrawn")  # fmt: skip
        assert peer_entry()["decode_errors"] == {"treat_as_withdraw": 1}
        assert peer_entry()["state"] == "up"
        await until(lambda: "bgp update errors (RFC 7606)" in node.log(), 10, 0.2,
                    "one summary line for the burst")  # fmt: skip

        # session reset: a valid MAC and a type-5 NLRI of an IPv4 prefix length 33 in one
        # UPDATE (the sending extension checks the NLRI lengths only)
        ups = rec.states(a.vtep).count("up")
        three = _mac("02:bb:00:00:00:03")
        good_attrs = pack_attributes(L2)
        broken = (bytes((5, 34)) + bytes(22) + b"\x21" + bytes(11)).hex()
        ok, errors, first = await speaker._command(
            f"evpnd routes {{ticket}} * ; A {b.vtep} {good_attrs} "
            f"{pack_path_nlri(three).hex()} {broken}"
        )
        assert errors == 0, first

        def notified():
            got = [e for e in rec.events if isinstance(e, Notification) and e.code == 3]
            return got or None

        (note, *_) = await until(notified, 30, 0.2, "the UPDATE error NOTIFICATION")
        assert note.subcode == 10  # Invalid Network Field
        entry = await until(lambda: peer_entry()["decode_errors"].get("session_reset") and
                            peer_entry(), 30, 0.2, "counted")  # fmt: skip
        assert set(entry["decode_errors"]) == {"treat_as_withdraw", "session_reset"}
        assert three.key.mac not in a.remote_macs("vx100")  # nothing of the reset UPDATE
        # The sending ExaBGP replays its Adj-RIB-Out, the garbage included, at each new
        # session (and is reset again: as it should be); take it out of that RIB.
        ok, errors, first = await speaker._command(
            f"evpnd routes {{ticket}} * ; W {broken} {pack_path_nlri(one).hex()}"
        )
        assert errors == 0, first
        # the session comes back with the peer's valid routes (`three` now in a clean UPDATE)
        await until(lambda: rec.states(a.vtep).count("up") > ups, 60, what="session back")
        want = {two.key.mac: b.vtep, three.key.mac: b.vtep}
        await until(lambda: a.remote_macs("vx100") == want, 30, 0.2,
                    "the peer's routes back after the reset")  # fmt: skip
        log = node.log()
        assert "session reset (RFC 7606)" in log and "Traceback" not in log
    finally:
        await speaker.stop()
