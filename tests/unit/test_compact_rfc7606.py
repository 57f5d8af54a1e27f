"""RFC 7606 (revised error handling for BGP UPDATEs) in the decoder production uses,
evpnd.bgp.compact.UpdateDecoder: one test per case, then properties over random and mutated
UPDATE bytes (no exception ever escapes, every error is counted per peer, a reset yields no
routes)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpnd.bgp import wire
from evpnd.bgp.compact import UpdateDecoder
from evpnd.core.events import RouteUpdate
from tests.unit.test_compact import (
    GOOD,
    GOOD2,
    GOOD_KEY,
    MANDATORY,
    _mp_reach,
    _mp_unreach,
    _update,
)

ATTR = wire.pack_attribute
OPT, TRN = wire.FLAG_OPTIONAL, wire.FLAG_TRANSITIVE
MACS = ["02:00:00:00:00:aa"]


@pytest.fixture
def decoder() -> UpdateDecoder:
    return UpdateDecoder()


def _macs(events) -> list[str]:
    (event,) = events
    return [p.key.mac for p in event.announced]


# --------------------------------------------------------------------- treat-as-withdraw


@pytest.mark.parametrize(
    "attribute",
    [
        ATTR(wire.ORIGIN, OPT | TRN, b"\x00"),  # 3(c): well-known flagged optional
        ATTR(wire.AS_PATH, OPT, b""),
        ATTR(wire.MED, TRN, bytes(4)),  # optional non-transitive flagged well-known
        ATTR(wire.EXTENDED_COMMUNITIES, TRN, bytes(8)),
        ATTR(wire.PMSI_TUNNEL, OPT, bytes(9)),
        ATTR(wire.COMMUNITIES, OPT | TRN, bytes(5)),  # 7.8: not a multiple of 4
    ],
)
def test_treat_as_withdraw_cases(decoder, attribute):
    events = decoder.decode_update("p", _update(attribute + MANDATORY + _mp_reach(GOOD)))
    (event,) = events
    assert event.announced == [] and event.withdrawn == [GOOD_KEY]
    assert decoder.peer_stats("p") == {"treat_as_withdraw": 1}
    assert decoder.drain_resets() == []


@pytest.mark.parametrize(
    "attrs",
    [b"", ATTR(wire.ORIGIN, TRN, b"\x00"), ATTR(wire.AS_PATH, TRN, b"")],
    ids=["neither", "no AS_PATH", "no ORIGIN"],
)
def test_missing_mandatory_attribute_is_treat_as_withdraw(decoder, attrs):
    """3(d): ORIGIN and AS_PATH with reachable NLRI; withdraws in the UPDATE still apply."""
    (event,) = decoder.decode_update("p", _update(attrs + _mp_reach(GOOD) + _mp_unreach(GOOD2)))
    assert event.announced == []
    assert [k.mac for k in event.withdrawn] == ["02:00:00:00:00:bb", "02:00:00:00:00:aa"]
    assert decoder.peer_stats("p") == {"treat_as_withdraw": 1}


def test_a_withdraw_only_update_needs_no_mandatory_attribute(decoder):
    (event,) = decoder.decode_update("p", _update(_mp_unreach(GOOD)))
    assert event.withdrawn == [GOOD_KEY]
    assert decoder.peer_stats("p") == {}


def test_an_attribute_field_breaking_off_after_mp_reach_is_treat_as_withdraw(decoder):
    """Section 4/5: the NLRIs are located, so they can be withdrawn."""
    broken = MANDATORY + _mp_reach(GOOD) + b"\x40\x05\x09\x00"  # LOCAL_PREF running past
    (event,) = decoder.decode_update("p", _update(broken))
    assert event.announced == [] and event.withdrawn == [GOOD_KEY]
    assert decoder.peer_stats("p") == {"treat_as_withdraw": 1}


def test_local_pref_from_an_ibgp_peer_is_treat_as_withdraw(decoder):
    bad = ATTR(wire.LOCAL_PREF, TRN, bytes(3))
    (event,) = decoder.decode_update("p", _update(MANDATORY + bad + _mp_reach(GOOD)))
    assert event.announced == []
    assert decoder.peer_stats("p") == {"treat_as_withdraw": 1}


# --------------------------------------------------------------------- attribute discard


@pytest.mark.parametrize(
    "attribute",
    [
        ATTR(wire.ATOMIC_AGGREGATE, TRN, b"\x01"),  # 7.6: length 0
        ATTR(wire.AGGREGATOR, OPT | TRN, bytes(5)),  # 7.7: 8 bytes with 4-byte ASNs
        ATTR(wire.AS4_PATH, OPT | TRN, b"\x02\x05"),  # RFC 6793: segment of 5 ASNs, none there
        ATTR(wire.AS4_AGGREGATOR, OPT | TRN, bytes(6)),
        ATTR(wire.ORIGIN, TRN, b"\x07"),  # a repeat (3(g)): discarded, even when malformed
    ],
)
def test_attribute_discard_keeps_the_routes(decoder, attribute):
    events = decoder.decode_update("p", _update(MANDATORY + attribute + _mp_reach(GOOD)))
    assert _macs(events) == MACS
    assert decoder.peer_stats("p") == {"attribute_discard": 1}
    assert decoder.stats()["attribute_discard"] == 1


def test_malformed_local_pref_from_an_ebgp_peer_is_discarded(decoder):
    decoder.ebgp_peers = frozenset({"e"})
    bad = ATTR(wire.LOCAL_PREF, TRN, bytes(3))
    events = decoder.decode_update("e", _update(MANDATORY + bad + _mp_reach(GOOD)))
    assert _macs(events) == MACS
    (event,) = events
    assert event.announced[0].attrs.local_pref is None
    assert decoder.peer_stats("e") == {"attribute_discard": 1}


def test_well_formed_attributes_are_not_counted(decoder):
    ok = ATTR(wire.ATOMIC_AGGREGATE, TRN, b"") + ATTR(wire.AGGREGATOR, OPT | TRN, bytes(8))
    ok += ATTR(wire.LOCAL_PREF, TRN, (150).to_bytes(4, "big"))
    events = decoder.decode_update("p", _update(MANDATORY + ok + _mp_reach(GOOD)))
    assert _macs(events) == MACS
    (event,) = events
    assert event.announced[0].attrs.local_pref == 150
    assert decoder.peer_stats("p") == {}


# --------------------------------------------------------------------- session reset


@pytest.mark.parametrize(
    ("body", "subcode"),
    [
        (b"\x00\x05\x00", 1),  # withdrawn routes length past the UPDATE (section 4)
        (b"\x00\x00\x00\x09\x40\x01\x01\x00", 1),  # attribute length past the UPDATE
        (_update(b"\x40\x01\x05\x00"), 1),  # an attribute running past the field, no MP found
        (_update(MANDATORY + _mp_reach(GOOD) + _mp_reach(GOOD2)), 1),  # 3(g): MP_REACH twice
        (_update(_mp_unreach(GOOD) + _mp_unreach(GOOD2)), 1),
        (_update(MANDATORY + _mp_reach(GOOD, bytes(5))), 9),  # 7.11: next-hop length 5
        (_update(MANDATORY + _mp_reach(GOOD + b"\x02\x30")), 10),  # 5.3: NLRI runs past
    ],
    ids=[
        "withdrawn-length",
        "attribute-length",
        "attribute-overrun",
        "mp-reach-twice",
        "mp-unreach-twice",
        "next-hop-length",
        "nlri-overrun",
    ],  # fmt: skip
)
def test_session_reset_cases(decoder, body, subcode):
    assert decoder.decode_update("p", body) == []
    assert decoder.peer_stats("p") == {"session_reset": 1}
    ((peer, got, reason),) = decoder.drain_resets()
    assert (peer, got) == ("p", subcode) and reason


def test_decode_line_never_raises_and_counts(decoder):
    assert decoder.decode_line("evpnd-rx p 1 zz") == []
    assert decoder.decode_line("evpnd-rx") == []
    assert decoder.stats()["malformed_updates"] == 2


# --------------------------------------------------------------------- properties


def _attribute(code: int, flags: int, value: bytes) -> bytes:
    return ATTR(code, flags, value)


attribute_st = st.builds(
    _attribute,
    st.sampled_from([1, 2, 4, 5, 6, 7, 8, 9, 10, 16, 17, 18, 22, 99]),
    st.sampled_from([0x40, 0x80, 0xC0, 0x00, 0xE0]),
    st.binary(max_size=24),
)
nlri_st = st.one_of(
    st.sampled_from([GOOD, GOOD2]),
    st.builds(lambda c, d: bytes((c, len(d))) + d, st.integers(0, 9), st.binary(max_size=60)),
)
next_hop_st = st.one_of(st.binary(max_size=33), st.sampled_from([bytes(4), bytes(16), bytes(32)]))


@st.composite
def updates(draw) -> bytes:
    """Well-framed UPDATEs of random attributes, next hops and NLRIs."""
    attrs = b"".join(draw(st.lists(attribute_st, max_size=6)))
    if draw(st.booleans()):
        attrs += MANDATORY
    nlris = b"".join(draw(st.lists(nlri_st, max_size=5)))
    if draw(st.booleans()):
        attrs += _mp_reach(nlris, draw(next_hop_st))
    if draw(st.booleans()):
        attrs += _mp_unreach(b"".join(draw(st.lists(nlri_st, max_size=3))))
    parts = draw(st.permutations([attrs]))
    return _update(b"".join(parts))


def _check(decoder: UpdateDecoder, body: bytes, asn4: bool) -> None:
    before = dict(decoder.counters)
    events = decoder.decode_update("10.0.1.2", body, asn4)
    assert isinstance(events, list)
    assert decoder.counters["decoder_errors"] == 0, decoder.last_reject  # no bug was hidden
    resets = decoder.drain_resets()
    if resets:
        assert events == [] and len(resets) == 1
        assert resets[0][1] in (1, 9, 10)
    for event in events:
        if isinstance(event, RouteUpdate):
            for path in event.announced:
                assert path.next_hop and len(path.key.rd) > 2
    touched = {k for k in decoder.counters if decoder.counters[k] != before.get(k)}
    assert "updates" in touched


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(updates(), st.booleans())
def test_random_updates_never_raise(body, asn4):
    _check(UpdateDecoder(), body, asn4)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_never_raise(body, asn4):
    _check(UpdateDecoder(), body, asn4)


VALID = _update(MANDATORY + ATTR(wire.EXTENDED_COMMUNITIES, OPT | TRN, bytes(8))
                + _mp_reach(GOOD + GOOD2) + _mp_unreach(GOOD2))  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(VALID)),
    st.integers(min_value=0, max_value=6),
    st.binary(max_size=6),
    st.booleans(),
)
def test_mutated_valid_updates_never_raise(start, length, junk, asn4):
    """Bytes replaced, inserted or cut anywhere in a valid UPDATE (lengths included)."""
    _check(UpdateDecoder(), VALID[:start] + junk + VALID[start + length :], asn4)


def test_the_valid_update_decodes(decoder):
    (event,) = decoder.decode_update("p", VALID)
    assert len(event.announced) == 2 and len(event.withdrawn) == 1
    assert decoder.peer_stats("p") == {}
