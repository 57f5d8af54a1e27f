"""`evpnctl capture` on a real fabric: two evpnd leaves, hosts in VNIs 100 and 200.

A capture on leaf A for VNI 100 (interface found from A's VTEP) sees the ICMP echoes of h1 -> h2
between A's and B's VTEPs, in text and JSON; tshark reads its pcap as VXLAN with VNI 100; a
parallel, much larger flow in VNI 200 is neither printed nor copied to user space (the kernel's
counters say the filter let through only what was printed). Bad input and a missing privilege
give one line and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evpnd.lab.netns import Lab, stop_process, wait_for
from tests.netns.fabric import (
    evpnd_config,
    four_hosts,
    start_evpnd,
    two_leaves,
    two_vnis,
    wait_ping,
)

pytestmark = pytest.mark.netns
EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))
PINGS = 5
FLOOD = 300  # echo requests in VNI 200 while VNI 100 is captured


@pytest.fixture(scope="module")
def fabric():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    lab = Lab(prefix="cap")
    try:
        a, b = two_leaves(lab)
        hosts = four_hosts(lab, a, b)
        h1, h2, h3, h4 = (hosts[h] for h in ("h1", "h2", "h3", "h4"))
        start_evpnd(lab, a, evpnd_config(a, [b], two_vnis("a", svi_address="10.100.0.254/24")))
        start_evpnd(lab, b, evpnd_config(b, [a], two_vnis("b")))
        wait_ping(h1, h2, timeout=45)
        wait_ping(h4, h3, timeout=30)
        # leaf A resolves h1 on its SVI: evpnd learns and advertises h1's MAC/IP, so its IP is
        # one evpnd knows (the --ip check)
        wait_for(lambda: a.ns.ping(h1.ip, timeout=0.5) and b.node.data(
            "explain", target=h1.ip)["vnis"], 20, what="h1's IP known to evpnd")  # fmt: skip
        yield {"lab": lab, "a": a, "b": b, **hosts}
    finally:
        lab.cleanup()


def start_capture(leaf, *args: str, prefix: list[str] | None = None) -> subprocess.Popen:
    """evpnctl capture inside the leaf's namespace; returns once the filter is attached."""
    cmd = leaf.ns.cmd(*(prefix or []), EVPNCTL, "-s", str(leaf.node.socket), "capture", *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # "capturing on IFACE, kernel filter: ..."
    assert first.startswith("evpnctl: capturing on uplink"), first + proc.stderr.read()
    return proc


def finish(proc: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise
    assert proc.returncode == 0, err
    return out, err


def ping(host, dst: str, count: int, interval: str) -> subprocess.Popen:
    return host.ns.popen(["ping", "-q", "-c", str(count), "-i", interval, "-W", "1", dst],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def test_capture_vni_json_pcap_and_kernel_filter(fabric, tmp_path):
    a, b, h1, h2, h3, h4 = (fabric[k] for k in ("a", "b", "h1", "h2", "h3", "h4"))
    pcap = tmp_path / "vni100.pcap"
    cap = start_capture(a, "--vni", "100", "--seconds", "6", "--json", "-w", str(pcap))
    flood = ping(h4, h3.ip, FLOOD, "0.005")
    time.sleep(0.3)
    assert h1.ns.run(["ping", "-c", str(PINGS), "-i", "0.2", h2.ip], check=False) is not None
    assert flood.wait(timeout=30) == 0
    out, _ = finish(cap)
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["summary"]
    packets = lines[:-1]
    assert all(p["vni"] == 100 and p["encap"] == "vxlan" for p in packets), packets
    requests = [p for p in packets if p["inner"].get("summary", "").find("echo request") > 0]
    replies = [p for p in packets if p["inner"].get("summary", "").find("echo reply") > 0]
    assert [p["inner"]["detail"]["seq"] for p in requests] == list(range(1, PINGS + 1))
    assert len(replies) == PINGS
    for p in requests:
        assert (p["outer_src"], p["outer_dst"]) == (a.vtep, b.vtep)
        assert (p["inner"]["src_mac"], p["inner"]["dst_mac"]) == (h1.mac, h2.mac)
        assert (p["inner"]["src"], p["inner"]["dst"]) == (h1.ip, h2.ip)
    for p in replies:
        assert (p["outer_src"], p["outer_dst"]) == (b.vtep, a.vtep)
    # The VNI 200 flow (2 * FLOOD packets on the uplink) never reached user space: the kernel
    # passed exactly what was printed.
    assert summary["interface"] == "uplink"
    assert summary["kernel_received"] == summary["captured"] == len(packets), summary
    assert summary["kernel_dropped"] == 0
    assert summary["interface_packets"] >= 2 * FLOOD + 2 * PINGS, summary
    assert summary["filtered_out_in_kernel"] >= 2 * FLOOD, summary
    # tshark decodes the file as VXLAN, VNI 100, with the same echoes
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: scripts/install.sh installs it"
    res = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-e", "vxlan.vni", "-e",
                          "icmp.type", "-e", "ip.src"], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = [r.split("\t") for r in res.stdout.splitlines()]
    assert len(rows) == len(packets)
    assert {r[0] for r in rows} == {"100"}
    echo = [r for r in rows if r[1].startswith("8")]
    assert len(echo) == PINGS and all(r[2].startswith(f"{a.vtep},{h1.ip}") for r in echo), rows


def test_capture_text_lines(fabric):
    a, b, h1, h2 = (fabric[k] for k in ("a", "b", "h1", "h2"))
    cap = start_capture(b, "--vni", "100", "--ip", h1.ip, "-c", "4", "--seconds", "20")
    h1.ns.run(["ping", "-c", "2", "-i", "0.2", h2.ip], check=False)
    out, err = finish(cap)
    lines = out.splitlines()
    assert len(lines) == 4, out
    req = [ln for ln in lines if "echo request" in ln]
    assert req and all(
        f" {a.vtep} > {b.vtep} vxlan vni 100 {h1.mac} > {h2.mac} ICMP {h1.ip} > {h2.ip} "
        "echo request id "
        in ln
        and " seq " in ln
        and ", length 148" in ln
        for ln in req
    ), out
    assert any(f" {b.vtep} > {a.vtep} vxlan vni 100 {h2.mac} > {h1.mac}" in ln for ln in lines)
    assert "4 packets captured; kernel: 4 passed the filter" in err


def run_capture(leaf, *args: str, prefix: list[str] | None = None):
    cmd = leaf.ns.cmd(*(prefix or []), EVPNCTL, "-s", str(leaf.node.socket), "capture", *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def test_unknown_vni_mac_ip_one_line_nonzero(fabric):
    a = fabric["a"]
    for args, text in (
        (["--vni", "300"], "unknown VNI 300 (evpnd has 100, 200)"),
        (["--mac", "02:bb:00:00:00:09"], "unknown MAC 02:bb:00:00:00:09"),
        (["--ip", "10.100.0.99"], "unknown IP 10.100.0.99"),
        (["--ip", fabric["h2"].ip], "use --mac"),
        (["--vni", "200", "--mac", fabric["h2"].mac], "is not in VNI 200"),
    ):
        res = run_capture(a, *args, "-c", "1")
        assert res.returncode == 1, (args, res.stderr)
        assert res.stderr.count("\n") == 1 and text in res.stderr, res.stderr
    res = run_capture(a, "--mac", "zz", "-c", "1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "not a MAC" in res.stderr


def test_without_cap_net_raw_says_which_privilege(fabric):
    capsh = shutil.which("capsh")
    assert capsh, "capsh (libcap2-bin) is needed to drop the capability"
    a = fabric["a"]
    cmd = a.ns.cmd(capsh, "--drop=cap_net_raw", "--", "-c",
                   f"exec {EVPNCTL} -s {a.node.socket} capture --vni 100 -c 1")  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 3, res
    assert res.stderr.count("\n") == 1 and "needs CAP_NET_RAW" in res.stderr, res.stderr
