"""ExaBGP configuration generated from evpnd's Config, checked with ExaBGP's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from evpnd.bgp import exabgp_conf
from evpnd.config import ConfigError, parse_config

SOCKET = Path("/run/evpnd/exabgp-api.sock")


def _cfg(**kw):
    data = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "192.0.2.1"}
    data.update(kw)
    return parse_config(data)


def _parse(text: str, tmp_path: Path) -> dict:
    """ExaBGP's Configuration over the text -> {peer address: Neighbor}."""
    from exabgp.configuration.configuration import Configuration
    from exabgp.environment import getenv
    from exabgp.logger import log

    log.init(getenv())
    conf = tmp_path / "exabgp.conf"
    conf.write_text(text)
    configuration = Configuration([str(conf)])
    assert configuration.reload(), configuration.error
    return {str(n["peer-address"]): n for n in configuration.neighbors.values()}


def test_neighbours_with_all_session_options(tmp_path):
    cfg = _cfg(
        peers=[
            {
                "address": "10.0.1.2",
                "remote_as": 65002,
                "local_address": "10.0.1.1",
                "password": "s3cret",
                "ttl_security": 1,
                "hold_time": 9,
            },  # fmt: skip
            {"address": "2001:db8::2", "remote_as": 65003, "passive": True},
        ],
        exabgp={"graceful_restart": 120},
    )
    neighbors = _parse(exabgp_conf.render(cfg, SOCKET), tmp_path)
    a, b = neighbors["10.0.1.2"], neighbors["2001:db8::2"]
    assert str(a["local-address"]) == "10.0.1.1"
    assert int(a["peer-as"]) == 65002 and int(a["local-as"]) == 65001
    assert str(a["router-id"]) == "192.0.2.1"
    assert a["hold-time"] == 9
    assert a["md5-password"] == "s3cret"
    # GTSM, RFC 5082: send TTL 255, accept only 256 - hops (1 hop -> 255)
    assert a["outgoing-ttl"] == 255 and a["incoming-ttl"] == 255
    assert not a["passive"] and b["passive"]
    assert a["manual-eor"] and a["capability"]["graceful-restart"] == 120
    assert a["adj-rib-out"] and not a["adj-rib-in"]
    assert [f"{afi} {safi}" for afi, safi in a.families()] == ["l2vpn evpn"]
    assert a.api["receive-update"] == ["evpnd"] and a.api["neighbor-changes"] == ["evpnd"]
    assert b["md5-password"] is None and b["hold-time"] == 90


def test_without_graceful_restart_exabgp_sends_end_of_rib_itself(tmp_path):
    cfg = _cfg(peers=[{"address": "10.0.1.2", "remote_as": 65002}])
    text = exabgp_conf.render(cfg, SOCKET)
    assert "manual-eor" not in text and "graceful-restart" not in text
    neighbor = _parse(text, tmp_path)["10.0.1.2"]
    assert not neighbor["manual-eor"]


def test_gtsm_hops():
    cfg = _cfg(peers=[{"address": "10.0.1.2", "remote_as": 65002, "ttl_security": 3}])
    assert "incoming-ttl 253;" in exabgp_conf.render(cfg, SOCKET)


def test_relay_is_the_api_process():
    text = exabgp_conf.render(_cfg(), SOCKET, python="/opt/venv/bin/python")
    script = exabgp_conf.RELAY_SCRIPT
    assert script.name == "relay.py" and script.is_file()
    assert f"run /opt/venv/bin/python -I -S {script} /run/evpnd/exabgp-api.sock;" in text


@pytest.mark.parametrize("password", ['a"b', "a;b", "a b", "a{b"])
def test_passwords_exabgp_cannot_carry_are_refused(password):
    with pytest.raises(ConfigError):  # by the configuration already
        _cfg(peers=[{"address": "10.0.1.2", "remote_as": 65002, "password": password}])
    # and again by the renderer, whatever built the Config
    good = _cfg(peers=[{"address": "10.0.1.2", "remote_as": 65002, "password": "x"}])
    bad = good.model_copy(
        update={"peers": [good.peers[0].model_copy(update={"password": password})]}
    )
    with pytest.raises(exabgp_conf.ExabgpConfigError):
        exabgp_conf.render(bad, SOCKET)


def test_unsafe_paths_are_refused():
    with pytest.raises(exabgp_conf.ExabgpConfigError):
        exabgp_conf.render(_cfg(), Path("/tmp/a b/sock"))


def test_environment():
    peers = [{"address": "10.0.1.2", "remote_as": 65002}]
    env = exabgp_conf.environment(_cfg(peers=peers, exabgp={"listen": False}))
    assert env["exabgp_api_terminate"] == "true"  # relay gone -> ExaBGP exits
    assert env["exabgp_api_ack"] == "false"  # evpnd uses its own tickets
    assert env["exabgp_api_cli"] == "false"
    assert env["exabgp_daemon_daemonize"] == "false"
    assert env["exabgp_tcp_bind"] == ""  # outgoing sessions only


def test_listening():
    peers = [{"address": "10.0.1.2", "remote_as": 65002, "local_address": "10.0.1.1"}]
    env = exabgp_conf.environment(_cfg(peers=peers, exabgp={"listen": True}))
    assert env["exabgp_tcp_bind"] == "0.0.0.0" and env["exabgp_tcp_port"] == "179"
    more = [*peers, {"address": "10.0.2.2", "remote_as": 65003, "passive": True}]
    # adding a peer does not change ExaBGP's settings: a reload is enough
    assert exabgp_conf.environment(_cfg(peers=more, exabgp={"listen": True})) == env
    v6 = [*peers, {"address": "2001:db8::2", "remote_as": 65003}]
    assert exabgp_conf.environment(_cfg(peers=v6))["exabgp_tcp_bind"] == "0.0.0.0 ::"


def test_extended_message_can_be_turned_off(tmp_path):
    cfg = _cfg(peers=[{"address": "10.0.1.2", "remote_as": 65002}])
    neighbor = _parse(exabgp_conf.render(cfg, SOCKET, extended_message=False), tmp_path)
    assert neighbor["10.0.1.2"]["capability"]["extended-message"] is False
    assert "extended-message" not in exabgp_conf.render(cfg, SOCKET)  # ExaBGP's default: on
