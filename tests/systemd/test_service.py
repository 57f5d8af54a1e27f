"""evpnd as operators run it: installed from the wheel into /opt/evpnd, started by systemd.

One guest (tests/systemd/guest.py: a Debian 12 root, systemd as PID 1) for the whole module; the
tests run in file order on it, as an operator's day would: install, a broken config, start,
identity and capabilities, reload, kill -9, a hung daemon, the journal. The BGP peer is a second
evpnd from the same wheel in a network namespace inside the guest, run by the guest's systemd too
(`systemd-run`), joined by a veth pair; with a host port whose MAC it advertises.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from tests.systemd.guest import Guest, GuestError

REPO = Path(__file__).resolve().parents[2]
ENV = __import__("os").environ
SWEEP_HOLD = 15  # the unit's evpnd keeps kernel entries this long after a start before sweeping
PEER_MAC = "02:00:00:00:99:01"  # a static entry on the peer's access port: advertised sticky
MOVE_MAC = "02:00:00:00:88:01"  # learned first behind the unit's evpnd, then behind the peer
UNIT_MAC = "02:00:00:00:77:01"  # static behind the unit's evpnd: the peer holds it as remote
CAP_NET_BIND_SERVICE, CAP_NET_ADMIN = 10, 12
TWO_CAPS = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_BIND_SERVICE)

UNIT_CFG: dict = {
    "router_id": "10.99.0.1",
    "asn": 65001,
    "vtep": "10.99.0.1",
    "peers": [{"address": "10.99.0.2", "remote_as": 65002, "hold_time": 9}],
    "l2vnis": [{"vni": 100, "bridge": "br100", "access_ports": ["acc100"]}],
    "sweep_hold_time": SWEEP_HOLD,
    "exabgp": {"graceful_restart": 60},
}
PEER_CFG: dict = {
    "router_id": "10.99.0.2",
    "asn": 65002,
    "vtep": "10.99.0.2",
    "peers": [{"address": "10.99.0.1", "remote_as": 65001, "hold_time": 9}],
    "l2vnis": [
        {"vni": 100, "bridge": "br100", "access_ports": ["hp0"]},
        {"vni": 200, "bridge": "br200"},
    ],
    "api": {"socket": "/run/evpnd-peer/evpnd.sock"},
    "runtime_dir": "/run/evpnd-peer",
    "exabgp": {"graceful_restart": 60},
}


def wait_for(check, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except GuestError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last}")


@pytest.fixture(scope="module")
def guest():
    for var in ("EVPND_SYSTEMD_ROOT", "EVPND_WHEEL", "EVPND_WHEELHOUSE"):
        assert ENV.get(var), f"{var} unset: run through scripts/systemd-tier.sh (make test)"
    g = Guest(ENV["EVPND_SYSTEMD_ROOT"])
    try:
        t0 = time.monotonic()
        g.boot()
        print(f"guest booted in {time.monotonic() - t0:.1f} s")
        wheel = Path(ENV["EVPND_WHEEL"])
        g.copy_in(wheel, f"/root/evpnd-install/{wheel.name}")
        g.copy_in(ENV["EVPND_WHEELHOUSE"], "/root/evpnd-install/wheelhouse")
        sdist = wheel.with_name(f"evpnd-{wheel.name.split('-')[1]}.tar.gz")
        g.copy_in(sdist, f"/root/evpnd-install/{sdist.name}")
        yield g
    finally:
        g.shutdown()


# ---- guest-side helpers ------------------------------------------------------------------------
def show(g: Guest, key: str) -> str:
    return g.run(["systemctl", "show", "evpnd", "-p", key, "--value"]).stdout.strip()


def main_pid(g: Guest) -> int:
    return int(show(g, "MainPID"))


def ctl(g: Guest, *args: str, socket: str | None = None) -> dict:
    sock = ["-s", socket] if socket else []
    return json.loads(g.run(["evpnctl", *sock, *args, "--json"], timeout=30).stdout)


def peer_row(g: Guest, socket: str | None = None) -> dict:
    """The one peer of `show peers`, with the daemon's ExaBGP PID."""
    data = ctl(g, "show", "peers", socket=socket)
    (row,) = data["peers"]
    return {**row, "exabgp_pid": data["exabgp_pid"]}


def session_up(g: Guest, socket: str | None = None) -> bool:
    return peer_row(g, socket)["state"] == "up"  # 'up' is Established


