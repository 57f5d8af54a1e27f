"""Generates docs/troubleshooting.md by running the commands it shows (root; about 2 minutes).

    .venv/bin/python docs/troubleshooting.py [--out FILE]        (make troubleshooting)

Builds a small lab in network namespaces (two evpnd leaves, real ExaBGP sessions, hosts behind
them), produces each common overlay failure on purpose, runs the real `evpnctl` commands an
operator would run and writes their real output into the page, with the explanation around it.
Nothing in the page's command output is written by hand; a test (tests/netns/
test_troubleshooting_doc.py) runs this generator so the page cannot drift from the program.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evpnd.lab.netns import Lab, wait_for  # noqa: E402
from tests.netns.fabric import (  # noqa: E402
    Leaf,
    add_host,
    evpnd_config,
    host_mac,
    start_evpnd,
    two_leaves,
    wait_ping,
)

EVPNCTL = str(Path(sys.executable).with_name("evpnctl"))
OLD_MAC = "02:aa:00:00:09:99"  # the moved IP's previous MAC (section 5)
STALE_VTEP = "10.0.0.99"  # where that MAC used to live


class Doc:
    """The lab and the page being written."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.parts: list[str] = []
        a, b = two_leaves(lab)
        self.a, self.b = a, b
        self.h1 = add_host(lab, a, "h1", "p1", "10.100.0.1", host_mac(1, 1))
        self.h2 = add_host(lab, b, "h2", "p2", "10.100.0.2", host_mac(2, 2))
        self.h5 = add_host(lab, b, "h5", "p5", "10.100.0.5", host_mac(2, 5))
        start_evpnd(lab, a, evpnd_config(a, [b], [
            {"vni": 100, "bridge": "br100", "access_ports": ["p1"]},
            {"vni": 300, "bridge": "br300"},
        ]))  # fmt: skip
        start_evpnd(lab, b, evpnd_config(b, [a], [
            {"vni": 100, "bridge": "br100", "access_ports": ["p2"],
             "svi_address": "10.100.0.254/24"},
            {"vni": 300, "bridge": "br300", "access_ports": ["p5"], "export_rts": ["65002:999"]},
        ]))  # fmt: skip
        wait_ping(self.h1, self.h2, timeout=60)
        wait_for(lambda: b.ns.ping(self.h2.ip, timeout=0.5) and a.node.data(
            "explain", target=self.h2.ip)["vnis"], 30, what="h2's IP known on leaf-a")  # fmt: skip
        self.h5.ns.ping("10.100.0.99", timeout=0.3)
        wait_for(lambda: "received from" in (a.node.data("explain", target=self.h5.mac).get(
            "why_not") or ""), 30, what="h5's route received on leaf-a")  # fmt: skip

    def name(self, leaf: Leaf) -> str:
        return "leaf-a" if leaf is self.a else "leaf-b"

    def text(self, s: str) -> None:
        self.parts.append(s.strip("\n") + "\n")

    def run(self, leaf: Leaf, *args: str, evpnctl: bool = True) -> str:
        """Run a command in the leaf's namespace; put prompt, command and output on the page."""
        cmd = [EVPNCTL, "-s", str(leaf.node.socket), *args] if evpnctl else list(args)
        proc = subprocess.run(leaf.ns.cmd(*cmd), capture_output=True, text=True, timeout=120)
        shown = " ".join(["evpnctl", *args] if evpnctl else args)
        out = (proc.stdout + proc.stderr).rstrip("\n")
        code = f"\n(exit status {proc.returncode})" if proc.returncode else ""
        self.parts.append(f"```\n{self.name(leaf)}# {shown}\n{out}{code}\n```\n")
        return proc.stdout + proc.stderr

    def healthy(self) -> None:
        """Wait until trace from leaf-a to h2 is ok again (every section starts from there)."""

        last: list[str] = [""]

        def ok() -> bool:
            self.h2.ns.ping(self.h1.ip, timeout=0.3)
            cmd = self.a.ns.cmd(EVPNCTL, "-s", str(self.a.node.socket), "trace", self.h2.ip)
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            last[0] = res.stdout + res.stderr
            return res.returncode == 0

        try:
            wait_for(ok, 60, 1, what="a healthy fabric again")
        except TimeoutError:
            raise TimeoutError(f"not healthy again; last trace:\n{last[0]}") from None


