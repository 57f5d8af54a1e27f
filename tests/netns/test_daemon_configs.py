"""The real daemon started on every example config in config/ and on hostile ones: it never ends
with a traceback (issue 16). A config it cannot use exits 2 with one line naming file and field;
an example config runs until SIGTERM and exits 0.

Each run is in a namespace of its own (the example's VTEP on its loopback, as a fabric would
have it), with api.socket and runtime_dir moved into the test's directory so that nothing
touches the host's /run/evpnd.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from evpnd.lab.evpnd_node import evpnd_command

pytestmark = pytest.mark.netns

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = sorted((ROOT / "config").glob("*.yaml"))
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "configs").glob("*.yaml"))

V6 = {"router_id": "192.0.2.1", "asn": 65001, "vtep": "2001:db8:5::1"}
PEER_V4 = {"address": "10.9.0.2", "remote_as": 65002, "local_address": "10.9.0.1"}
HOSTILE: dict[str, tuple[dict, str]] = {  # name -> (config, the field the one line names)
    "v6-vtep-v4-sessions": ({**V6, "peers": [PEER_V4]}, "vtep: 2001:db8:5::1 is IPv6"),
    "v6-vtep-not-local": ({**V6, "vtep": "2001:db8:5::99"}, "vtep: 2001:db8:5::99 is not an"),
    "v6-vtep-l3vni-without-vrf": (
        {
            **V6,
            "l2vnis": [{"vni": 100, "bridge": "br100"}],
            "l3vnis": [{"vni": 5000, "table": 5000, "l2vnis": [100]}],
        },
        "l3vnis[0].vrf: an IPv6 VTEP needs",
    ),  # fmt: skip
    "link-local-vtep": ({**V6, "vtep": "fe80::1"}, "vtep: fe80::1 is a link-local"),
    "multicast-vtep": ({**V6, "vtep": "ff02::1"}, "vtep: ff02::1 is a multicast"),
    "v4-mapped-vtep": ({**V6, "vtep": "::ffff:10.0.0.1"}, "vtep: ::ffff:a00:1 is an IPv4"),
    "unspecified-vtep": ({**V6, "vtep": "0.0.0.0"}, "vtep: 0.0.0.0 is a unspecified"),
    "bad-vtep": ({**V6, "vtep": "2001:db8::g"}, "vtep: value is not a valid IPv4 or IPv6"),
    "v6-router-id": ({**V6, "router_id": "2001:db8::1"}, "router_id: "),
    "runtime-dir-under-proc": (
        {**V6, "runtime_dir": "/proc/evpnd-test"},
        "runtime_dir: cannot create /proc/evpnd-test: ",
    ),
    "api-socket-under-proc": (
        {**V6, "api": {"socket": "/proc/evpnd-test/evpnd.sock"}},
        "api.socket: cannot create /proc/evpnd-test: ",
    ),
    "runtime-dir-below-a-file": (
        {**V6, "runtime_dir": "/etc/hostname/evpnd"},
        "runtime_dir: cannot create /etc/hostname/evpnd: Not a directory",
    ),
    "v6-peer-bad-local": (
        {**V6, "peers": [{"address": "2001:db8:5::2", "remote_as": 1, "local_address": "x"}]},
        "peers[0].local_address: ",
    ),
}


@pytest.fixture
def netns(lab):
    ns = lab.netns("cfg")
    ns.ip("addr", "add", "2001:db8:5::1/128", "dev", "lo", "nodad")
    return ns


def relocate(data: dict, tmp: Path, keep: bool = False) -> dict:
    """The config with its socket and runtime directory under tmp (never the host's /run);
    with keep, those a hostile config gives itself stay."""
    data = dict(data)
    if not (keep and "api" in data):
        data["api"] = {**(data.get("api") or {}), "socket": str(tmp / "evpnd.sock")}
    if not (keep and "runtime_dir" in data):
        data["runtime_dir"] = str(tmp / "run")
    return data


def run_daemon(ns, path: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        ns.cmd(*evpnd_command(), "-c", str(path)), capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_config_exits_2_with_one_line(netns, tmp_path, name):
    data, expected = HOSTILE[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(relocate(data, tmp_path, keep=True)))
    proc = run_daemon(netns, path)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: {expected}"), proc.stderr


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_configs_never_end_in_a_traceback(netns, tmp_path, path):
    """The bad configs of tests/fixtures/configs as they are (minimal.yaml is good: it runs)."""
    if path.name == "minimal.yaml":
        data = relocate(yaml.safe_load(path.read_text()), tmp_path)
        path = tmp_path / path.name
        path.write_text(yaml.safe_dump(data))
        runs_until_sigterm(netns, path)
        return
    proc = run_daemon(netns, path)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and all(ln.startswith(f"{path}: ") for ln in lines), proc.stderr


def runs_until_sigterm(ns, path: Path, tmp: Path | None = None) -> None:
    tmp = tmp or path.parent
    proc = subprocess.Popen(
        ns.cmd(*evpnd_command(), "-c", str(path)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # a loaded machine: imports alone take seconds
        while time.monotonic() < deadline and proc.poll() is None:
            if (tmp / "evpnd.sock").exists():
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(1.0)  # let the first reconciliation and ExaBGP's start happen
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "Traceback" not in out, out[-3000:]
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_runs_and_stops_cleanly(lab, tmp_path, path):
    data = yaml.safe_load(path.read_text())
    ns = lab.netns("ex")
    plen = "128" if ":" in str(data["vtep"]) else "32"
    ns.ip("addr", "add", f"{data['vtep']}/{plen}", "dev", "lo", "nodad")
    conf = tmp_path / path.name
    conf.write_text(yaml.safe_dump(relocate(data, tmp_path)))
    assert subprocess.run(ns.cmd(*evpnd_command(), "--check-config", "-c", str(conf)),
                          capture_output=True).returncode == 0  # fmt: skip
    runs_until_sigterm(ns, conf)