def fdb(g: Guest, dev: str, ns: str | None = None) -> list[str]:
    pre = ["ip", "netns", "exec", ns] if ns else []
    out = g.run([*pre, "bridge", "fdb", "show", "dev", dev]).stdout
    return sorted(line for line in out.splitlines() if line)


def remote(g: Guest, dev: str, mac: str, vtep: str, ns: str | None = None) -> bool:
    return any(line.startswith(f"{mac} dst {vtep}") for line in fdb(g, dev, ns))


def journal(g: Guest, *args: str) -> list[dict]:
    out = g.run(["journalctl", "-u", "evpnd", "-o", "json", "--no-pager", *args]).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def proc_status(g: Guest, pid: int) -> dict[str, str]:
    text = g.run(["cat", f"/proc/{pid}/status"]).stdout
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def write_config(g: Guest, cfg: dict, path: str = "/etc/evpnd/evpnd.yaml") -> None:
    g.write(path, yaml.safe_dump(cfg, sort_keys=False))


# ---- the tests, in an operator's order -------------------------------------------------------
def test_install_from_the_wheel_offline(guest):
    """README "Installing on a server", step by step (the unit and sysusers files from the
    sdist), with no index: the wheelhouse only."""
    wheel = Path(ENV["EVPND_WHEEL"]).name
    version = wheel.split("-")[1]
    guest.sh(
        f"""
        python3 -m venv /opt/evpnd/{version}
        /opt/evpnd/{version}/bin/pip install -q --no-index \
            --find-links /root/evpnd-install/wheelhouse /root/evpnd-install/{wheel}
        ln -sfn {version} /opt/evpnd/current
        ln -sf /opt/evpnd/current/bin/evpnd /opt/evpnd/current/bin/evpnctl /usr/local/bin/
        cd /root/evpnd-install && tar xzf evpnd-{version}.tar.gz && cd evpnd-{version}
        install -m 0644 systemd/evpnd.service /etc/systemd/system/
        install -m 0644 systemd/evpnd.sysusers /usr/lib/sysusers.d/evpnd.conf
        install -D -m 0644 README.md /usr/share/doc/evpnd/README.md
        systemd-sysusers
        install -d -m 0755 /etc/evpnd
        systemctl daemon-reload
        """,
        timeout=300,
    )
    python = "/opt/evpnd/current/bin/python"
    got = guest.run([python, "-c", "import evpnd; print(evpnd.__version__)"])
    assert got.stdout.strip() == version
    assert guest.run(["getent", "passwd", "evpnd"]).stdout.split(":")[5] == "/run/evpnd"
    assert show(guest, "LoadState") == "loaded" and show(guest, "Type") == "notify"


def test_both_programs_print_the_version(guest):
    version = Path(ENV["EVPND_WHEEL"]).name.split("-")[1]
    for prog in ("evpnd", "evpnctl"):
        out = guest.run([prog, "--version"])
        assert version in out.stdout + out.stderr, (prog, out.stdout, out.stderr)


def test_a_broken_config_fails_once_with_its_error(guest):
    """Exit 2 (a config error) is not restarted: one error in status and journal, no loop."""
    bad = {**UNIT_CFG, "vtep": "not-an-address"}
    write_config(guest, bad)
    started = guest.run(["systemctl", "start", "evpnd"], check=False, timeout=60)
    assert started.returncode != 0
    # RestartSec is 2 s: a restart loop would have started evpnd again several times by now
    time.sleep(8)
    assert show(guest, "ActiveState") == "failed"
    assert show(guest, "NRestarts") == "0"
    assert show(guest, "ExecMainStatus") == "2"
    status = guest.run(["systemctl", "status", "evpnd", "--no-pager", "-l"], check=False)
    assert status.returncode == 3  # not running
    error = "/etc/evpnd/evpnd.yaml: vtep: value is not a valid IPv4 or IPv6 address"
    assert error in status.stdout, status.stdout
    messages = [e.get("MESSAGE", "") for e in journal(guest)]
    assert sum(error in m for m in messages) == 1, messages
    guest.run(["systemctl", "reset-failed", "evpnd"])


