"""evpnd.bgp.codec (ExaBGP's JSON: session state, OPEN, notifications, End-of-RIB, replies)
against ExaBGP 5.0.15's real output (tests/fixtures/exabgp/). Routes: tests/unit/test_compact.py."""

from __future__ import annotations

import json
from pathlib import Path as FsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evpnd.bgp.codec import MessageDecoder
from evpnd.core.events import CommandReply, EndOfRib, Notification, PeerOpen, PeerState, RouteUpdate
from tests.unit.rx_fixtures import Receiver, raw_lines

FIXTURES = FsPath(__file__).parent.parent / "fixtures" / "exabgp"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


@pytest.fixture
def decoder() -> MessageDecoder:
    return MessageDecoder()


def decode_all(name: str) -> list:
    receiver = Receiver()
    return [event for line in lines(name) for event in receiver.decode(line)]


# ----------------------------------------------------------------------------- fixtures


def test_every_fixture_line_decodes_without_rejects():
    """Every captured line gives events: UPDATEs through the raw decoder, the rest as JSON."""
    receiver = Receiver()
    for name in sorted(p.name for p in FIXTURES.glob("*.jsonl")) + ["ack-ordering.txt"]:
        for line in lines(name):
            assert receiver.decode(line), f"{name}: nothing from {line[:80]}"
    assert receiver.messages.stats() == {
        "lines": 46 - 18,
        "malformed_lines": 0,
        "json_routes_ignored": 0,
    }
    raw = receiver.updates.stats()
    assert raw["updates"] == 18
    assert all(n == 0 for name, n in raw.items() if name != "updates"), raw


def test_received_samples_state_lines():
    events = decode_all("received-json-samples.jsonl")
    assert events[0] == PeerState("10.0.1.2", "connected", "", "10.0.1.1", 65002)
    assert events[1] == PeerState("10.0.1.2", "up", "", "10.0.1.1", 65002)


def test_notifications_and_state_reasons():
    events = decode_all("gobgp-peer-disable-enable.jsonl")
    assert events[0] == Notification("10.0.2.2", 6, 2, "")
    assert events[1] == PeerState(
        "10.0.2.2", "down", "notification received (6,2)", "10.0.2.1", 65003
    )
    assert events[2].state == "connected"
    assert events[3].reason == "closing connection"
    assert len(events) == 10


def test_ack_ordering_and_exabgp_shutdown():
    events = decode_all("ack-ordering.txt")
    replies = [e.ok for e in events if isinstance(e, CommandReply)]
    assert replies == [False, True, False, True]
    assert isinstance(events[4], RouteUpdate) and events[4].announced[0].attrs.encap is None
    assert events[5].announced[0].attrs.route_targets == ()
    downs = [e for e in events if isinstance(e, PeerState)]
    assert [d.reason for d in downs] == ["stop, message [shutting down]"] * 2
    assert events[-1] == Notification(None, message="shutdown")


# ----------------------------------------------------------------------------- built lines


def update_line(update: dict, peer: str = "10.0.1.2", **extra) -> str:
    neighbor = {
        "address": {"local": "10.0.1.1", "peer": peer},
        "asn": {"local": 65001, "peer": 65002},
        "direction": "receive",
        "message": {"update": update},
        **extra,
    }
    return json.dumps({"exabgp": "5.0.0", "type": "update", "neighbor": neighbor})


MAC_NLRI = {
    "code": 2,
    "parsed": True,
    "rd": "192.0.2.9:100",
    "esi": "-",
    "ethernet-tag": 0,
    "mac": "02:00:00:00:00:01",
    "label": [[6, 100]],
}


def test_end_of_rib(decoder):
    line = json.dumps(
        {
            "type": "update",
            "neighbor": {
                "address": {"local": "10.0.1.1", "peer": "10.0.1.2"},
                "direction": "receive",
                "message": {"eor": {"afi": "l2vpn", "safi": "evpn"}},
            },
        }
    )
    assert decoder.decode_line(line) == [EndOfRib("10.0.1.2")]
    assert (
        decoder.decode_line(line.replace('"l2vpn"', '"ipv4"').replace('"evpn"', '"unicast"')) == []
    )


def test_lines_evpnd_ignores(decoder):
    assert decoder.decode_line("") == [] and decoder.decode_line("   \n") == []
    assert decoder.decode_line('{"type": "keepalive", "neighbor": {}}') == []
    announce = {"announce": {"l2vpn evpn": {"192.0.2.9": [MAC_NLRI]}}}
    assert decoder.decode_line(update_line(announce, direction="send")) == []
    assert decoder.decode_line(update_line({"announce": {"ipv4 unicast": {}}})) == []
    assert decoder.stats()["malformed_lines"] == 0
    assert decoder.stats()["json_routes_ignored"] == 0


def test_evpn_routes_in_json_are_counted_never_decoded(decoder):
    """Routes come raw only (compact): a JSON UPDATE with EVPN routes means the extension's raw
    path is missing. It is counted (visible in `show status`), never half-decoded."""
    for update in (
        {"announce": {"l2vpn evpn": {"192.0.2.9": [MAC_NLRI]}}},
        {"withdraw": {"l2vpn evpn": [MAC_NLRI]}},
    ):
        line = update_line(update)
        assert raw_lines(line) is not None  # the same UPDATE raw does carry routes
        assert decoder.decode_line(line) == []
    assert decoder.stats()["json_routes_ignored"] == 2
    assert "raw receive is off" in decoder.last_reject


