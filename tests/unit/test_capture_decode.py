"""Decoding and printing captured overlay packets, and the pcap file tshark reads."""

from __future__ import annotations

import io
import shutil
import subprocess

import dpkt
import orjson

from evpnd.capture.decode import DLT_EN10MB, DLT_LINUX_SLL, decode, format_line
from evpnd.capture.pcapfile import PcapWriter, read
from tests.unit import capture_packets as pk

H1, H2 = "02:aa:00:00:01:01", "02:aa:00:00:02:02"
TS = 1_700_000_000.25


def test_vxlan_icmp_echo_line_and_json():
    frame = pk.vxlan(pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2", 0x1234, 7), 100, df=True)
    p = decode(TS, frame, len(frame))
    assert (p.encap, p.vni, p.outer_src, p.outer_dst, p.df) == ("vxlan", 100, "10.0.0.1",
                                                               "10.0.0.2", True)  # fmt: skip
    assert (p.inner.src_mac, p.inner.dst_mac, p.inner.proto) == (H1, H2, "ICMP")
    assert p.inner.detail == {"type": 8, "code": 0, "id": 0x1234, "seq": 7}
    line = format_line(p)
    assert "10.0.0.1 > 10.0.0.2 vxlan vni 100 02:aa:00:00:01:01 > 02:aa:00:00:02:02" in line
    assert "ICMP 10.100.0.1 > 10.100.0.2 echo request id 4660 seq 7" in line
    assert line.endswith(f"length {len(frame)} DF inner-DF")
    obj = orjson.loads(orjson.dumps(p.to_dict()))
    assert obj["vni"] == 100 and obj["encap"] == "vxlan" and obj["df"] is True
    assert obj["inner"]["detail"]["seq"] == 7 and obj["inner"]["src"] == "10.100.0.1"
    assert obj["length"] == len(frame) and obj["time"] == TS


def test_echo_reply_and_no_df():
    frame = pk.vxlan(pk.inner_icmp(H2, H1, "10.100.0.2", "10.100.0.1", 9, 3, reply=True,
                                   df=False), 200)  # fmt: skip
    line = format_line(decode(TS, frame, len(frame)))
    assert "vni 200" in line and "echo reply id 9 seq 3" in line
    assert not line.endswith("DF")


def test_arp_who_has_and_is_at():
    req = pk.vxlan(pk.inner_arp(H1, "10.100.0.1", "10.100.0.2"), 100)
    rep = pk.vxlan(pk.inner_arp(H2, "10.100.0.2", "10.100.0.1", True, H1), 100)
    assert "ARP who-has 10.100.0.2 tell 10.100.0.1" in format_line(decode(TS, req, len(req)))
    assert f"ARP 10.100.0.2 is-at {H2}" in format_line(decode(TS, rep, len(rep)))
    assert decode(TS, req, len(req)).inner.dst_mac == "ff:ff:ff:ff:ff:ff"


def test_tcp_flags_and_udp_ports():
    syn = pk.vxlan(pk.inner_tcp(H1, H2, "10.100.0.1", "10.100.0.2", 40000, 5201,
                                dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK), 100)  # fmt: skip
    p = decode(TS, syn, len(syn))
    assert (p.inner.proto, p.inner.sport, p.inner.dport) == ("TCP", 40000, 5201)
    assert "TCP 10.100.0.1:40000 > 10.100.0.2:5201 [S.]" in format_line(p)
    udp = pk.vxlan(pk.inner_udp(H1, H2, "10.100.0.1", "10.100.0.2", 5353, 53), 100)
    assert "UDP 10.100.0.1:5353 > 10.100.0.2:53 len 5" in format_line(decode(TS, udp, len(udp)))


def test_icmpv6_ipv6_underlay_geneve_and_gre():
    v6 = pk.vxlan(pk.inner_icmp6(H1, H2, "fd00::1", "fd00::2", 5, 6), 300, src="fd::1",
                  dst="fd::2")  # fmt: skip
    p = decode(TS, v6, len(v6))
    assert (p.outer_src, p.vni, p.inner.proto) == ("fd::1", 300, "ICMPv6")
    assert "echo request id 5 seq 6" in p.inner.summary
    inner = pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2")
    g = pk.geneve(inner, 400, options=b"\x01\x02\x03\x01abcd")
    assert format_line(decode(TS, g, len(g))).split()[4:8] == ["geneve", "vni", "400", H1]
    t = pk.gre(inner, 500)
    assert "gre key 500" in format_line(decode(TS, t, len(t)))
    l3 = pk.gre(inner[14:], 501, proto=0x0800)
    p = decode(TS, l3, len(l3))
    assert p.vni == 501 and p.inner.src_mac is None and p.inner.proto == "ICMP"


def test_cooked_and_truncated_frames():
    frame = pk.vxlan(pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2"), 100)
    sll = b"\x00\x00\x00\x01\x00\x06" + frame[6:12] + b"\x00\x00" + frame[12:14] + frame[14:]
    assert decode(TS, sll, len(sll), DLT_LINUX_SLL).vni == 100
    cut = decode(TS, frame[:70], len(frame))  # snap length cut inside the inner IP header
    assert cut.vni == 100 and cut.length == len(frame) and "truncated" in cut.inner.summary
    assert decode(TS, b"\x00" * 10, 10) is None
    arp_outer = bytes(12) + b"\x08\x06" + bytes(28)
    assert decode(TS, arp_outer, len(arp_outer)) is None


def test_pcap_round_trip():
    frames = [pk.vxlan(pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2", 1, i), 100)
              for i in range(3)]  # fmt: skip
    buf = io.BytesIO()
    w = PcapWriter(buf, DLT_EN10MB)
    for i, f in enumerate(frames):
        w.write(TS + i + 0.9999999, f[:60] if i == 2 else f, len(f))
    linktype, packets = read(buf.getvalue())
    assert linktype == DLT_EN10MB
    assert [p[1] for p in packets] == [frames[0], frames[1], frames[2][:60]]
    assert [p[2] for p in packets] == [len(f) for f in frames]
    assert abs(packets[0][0] - (TS + 1)) < 1e-6  # microsecond rounding carried into seconds


def test_tshark_reads_the_pcap_as_vxlan(tmp_path):
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: scripts/install.sh installs it"
    path = tmp_path / "cap.pcap"
    with open(path, "wb") as fh:
        w = PcapWriter(fh, DLT_EN10MB)
        f = pk.vxlan(pk.inner_icmp(H1, H2, "10.100.0.1", "10.100.0.2", 1, 1), 4242)
        w.write(TS, f, len(f))
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "vxlan.vni",
                          "-e", "icmp.seq", "-e", "eth.src"], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    vni, seq, macs = out.stdout.strip().split("\t")
    assert (vni, seq) == ("4242", "1") and H1 in macs