@pytest.fixture(scope="module")
def fabric(guest):
    """The underlay veth, the unit's access port, and the peer evpnd (a transient unit)."""
    guest.sh(
        """
        ip link set lo up
        ip netns add peer
        ip link add uplink type veth peer name downlink netns peer
        ip addr add 10.99.0.1/30 dev uplink
        ip link set uplink up
        ip -n peer link set lo up
        ip -n peer addr add 10.99.0.2/30 dev downlink
        ip -n peer link set downlink up
        ip -n peer link add hp0 type veth peer name hp1
        ip -n peer link set hp1 up
        ip link add acc100 type veth peer name acch100
        ip link set acch100 up
        """
    )
    write_config(guest, PEER_CFG, "/etc/evpnd-peer/evpnd.yaml")
    # Type=notify: systemd-run returns when the peer has sent READY=1
    evpnd = ["/opt/evpnd/current/bin/evpnd", "-c", "/etc/evpnd-peer/evpnd.yaml"]
    guest.run(["systemd-run", "--unit=evpnd-peer", "-p", "Type=notify",
               "-p", "NetworkNamespacePath=/run/netns/peer", *evpnd], timeout=90)  # fmt: skip
    guest.run(["ip", "netns", "exec", "peer", "bridge", "fdb", "add", PEER_MAC, "dev", "hp0",
               "master", "static"])  # fmt: skip
    return "/run/evpnd-peer/evpnd.sock"


def test_start_returns_after_the_initial_sync(guest, fabric):
    write_config(guest, UNIT_CFG)
    t0 = time.monotonic()
    guest.run(["systemctl", "start", "evpnd"], timeout=120)
    took = time.monotonic() - t0
    # Type=notify: `systemctl start` returned at READY=1, which evpnd sends after the initial
    # sync: devices made or adopted, kernel dumped, ExaBGP running, the control socket answering.
    # With Type=simple all of this would still be starting.
    assert show(guest, "ActiveState") == "active" and show(guest, "SubState") == "running"
    assert show(guest, "StatusText") == "running"  # STATUS= from evpnd's own notify
    links = guest.run(["ip", "-br", "link", "show"]).stdout
    assert re.search(r"^br100\s", links, re.M) and re.search(r"^vx100\s", links, re.M), links
    row = peer_row(guest)
    assert row["exabgp_pid"], row
    ready_s = (int(show(guest, "ActiveEnterTimestampMonotonic"))
               - int(show(guest, "ExecMainStartTimestampMonotonic"))) / 1e6  # fmt: skip
    print(f"systemctl start evpnd returned after {took:.1f} s (exec to READY {ready_s:.1f} s)")
    # READY=1 came after evpnd began its start (ExecMainStart) and before systemd said Started
    began = int(show(guest, "ExecMainStartTimestampMonotonic"))
    active = int(show(guest, "ActiveEnterTimestampMonotonic"))
    starting = [e for e in journal(guest, f"_PID={main_pid(guest)}")
                if e.get("MESSAGE", "").startswith("starting")]  # fmt: skip
    assert starting, "no 'starting' event in the journal"
    assert began <= int(starting[0]["__MONOTONIC_TIMESTAMP"]) <= active


def test_runs_as_evpnd_with_exactly_two_capabilities(guest, fabric):
    uid = guest.run(["id", "-u", "evpnd"]).stdout.strip()
    gid = guest.run(["id", "-g", "evpnd"]).stdout.strip()
    exabgp = peer_row(guest)["exabgp_pid"]
    for pid in (main_pid(guest), exabgp):  # ExaBGP binds :179: it needs the ambient set too
        st = proc_status(guest, pid)
        assert st["Uid"].split() == [uid] * 4 and st["Gid"].split() == [gid] * 4, st
        for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
            assert int(st[key], 16) == TWO_CAPS, (pid, key, st[key])
        assert int(st["NoNewPrivs"]) == 1


def test_routes_are_exchanged(guest, fabric):
    wait_for(lambda: session_up(guest), 60, "the BGP session")
    wait_for(lambda: remote(guest, "vx100", PEER_MAC, "10.99.0.2"), 30, "the peer's MAC")
    wait_for(lambda: remote(guest, "vx100", "00:00:00:00:00:00", "10.99.0.2"), 30, "flood entry")
    guest.run(["bridge", "fdb", "add", UNIT_MAC, "dev", "acc100", "master", "static"])
    wait_for(lambda: remote(guest, "vx100", UNIT_MAC, "10.99.0.1", ns="peer"), 30, "MAC at peer")


