"""`evpnctl capture --type geneve|gre` on real GENEVE, gretap and GRE devices (full kernel only).

Two namespaces joined by one veth underlay link; between them two tunnels of the same kind
that differ only in VNI/key (plain `ip link` devices: what is tested is the capture, not who
made the tunnels). The capture, on the underlay, filtered for the first tunnel's VNI/key, sees
the ICMP echoes across it, with the right outer addresses and VNI/key, in JSON and in a pcap
that tshark decodes as GENEVE/GRE; a parallel, much larger flow through the other tunnel is
dropped by the kernel filter (the kernel's counters: what passed the filter is exactly what was
printed). No evpnd runs here: the capture is given `-i` and warns that it checked nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evpnd.lab.netns import stop_process

pytestmark = pytest.mark.netns
EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))
PINGS = 5
FLOOD = 200  # echo requests through the other tunnel while the first one is captured
U1, U2 = "10.0.0.1", "10.0.0.2"

# kind -> (evpnctl --type, the two VNIs/keys, ip link arguments for id N, tshark id field)
KINDS = {
    "geneve": ("geneve", (500, 600), lambda n, remote, _local: [
        "type", "geneve", "id", str(n), "remote", remote], "geneve.vni"),
    "gretap": ("gre", (11, 12), lambda n, remote, local: [
        "type", "gretap", "local", local, "remote", remote, "key", str(n)], "gre.key"),
    "gre": ("gre", (21, 22), lambda n, remote, local: [
        "type", "gre", "local", local, "remote", remote, "key", str(n)], "gre.key"),
}  # fmt: skip


def tunnels(lab, kind: str):
    """Namespaces t1/t2, underlay U1/U2, tunnel i (ids[i]) carrying 10.<50+i>.0.0/24."""
    t1, t2 = lab.netns("t1"), lab.netns("t2")
    lab.link(t1, "uplink", t2, "uplink", f"{U1}/30", f"{U2}/30")
    _, ids, args, _ = KINDS[kind]
    for i, n in enumerate(ids):
        for j, (ns, local, remote) in enumerate(((t1, U1, U2), (t2, U2, U1)), 1):
            ns.ip("link", "add", f"tun{i}", *args(n, remote, local))
            ns.ip("addr", "add", f"10.{50 + i}.0.{j}/24", "dev", f"tun{i}")
            ns.ip("link", "set", f"tun{i}", "up")
    for i in range(2):
        assert t1.ping(f"10.{50 + i}.0.2", count=3), f"{kind} tunnel {i} does not carry pings"
    return t1, t2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_capture_sees_only_its_vni_or_key(lab, kind, tmp_path):
    encap, (mine, other), _, field = KINDS[kind]
    t1, _t2 = tunnels(lab, kind)
    pcap = tmp_path / f"{kind}.pcap"
    cmd = t1.cmd(EVPNCTL, "-s", str(tmp_path / "no-evpnd.sock"), "capture", "--type", encap,
                 "--vni", str(mine), "-i", "uplink", "--seconds", "8", "--json", "-w",
                 str(pcap))  # fmt: skip
    cap = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while True:  # a warning that evpnd is not there, then the filter line
            line = cap.stderr.readline()
            assert line, "capture ended before attaching its filter"
            if line.startswith("evpnctl: capturing on uplink"):
                break
        flood = t1.popen(["ping", "-q", "-c", str(FLOOD), "-i", "0.005", "-W", "1", "10.51.0.2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(0.3)
        t1.run(["ping", "-c", str(PINGS), "-i", "0.2", "10.50.0.2"])
        assert flood.wait(timeout=60) == 0
        out, err = cap.communicate(timeout=60)
    finally:
        stop_process(cap)
    assert cap.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    summary, packets = lines[-1]["summary"], lines[:-1]
    assert packets and all(p["encap"] == encap and p["vni"] == mine for p in packets), packets
    requests = [p for p in packets if "echo request" in p["inner"].get("summary", "")]
    replies = [p for p in packets if "echo reply" in p["inner"].get("summary", "")]
    assert [p["inner"]["detail"]["seq"] for p in requests] == list(range(1, PINGS + 1))
    assert len(replies) == PINGS
    for p in requests:
        assert (p["outer_src"], p["outer_dst"]) == (U1, U2)
        assert (p["inner"]["src"], p["inner"]["dst"]) == ("10.50.0.1", "10.50.0.2")
        assert ("src_mac" in p["inner"]) == (kind != "gre")  # plain GRE carries no Ethernet
    for p in replies:
        assert (p["outer_src"], p["outer_dst"]) == (U2, U1)
    # the other tunnel's 2 * FLOOD packets crossed the uplink but never reached user space
    assert summary["kernel_received"] == summary["captured"] == len(packets), summary
    assert summary["interface_packets"] >= 2 * FLOOD + 2 * PINGS, summary
    assert summary["filtered_out_in_kernel"] >= 2 * FLOOD, summary
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: scripts/install.sh installs it"
    res = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.protocols",
                          "-e", field, "-e", "icmp.type"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = [r.split("\t") for r in res.stdout.splitlines()]
    assert len(rows) == len(packets), rows
    proto = "geneve" if kind == "geneve" else "gre"
    assert all(f":{proto}:" in r[0] for r in rows), rows
    assert {int(r[1], 0) for r in rows} == {mine}, rows
    assert sum(r[2].startswith("8") for r in rows) == PINGS, rows


def test_capture_gre_inner_ip_filter(lab):
    """--ip on plain GRE (no inner Ethernet) and on gretap: only that inner host's packets."""
    for kind in ("gre", "gretap"):
        t1, _ = tunnels(lab, kind)
        key = KINDS[kind][1][0]
        cmd = t1.cmd(EVPNCTL, "-s", "/nonexistent/evpnd.sock", "capture", "--type", "gre",
                     "--vni", str(key), "--ip", "10.50.0.2", "-i", "uplink",
                     "--seconds", "5")  # fmt: skip
        cap = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while not cap.stderr.readline().startswith("evpnctl: capturing on"):
                assert cap.poll() is None, cap.stderr.read()
            t1.run(["ping", "-c", "2", "-i", "0.2", "10.50.0.2"])
            out, err = cap.communicate(timeout=60)
        finally:
            stop_process(cap)
        assert cap.returncode == 0, err
        lines = out.splitlines()
        assert lines and all(f" gre key {key} " in ln for ln in lines), out
        assert sum("ICMP 10.50.0.1 > 10.50.0.2 echo request" in ln for ln in lines) == 2, out
        assert sum("ICMP 10.50.0.2 > 10.50.0.1 echo reply" in ln for ln in lines) == 2, out
        # nothing of the other tunnel (10.51.0.0/24, other key), which tunnels() pinged too
        assert "10.51.0." not in out, out
        lab.cleanup()  # the next kind in fresh namespaces
