"""What the Speaker sends at a flush: one operation per route key, the last one."""

from __future__ import annotations

from evpnd.bgp.speaker import Speaker
from evpnd.routes.evpn import LOCAL_PEER, MacIpKey, Path
from tests.unit.test_reload_rules import cfg_of


def path(mac: str, vni: int = 100) -> Path:
    return Path(MacIpKey("192.0.2.1:1", 0, mac, None), LOCAL_PEER, "192.0.2.1", vni)


def test_one_list_goes_as_it_is_and_several_are_coalesced_by_key(tmp_path):
    speaker = Speaker(cfg_of(runtime_dir=str(tmp_path)), lambda event: None)
    a, b, c = path("02:00:00:00:00:0a"), path("02:00:00:00:00:0b"), path("02:00:00:00:00:0c")
    speaker.announce([a, b])
    assert speaker.status()["pending"] == 2
    assert speaker._take_pending() == [(True, a), (True, b)]
    assert speaker.status()["pending"] == 0
    # An NLRI change (withdraw old, announce new, same key), then a later withdraw of b
    a2 = a._replace(vni=200)
    speaker.withdraw([a])
    speaker.announce([a2, b, c])
    speaker.withdraw([b])
    assert speaker._take_pending() == [(True, a2), (False, b), (True, c)]
    assert speaker._take_pending() == []