def test_reload_adds_a_vni_without_resetting_the_session(guest, fabric):
    before, peer_before = peer_row(guest), peer_row(guest, fabric)
    pid, restarts = main_pid(guest), show(guest, "NRestarts")
    t0 = time.monotonic()
    cfg = {**UNIT_CFG, "l2vnis": [*UNIT_CFG["l2vnis"], {"vni": 200, "bridge": "br200"}]}
    write_config(guest, cfg)
    guest.run(["systemctl", "reload", "evpnd"])
    # the new VNI: its devices, and the peer's type-3 for it over the same session
    wait_for(lambda: "vx200" in guest.run(["ip", "-br", "link"]).stdout, 30, "vx200")
    wait_for(lambda: remote(guest, "vx200", "00:00:00:00:00:00", "10.99.0.2"), 30, "vni 200 flood")
    elapsed = time.monotonic() - t0
    after, peer_after = peer_row(guest), peer_row(guest, fabric)
    assert main_pid(guest) == pid and show(guest, "NRestarts") == restarts
    assert after["state"] == peer_after["state"] == "up"
    assert after["exabgp_pid"] == before["exabgp_pid"]  # ExaBGP was not even reloaded
    # both ends' session uptime kept counting through the reload (a reset starts it at 0)
    assert after["uptime"] >= before["uptime"] + elapsed - 2, (before, after)
    assert peer_after["uptime"] >= peer_before["uptime"] + elapsed - 2, (peer_before, peer_after)
    assert remote(guest, "vx100", PEER_MAC, "10.99.0.2")


DEVICES = ("br100", "vx100", "br200", "vx200")


def kernel_snapshot(g: Guest) -> tuple:
    """Every FDB entry of evpnd's devices, and the devices themselves in detail (ifindex,
    flags, MTU, vxlan and bridge-port settings): a recreated or re-set device shows here."""
    links = {}
    for dev in DEVICES:
        out = g.run(["ip", "-d", "link", "show", "dev", dev]).stdout
        out = re.sub(r"\b\w+_timer\s+\S+", "", out)  # the bridge's running timers tick
        links[dev] = re.sub(r"\s+", " ", out)
    return links, {dev: fdb(g, dev) for dev in DEVICES}


def restart_without_churn(g: Guest, kill: list[str], tmp_path: Path) -> float:
    """Run `kill`, wait for systemd's restart, and check that neither this kernel nor the peer's
    saw one FDB change, from before the kill until past the new evpnd's sweep. Returns the time
    until the unit was active again."""
    pid, restarts = main_pid(g), int(show(g, "NRestarts"))
    snapshot, peer_fdb = kernel_snapshot(g), fdb(g, "vx100", ns="peer")
    here, there = tmp_path / "monitor.log", tmp_path / "monitor-peer.log"
    with open(here, "w") as out, open(there, "w") as out_peer:
        monitors = [
            g.popen(["bridge", "monitor", "fdb"], out),
            g.popen(["ip", "netns", "exec", "peer", "bridge", "monitor", "fdb"], out_peer),
        ]
        try:
            time.sleep(1)
            g.run(kill)
            t0 = time.monotonic()
            wait_for(lambda: main_pid(g) not in (0, pid) and show(g, "ActiveState") == "active",
                     60, "the restart")  # fmt: skip
            back = time.monotonic() - t0
            wait_for(lambda: session_up(g), 60, "the session back")
            # the new evpnd sweeps what it no longer wants SWEEP_HOLD s after its start: watch
            # past that moment
            time.sleep(max(0.0, SWEEP_HOLD + 4 - (time.monotonic() - t0)))
        finally:
            for m in monitors:
                m.terminate()
                m.wait(timeout=10)
    assert int(show(g, "NRestarts")) == restarts + 1
    assert here.read_text().strip() == "", f"this kernel's FDB changed:\n{here.read_text()}"
    # the peer kept evpnd's routes through the restart (graceful restart: no Cease was sent)
    assert there.read_text().strip() == "", f"the peer's FDB changed:\n{there.read_text()}"
    now_links, now_fdb = kernel_snapshot(g)
    changed = {d: (snapshot[0][d], now_links[d]) for d in DEVICES if snapshot[0][d] != now_links[d]}
    assert not changed, f"devices changed: {changed}"
    assert now_fdb == snapshot[1] and fdb(g, "vx100", ns="peer") == peer_fdb
    assert remote(g, "vx100", UNIT_MAC, "10.99.0.1", ns="peer")
    return back


def test_kill_9_restarts_with_zero_kernel_churn(guest, fabric, tmp_path):
    back = restart_without_churn(guest, ["kill", "-9", str(main_pid(guest))], tmp_path)
    print(f"kill -9: active again after {back:.1f} s")