# ----------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "line",
    [
        "{",
        '{"type": "update", "neighbor": {"address": ',
        "[1, 2, 3]",
        '{"type": ["update"]}',
        '{"type": "update"}',
        '{"type": "update", "neighbor": "x"}',
        '{"type": "update", "neighbor": {"address": {"peer": 5}, "message": {}}}',
        '{"type": "update", "neighbor": {"address": {"peer": "1.1.1.1"}, "message": {}}}',
        '{"type": "update", "neighbor": {"address": {"peer": "1.1.1.1"}, '
        '"message": {"update": []}}}',
        '{"type": "update", "neighbor": {"address": {"peer": "1.1.1.1"}, '
        '"message": {"update": {"announce": 5}}}}',
        '{"type": "state", "neighbor": {"address": {"peer": "10.0.0.1"}, "state": 3}}',
        '{"type": "notification", "neighbor": {"address": {"peer": "1.1.1.1"}, "notification": 1}}',
        "done and more",
        "garbage",
        "{" * 100_000,
        '{"n": ' + "9" * 5000 + "}",
        "\x00\xff",
    ],
)
def test_malformed_lines_are_counted_not_raised(decoder, line):
    assert decoder.decode_line(line) == []
    assert decoder.stats()["malformed_lines"] == 1
    assert decoder.last_reject


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [line for p in sorted(FIXTURES.glob("*.jsonl")) for line in lines(p.name) if "{" in line]
    ),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=1, max_value=40),
    st.text(max_size=8),
)
def test_mutated_fixture_lines_never_raise(line, start, length, junk):
    mutated = line[:start] + junk + line[start + length :]
    events = MessageDecoder().decode_line(mutated)
    assert isinstance(events, list)


def test_bytes_lines_as_read_from_the_pipe(decoder):
    for name in ("gobgp-peer-disable-enable.jsonl", "ack-ordering.txt"):
        for line in lines(name):
            assert decoder.decode_line(line.encode() + b"\n") == decoder.decode_line(line)
    assert decoder.decode_line(b'{"type": "update", "x": "\xff\xfe"}') == []
    assert decoder.decode_line(b"\xff") == []
    assert decoder.stats()["malformed_lines"] == 2


def test_each_decoder_counts_for_itself():
    """Counters live on the decoder the Speaker owns, not in the module."""
    one, other = MessageDecoder(), MessageDecoder()
    one.decode_line("garbage")
    assert one.stats()["malformed_lines"] == 1 and other.stats()["malformed_lines"] == 0


# ----------------------------------------------------------------------------- ExaBGP's encoder


def test_end_of_rib_from_exabgps_own_encoder(decoder):
    from exabgp.bgp.message.update.eor import EOR
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.reactor.api.response.json import JSON

    class Neighbor(dict):
        uid = 1

    neighbor = Neighbor(
        {
            "local-address": "10.0.1.1",
            "peer-address": "10.0.1.2",
            "local-as": 65001,
            "peer-as": 65002,
            "router-id": "192.0.2.1",
        }
    )
    eor = EOR(AFI.l2vpn, SAFI.evpn)  # as Update.unpack_message makes it: no action
    line = JSON("5.0.0").update(neighbor, "receive", eor, None, b"", b"")
    assert decoder.decode_line(line) == [EndOfRib("10.0.1.2")]


# ----------------------------------------------------------------------------- OPEN


def test_open_lines_give_the_peers_graceful_restart_capability(decoder):
    # Real OPENs from FRR 8.4 (tests/fixtures/exabgp/frr-open-graceful-restart.txt):
    # `bgp graceful-restart` (F bit clear), + `preserve-fw-state` and restart-time 30 (F bit
    # set; ExaBGP prints it as "restart"), `bgp graceful-restart-disable` (no capability).
    decode_line = decoder.decode_line
    gr, preserved, disabled = lines("frr-open-graceful-restart.txt")
    assert decode_line(gr) == [PeerOpen("10.0.1.2", 120, {"l2vpn evpn": False})]
    assert decode_line(preserved) == [PeerOpen("10.0.1.2", 30, {"l2vpn evpn": True})]
    assert decode_line(disabled) == [PeerOpen("10.0.1.2", None, {})]
    # an OPEN evpnd's ExaBGP sent is not the peer's
    msg = json.loads(gr)
    msg["neighbor"]["direction"] = "send"
    assert decode_line(json.dumps(msg)) == []
    # a capability of a bad shape: dropped and counted, never raised
    for bad in ({"time": "120"}, {"time": 5000}, {"address-family-flags": ["l2vpn/evpn"]}):
        msg = json.loads(gr)
        msg["neighbor"]["open"]["capabilities"]["64"].update(bad)
        assert decode_line(json.dumps(msg)) == []
    assert decoder.stats()["malformed_lines"] == 3