def healthy_path(d: Doc) -> None:
    d.text(f"""
## The healthy path first

Two leaves, `leaf-a` (VTEP {d.a.vtep}) and `leaf-b` (VTEP {d.b.vtep}), an eBGP session between
them, VNI 100 on both. Host h1 ({d.h1.ip}, {d.h1.mac}) is behind leaf-a, h2 ({d.h2.ip},
{d.h2.mac}) behind leaf-b, which has an SVI in VNI 100 and so advertises h2's MAC/IP route.
`evpnctl trace` from leaf-a walks the chain evpnd expects (route received, imported, best,
kernel entries), then sends a probe into the bridge from a short-lived port and watches it
leave on the underlay. On a healthy fabric it ends in one `ok` line with the round-trip time:
""")
    d.run(d.a, "trace", d.h2.ip)
    d.text("""
`evpnctl capture` shows the same traffic on the underlay, filtered in the kernel (here VNI 100
and h2's IP), while h1 pings h2:
""")
    cap = d.a.ns.popen([EVPNCTL, "-s", str(d.a.node.socket), "capture", "--vni", "100", "--ip",
                        d.h2.ip, "-c", "4", "--seconds", "20"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert cap.stderr is not None
    cap.stderr.readline()  # "capturing on ..." once the filter is attached
    d.h1.ns.run(["ping", "-c", "2", "-i", "0.2", d.h2.ip], check=False)
    out, err = cap.communicate(timeout=60)
    d.parts.append(f"```\nleaf-a# evpnctl capture --vni 100 --ip {d.h2.ip} -c 4\n{out}{err}```\n")


def rt_mismatch(d: Doc) -> None:
    d.text(f"""
## Route targets that import into no VNI

h5 ({d.h5.mac}) sits behind leaf-b in VNI 300, but leaf-b exports VNI 300 with route target
`65002:999` (a typo in its `export_rts`), which no VNI on leaf-a imports. The route arrives and
is dropped at import: `explain` says so, and `trace` names the route target and what leaf-a's
VNIs do import:
""")
    d.run(d.a, "explain", d.h5.mac)
    d.run(d.a, "trace", d.h5.mac)
    d.text("""
`show routes` lists the received path with its route targets. The fix is on one side or the
other: the exporter's `export_rts`, or an `import_rts` entry on the importing VNI.
""")


def missing_flood_entry(d: Doc) -> None:
    a, b, h2 = d.a, d.b, d.h2
    d.text("""
## A missing flood entry

Broadcast and unknown unicast (ARP requests among them) reach a remote VTEP only through the
all-zero flood entry towards it. evpnd puts a deleted flood entry back at once; here leaf-b's
evpnd is paused (SIGSTOP) while its flood entry towards leaf-a is deleted, as a daemon that
crashed or a person's `bridge fdb del` would leave it. From leaf-a everything looks right and
the probe leaves correctly, but h2's ARP request for the probe address cannot reach leaf-a, so
nothing comes back:
""")
    assert b.node.proc is not None
    os.kill(b.node.proc.pid, signal.SIGSTOP)
    try:
        b.ns.run(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx100", "dst", a.vtep])
        h2.ns.run(["ip", "neigh", "flush", "dev", "eth0"], check=False)
        d.run(a, "trace", h2.ip)
        d.text("On leaf-b the kernel's table shows the gap (no `dst` entry towards leaf-a):")
        d.run(b, "bridge", "fdb", "show", "dev", "vx100", evpnctl=False)
    finally:
        os.kill(b.node.proc.pid, signal.SIGCONT)
    wait_for(lambda: a.vtep in b.flood("vx100"), 15, what="leaf-b repairs its flood entry")
    d.text("""
The same `trace` run on leaf-b stops at the `flood` step and names the missing entry. Once
leaf-b's evpnd runs again it sees the difference between what it wants and what the kernel has
(`show kernel --diff`) and repairs it; afterwards the diff is empty:
""")
    d.run(b, "show", "kernel", "--diff")
    d.healthy()


def hand_made_entry(d: Doc) -> None:
    a, h2 = d.a, d.h2
    d.text(f"""
## No kernel entry: a hand-made entry in the way

evpnd owns only the entries it made (marked `extern_learn`) and never touches anyone else's.
Here a person (or another tool) replaced evpnd's FDB entry for h2's MAC with a static one
towards {STALE_VTEP}. evpnd still wants its own entry, cannot install it, and says so; `trace`
stops at the `kernel` step with the difference:
""")
    a.ns.run(["bridge", "fdb", "replace", h2.mac, "dev", "vx100", "self", "dst", STALE_VTEP,
              "static"])  # fmt: skip
    try:
        wait_for(lambda: a.node.data("show kernel diff")["entries"], 10, what="the conflict")
        d.run(a, "trace", h2.ip)
        d.run(a, "show", "kernel", "--diff")
        d.run(a, "bridge", "fdb", "show", "dev", "vx100", evpnctl=False)
    finally:
        a.ns.run(["bridge", "fdb", "del", h2.mac, "dev", "vx100", "self"], check=False)
    d.text(f"""
The fix: delete the hand-made entry (`bridge fdb del {h2.mac} dev vx100 self`); evpnd installs
its own at once.
""")
    d.healthy()


def mtu_black_hole(d: Doc) -> None:
    a, b, h2 = d.a, d.b, d.h2
    d.text("""
## An MTU black hole

The VXLAN device's MTU is derived from the underlay's (1500 - 50 = 1450). If a link in the
middle has a smaller MTU than the leaves assume (here leaf-b's end of the underlay link is set
to 1400), small packets pass and full-size ones vanish: VXLAN packets leave with DF set and
the ICMP "fragmentation needed" goes to the VTEP, not to the host. `trace --size` sends a
full-size probe with DF set and says what does not fit:
""")
    b.ns.ip("link", "set", "uplink", "mtu", "1400")
    try:
        d.run(a, "trace", h2.ip, "--size", "1450")
        d.text("`capture` on leaf-a shows the full-size packets leaving (1500 bytes on the wire, "
               "DF) and no replies:")  # fmt: skip
        cap = a.ns.popen([EVPNCTL, "-s", str(a.node.socket), "capture", "--vni", "100", "--ip",
                          h2.ip, "--seconds", "4"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert cap.stderr is not None
        cap.stderr.readline()
        d.h1.ns.run(["ping", "-c", "2", "-i", "0.3", "-W", "1", "-s", "1422", "-M", "do",
                     h2.ip], check=False)  # fmt: skip
        out, err = cap.communicate(timeout=60)
        d.parts.append(f"```\nleaf-a# evpnctl capture --vni 100 --ip {h2.ip} --seconds 4\n"
                       f"{out}{err}```\n")  # fmt: skip
    finally:
        b.ns.ip("link", "set", "uplink", "mtu", "1500")
    d.text("""
The fix is the underlay's MTU (every link at least the VXLAN device's MTU + 50), or a smaller
`underlay_mtu` in evpnd's configuration so that the derived MTU fits.
""")
    d.healthy()


def moved_ip(d: Doc) -> None:
    a, b, h2 = d.a, d.b, d.h2
    d.text(f"""
## ARP suppression answering for a moved IP

evpnd turns MAC/IP routes into neighbour entries on the bridge, and the bridge answers ARP
requests from them (ARP suppression) instead of flooding them. When an IP moves to another MAC
and a stale entry survives, the bridge keeps answering with the old MAC. Here an entry left on
leaf-a says {h2.ip} is at {OLD_MAC}, a MAC that used to be behind a VTEP {STALE_VTEP}; evpnd
has {h2.ip} at {h2.mac} behind leaf-b, but it does not overwrite an entry it did not make.
`trace` sees the probe leave for the wrong VTEP and says which answer sent it there:
""")
    setup = [
        ["bridge", "fdb", "add", OLD_MAC, "dev", "vx100", "master", "static"],
        ["bridge", "fdb", "add", OLD_MAC, "dev", "vx100", "self", "dst", STALE_VTEP, "static"],
        ["ip", "route", "add", f"{STALE_VTEP}/32", "via", b.vtep],
        # made by hand: protocol static (an entry evpnd made keeps evpnd's protocol when a
        # person only edits it, and evpnd puts its own value back)
        [
            "ip",
            "neigh",
            "replace",
            h2.ip,
            "lladdr",
            OLD_MAC,
            "dev",
            "br100",
            "nud",
            "permanent",
            "protocol",
            "static",
        ],  # fmt: skip
    ]
    try:
        for cmd in setup:
            a.ns.run(cmd)
        # evpnd has seen the hand-made entry and leaves it alone (the diff calls it a conflict)
        wait_for(lambda: any(e["key"] == h2.ip and e["problem"] == "conflict" for e in
                             a.node.data("show kernel diff")["entries"]), 10,
                 what="the neighbour conflict")  # fmt: skip
        d.run(a, "trace", h2.ip)
        d.text("`show kernel --diff` lists the entry evpnd wants but cannot install, and "
               "`explain` the route it comes from:")  # fmt: skip
        d.run(a, "show", "kernel", "--diff")
        d.run(a, "explain", h2.ip)
    finally:
        a.ns.run(["ip", "neigh", "del", h2.ip, "dev", "br100"], check=False)
        a.ns.run(["ip", "route", "del", f"{STALE_VTEP}/32"], check=False)
        a.ns.run(["bridge", "fdb", "del", OLD_MAC, "dev", "vx100", "self"], check=False)
        a.ns.run(["bridge", "fdb", "del", OLD_MAC, "dev", "vx100", "master"], check=False)
    d.text(f"""
The fix: delete the stale entry (`ip neigh del {h2.ip} dev br100`); evpnd installs its own at
once.
""")
    d.healthy()


def duplicate_mac(d: Doc) -> None:
    a, b, h1, h2 = d.a, d.b, d.h1, d.h2
    d.text(f"""
## A duplicate MAC, frozen

Two hosts with the same MAC on different leaves make it move back and forth: each leaf learns
it, advertises it with a higher mobility sequence number, the other withdraws, and so on.
After 5 moves in 180 seconds (`duplicate_detection`, FRR's `dup-addr-detection` defaults)
evpnd freezes the MAC: it stops advertising and following it, and says so. Here h1 on leaf-a
is given h2's MAC ({h2.mac}) and both speak in turn:
""")

    def frozen() -> bool:
        return any(v.get("duplicate") for leaf in (a, b)
                   for v in leaf.node.data("explain", target=h2.mac)["vnis"])  # fmt: skip

    try:
        for _ in range(20):
            h1.ns.ip("link", "set", "eth0", "address", h2.mac)
            h1.ns.ping("10.100.0.77", timeout=0.3)
            h1.ns.ip("link", "set", "eth0", "address", h1.mac)
            a.ns.run(["bridge", "fdb", "del", h2.mac, "dev", "p1", "master"], check=False)
            h2.ns.ping("10.100.0.78", timeout=0.3)
            if frozen():
                break
        wait_for(frozen, 20, what="h2's MAC frozen")
        for leaf in (a, b):
            d.run(leaf, "explain", h2.mac)
        d.run(a, "show", "macs", "--vni", "100")
        d.text("`trace` shows the frozen state at the `best` step (traffic still follows the "
               "entry that was installed when the MAC froze):")  # fmt: skip
        d.run(a, "trace", h2.mac)
        d.text("Once the duplicate host is gone, `clear dup-addr` thaws the MAC:")
        for leaf in (a, b):
            d.run(leaf, "clear", "dup-addr")
    finally:
        h1.ns.ip("link", "set", "eth0", "address", h1.mac)
        a.ns.run(["bridge", "fdb", "del", h2.mac, "dev", "p1", "master"], check=False)
        for leaf in (a, b):
            leaf.node.data("clear dup-addr")
    d.healthy()


SECTIONS: list[Callable[[Doc], None]] = [
    healthy_path,
    rt_mismatch,
    missing_flood_entry,
    hand_made_entry,
    mtu_black_hole,
    moved_ip,
    duplicate_mac,
]

HEADER = """# Troubleshooting the overlay

<!-- Generated by docs/troubleshooting.py (make troubleshooting): every command below ran
against a two-leaf lab in network namespaces, and its output is pasted as it came. Do not edit
by hand; change the generator and run it again. -->

The common overlay failures, each produced on purpose in a small lab, with what `evpnctl`
shows for it. The order of questions is the order `evpnctl trace` follows: did a route arrive,
did a VNI import it, is it the best path, is it in the kernel, does the probe leave on the
wire towards the right VTEP with the right VNI and size, does anything answer.

Reading the `trace` lines: `ok`/`FAIL`, the step (`route`, `import`, `best`, `kernel`, `flood`,
`wire`, `reply`, `size`), what was found; the last line is `ok: ... rtt` or `failed at STEP:`
with the likely cause. The exit status is 0 for ok, 1 for a failed step.
"""


def generate(out: Path, sections: list[Callable[[Doc], None]] = SECTIONS) -> str:
    lab = Lab(prefix="tsd")
    t0 = time.monotonic()
    d = None
    try:
        d = Doc(lab)
        for section in sections:
            section(d)
            print(f"{section.__name__}: {time.monotonic() - t0:.0f}s", flush=True)
    except BaseException:
        if d is not None:  # what was produced, to see where it went wrong
            out.with_suffix(".partial").write_text("\n".join(d.parts))
        raise
    finally:
        lab.cleanup()
    page = HEADER + "\n" + "\n".join(d.parts)
    out.write_text(page)
    return page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "troubleshooting.md")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("troubleshooting.py: needs root (namespaces, evpnd)", file=sys.stderr)
        return 2
    generate(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