def test_upgrade_as_the_readme_says(guest, fabric, tmp_path):
    """README: a new venv beside the old one, `current` switched, the whole unit SIGKILLed."""
    wheel = Path(ENV["EVPND_WHEEL"]).name
    guest.sh(
        f"""
        python3 -m venv /opt/evpnd/next
        /opt/evpnd/next/bin/pip install -q --no-index \
            --find-links /root/evpnd-install/wheelhouse /root/evpnd-install/{wheel}
        ln -sfn next /opt/evpnd/current
        """,
        timeout=300,
    )
    kill = ["systemctl", "kill", "--signal=SIGKILL", "evpnd"]
    back = restart_without_churn(guest, kill, tmp_path)
    print(f"upgrade: active again after {back:.1f} s")
    cmdline = guest.run(["cat", f"/proc/{main_pid(guest)}/cmdline"]).stdout
    assert cmdline.startswith("/opt/evpnd/next/bin/python"), cmdline


def test_a_hung_daemon_is_restarted_by_the_watchdog(guest, fabric):
    watchdog = int(show(guest, "WatchdogUSec")) / 1e6 if show(guest, "WatchdogUSec").isdigit() \
        else 30.0  # fmt: skip
    pid, restarts = main_pid(guest), int(show(guest, "NRestarts"))
    guest.run(["kill", "-STOP", str(pid)])
    t0 = time.monotonic()
    wait_for(lambda: main_pid(guest) not in (0, pid) and show(guest, "ActiveState") == "active",
             watchdog + 40, "the watchdog restart")  # fmt: skip
    took = time.monotonic() - t0
    print(f"SIGSTOP: restarted and ready after {took:.1f} s (WatchdogSec {watchdog:.0f} s)")
    # the stop was noticed within WatchdogSec; then RestartSec and a start (READY) follow
    killed = [e for e in journal(guest) if "Watchdog timeout" in e.get("MESSAGE", "")]
    assert killed, "no watchdog timeout in the journal"
    assert int(show(guest, "NRestarts")) == restarts + 1
    stop_to_timeout = (int(killed[-1]["__REALTIME_TIMESTAMP"]) / 1e6) - (time.time() - took)
    assert stop_to_timeout <= watchdog + 2, stop_to_timeout
    wait_for(lambda: session_up(guest), 60, "the session back")


def test_the_journal_has_peer_vni_and_mac_as_fields(guest, fabric):
    # a MAC learned behind the unit's evpnd, then behind the peer: a move, logged with vni + mac
    guest.run(["bridge", "fdb", "add", MOVE_MAC, "dev", "acc100", "master", "dynamic"])
    wait_for(lambda: remote(guest, "vx100", MOVE_MAC, "10.99.0.1", ns="peer"), 30, "MAC at peer")
    # the host shows up behind the peer and sends a frame: the peer's bridge learns it there
    frame = "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
    frame += "s.bind(('hp1', 0)); "
    frame += f"s.send(bytes.fromhex('ffffffffffff{MOVE_MAC.replace(':', '')}88b5') + bytes(50))"
    guest.run(["ip", "netns", "exec", "peer", "python3", "-c", frame])

    def moved() -> list[dict]:
        return [e for e in journal(guest) if e.get("MAC") == MOVE_MAC]

    try:
        (entry, *_) = wait_for(moved, 30, "the move in the journal")
    except AssertionError as exc:
        peer_macs = guest.run(["evpnctl", "-s", fabric, "show", "macs"], check=False).stdout
        here = guest.run(["evpnctl", "show", "macs"], check=False).stdout
        tail = [e.get("MESSAGE") for e in journal(guest)][-15:]
        raise AssertionError(f"{exc}\npeer:\n{peer_macs}\nunit:\n{here}\n{tail}") from exc
    assert entry["VNI"] == "100" and entry["SYSLOG_IDENTIFIER"] == "evpnd"
    assert entry["MESSAGE"].startswith("mac_moved_away")
    entries = journal(guest)
    uid = guest.run(["id", "-u", "evpnd"]).stdout.strip()
    peers = [e for e in entries if e.get("PEER") == "10.99.0.2"]
    assert peers and all(e["_UID"] == uid for e in peers)
    assert any(e.get("VNI") == "200" for e in entries)  # "bridge created" at the reload
    # native protocol, not JSON text on stderr: no MESSAGE of evpnd's is a JSON object
    ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "evpnd"]
    assert ours and not any(e["MESSAGE"].startswith("{") for e in ours)
    assert {e["PRIORITY"] for e in ours} <= {"3", "4", "6", "7"}
