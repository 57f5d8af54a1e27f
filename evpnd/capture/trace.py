"""`evpnctl trace MAC|IP`: the path evpnd expects, then an active probe, and the first step that
failed with its likely cause.

1. The daemon's view (`explain`): a route received, imported into a VNI by its route target,
   best, with a kernel entry; the expected VTEP and VNI.
2. The kernel: the VXLAN device's FDB entry for the MAC and its flood entry towards the VTEP.
3. The probe: a short-lived veth port on the VNI's bridge (learning off, so evpnd neither learns
   nor advertises it) whose other end sits in a short-lived namespace with a probe address in
   the target's subnet; it pings the target (with `--size`: also a full-size, DF-set probe)
   while a kernel-filtered capture on the underlay checks that the probe left encapsulated for
   the expected VTEP and VNI. Port and namespace are removed whatever happens.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from evpnd.capture import filter as bpf
from evpnd.capture import target

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_CANNOT = 0, 1, 2, 3


@dataclass
class Report:
    target: str
    steps: list[dict] = field(default_factory=list)
    ok: bool = False
    failed_step: str | None = None
    cause: str | None = None
    rtt_ms: float | None = None

    def step(self, name: str, ok: bool, detail: str) -> None:
        self.steps.append({"step": name, "ok": ok, "detail": detail})

    def fail(self, name: str, cause: str) -> Report:
        self.step(name, False, cause)
        self.failed_step, self.cause = name, cause
        return self


class _Stop(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="MAC or IP address of a remote host")
    p.add_argument("--vni", type=int, help="the VNI (when the target is in several)")
    p.add_argument("--size", type=int, help="also a full-size probe of this IP size, DF set")
    p.add_argument("--source", help="probe address with prefix length (default: the target's "
                   "/24, host .253 or .252)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="the steps as JSON")


def _probe_source(dst: str, given: str | None) -> ipaddress.IPv4Interface:
    if given:
        return ipaddress.IPv4Interface(given)
    net = ipaddress.IPv4Interface(f"{dst}/24").network
    host = 253 if not dst.endswith(".253") else 252
    return ipaddress.IPv4Interface(f"{net.network_address + host}/24")


def _run(cmd: list[str], check: bool = True, timeout: float = 30) -> str:
    """A tool's output. A tool that is not installed (ebtables, nft: optional on a host) is
    an error when its answer is needed, nothing to report when it is only a hint."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        if check:
            raise RuntimeError(f"{cmd[0]}: not installed") from None
        return ""
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def _fdb(dev: str) -> list[dict]:
    try:
        return json.loads(_run(["bridge", "-j", "fdb", "show", "dev", dev]) or "[]")
    except (RuntimeError, json.JSONDecodeError):
        return []


def _explain(sock: Path, query: str, vni: int | None) -> dict:
    # the daemon checks the VNI: an unknown one is its one-line error, not "no route"
    return target.ask(sock, "explain", {"target": query} | ({"vni": vni} if vni else {}))


def _not_best(entry: dict, winner: dict) -> str | None:
    """Why a remote route that was imported is not the one used (None: it is)."""
    remote = [c for c in entry.get("candidates", []) if c.get("peer") != "local"]
    if winner.get("peer") == "local" and remote:
        r = remote[0]
        local = entry.get("local") or {}
        where = "the MAC is learned on a local port of this leaf" if local.get("present") \
            else "this leaf advertises it itself"  # fmt: skip
        return (f"route from {r['peer']} (VTEP {r['next_hop']}, seq {r.get('seq', 0)}) imported "
                f"into VNI {entry['vni']} but not best: the local path wins "
                f"({entry.get('reason') or '-'}); {where}")  # fmt: skip
    if entry.get("duplicate") and entry.get("kernel") is None:
        return (f"route from {winner['peer']} imported into VNI {entry['vni']} but not used: "
                f"{entry.get('why_not') or entry.get('note')}")  # fmt: skip
    return None


def daemon_path(sock: Path, report: Report, query: str, vni: int | None) -> dict | None:
    """Step 1: route -> import -> best -> kernel entry, as evpnd sees it."""
    data = _explain(sock, query, vni)
    entries = [v for v in data.get("vnis", []) if vni is None or v["vni"] == vni]
    entries = [v for v in entries if v.get("winner") or v.get("local") or v.get("kernel")]
    if not entries:
        why = (
            data.get("why_not")
            or next((v.get("why_not") for v in data.get("vnis", []) if v.get("why_not")), None)
            or "no route for it"
        )
        if why.startswith("received from"):
            report.fail("import", _rt_cause(sock, query, why))
        elif why.startswith("rejected"):
            report.fail("route", f"route {why}")
        else:
            report.fail("route", f"no route received for {query}")
        return None
    entry = entries[0]
    winner = entry.get("winner")
    if winner is None:
        if entry.get("local") and entry["local"].get("present"):
            report.fail("route", f"{query} is a local host on this leaf (VNI {entry['vni']})")
        else:
            report.fail("best", f"route imported into VNI {entry['vni']} but not best: "
                        f"{entry.get('why_not') or 'no candidate path'}")  # fmt: skip
        return None
    why_not_best = _not_best(entry, winner)
    mac_entry = None
    if why_not_best is None and "." in query and winner.get("mac"):
        # an IP: the MAC it resolves to must be reached through a remote path too
        mac_entries = [v for v in _explain(sock, winner["mac"], entry["vni"]).get("vnis", [])
                       if v.get("winner")]  # fmt: skip
        if mac_entries:
            mac_entry = mac_entries[0]
            why_not_best = _not_best(mac_entry, mac_entry["winner"])
            if why_not_best:
                why_not_best = f"{winner['mac']} ({query}): {why_not_best}"
    if why_not_best:
        report.fail("best", why_not_best)
        return None
    if winner.get("peer") == "local":
        report.fail("route", f"{query} is a local host on this leaf (VNI {entry['vni']})")
        return None
    report.step("route", True, f"route from {winner['peer']} (RD {winner['rd']}, RT "
                f"{', '.join(winner.get('route_targets', [])) or '-'})")  # fmt: skip
    report.step("import", True, f"imported into VNI {entry['vni']}")
    note = f"; {entry['note']}" if entry.get("note") else ""
    vtep = winner["next_hop"]
    mac_winner = mac_entry["winner"] if mac_entry else None
    if mac_winner and mac_winner["peer"] != "local" and mac_winner["next_hop"] != vtep:
        # The IP's MAC/IP path and its MAC's best path differ (a stale MAC/IP route whose MAC
        # moved on with a higher sequence): frames go where the MAC's FDB entry says.
        vtep = mac_winner["next_hop"]
        note += (f"; its MAC {winner['mac']} is reached at VTEP {vtep} "
                 f"({mac_entry.get('reason') or '-'}), where frames go")  # fmt: skip
    report.step("best", True, f"best path, next hop {winner['next_hop']}: "
                f"{entry.get('reason')}{note}")  # fmt: skip
    if entry.get("kernel") is None:
        report.fail("kernel", f"no kernel entry wanted: {entry.get('why_not') or '-'}")
        return None
    return {"vni": entry["vni"], "vtep": vtep, "mac": winner.get("mac"),
            "ip": winner.get("ip")}  # fmt: skip


def _rt_cause(sock: Path, query: str, why: str) -> str:
    routes = target.ask(sock, "show routes", {}).get("routes", [])
    rts = sorted({rt for r in routes if query in (r.get("mac"), r.get("ip"))
                  for rt in r.get("route_targets", [])})  # fmt: skip
    vnis = target.ask(sock, "show vni", {}).get("vnis", [])
    imports = "; ".join(f"{v['vni']}: {', '.join(v['import_rts'])}" for v in vnis)
    peer = why.removeprefix("received from ").split(" ")[0]
    return (f"route received from {peer} but its RT {', '.join(rts) or '?'} imports into no "
            f"VNI (VNIs here import: {imports})")  # fmt: skip


def _diff_line(sock: Path | None, vni: int | None, key: str) -> str:
    """The `show kernel --diff` entry for one key, as a sentence ("" if none or no daemon)."""
    if sock is None:
        return ""
    try:
        entries = target.ask(sock, "show kernel diff", {}).get("entries", [])
    except target.DaemonError:
        return ""
    for e in entries:
        if e.get("key") == key and (vni is None or e.get("vni") == vni):
            return (f"; show kernel --diff: {e['kind']} {e['key']} {e['problem']}, wanted "
                    f"{e.get('wanted') or '-'}, kernel {e.get('kernel') or '-'}"
                    + (" (an entry evpnd did not make is in the way: it leaves it alone)"
                       if e["problem"] == "conflict" else ""))  # fmt: skip
    return ""


def kernel_check(report: Report, vxlan: str, mac: str | None, vtep: str,
                 sock: Path | None = None, vni: int | None = None) -> None:  # fmt: skip
    """Step 2: the FDB entry for the MAC and the flood entry towards its VTEP."""
    fdb = _fdb(vxlan)
    flood = {e.get("dst") for e in fdb if e.get("mac") == "00:00:00:00:00:00"}
    if mac is not None:
        dsts = {e.get("dst") for e in fdb if e.get("mac") == mac and e.get("dst")}
        if vtep not in dsts:
            report.fail("kernel", f"no kernel entry: {mac} dst {vtep} missing on {vxlan} "
                        f"(has {', '.join(sorted(dsts)) or 'none'})"
                        f"{_diff_line(sock, vni, mac)}")  # fmt: skip
            raise _Stop
        report.step("kernel", True, f"{mac} dst {vtep} on {vxlan}")
    if vtep not in flood:
        report.fail("flood", f"flood entry 00:00:00:00:00:00 dst {vtep} missing on {vxlan}: "
                    "ARP requests and unknown unicast cannot reach that VTEP"
                    f"{_diff_line(sock, vni, '00:00:00:00:00:00')}")  # fmt: skip
        raise _Stop
    report.step("flood", True, f"flood entry towards {vtep} on {vxlan}")


def neighbour_note(bridge: str, ip: str, mac: str | None) -> str:
    """What the bridge answers (ARP/ND suppression) for `ip` when that is not `mac`."""
    try:
        entries = json.loads(_run(["ip", "-j", "neigh", "show", ip, "dev", bridge]) or "[]")
    except (RuntimeError, json.JSONDecodeError):
        return ""
    for e in entries:
        lladdr = e.get("lladdr")
        if lladdr and mac and lladdr != mac:
            owner = "evpnd's" if "extern_learn" in e.get("flags", []) else \
                "not evpnd's: a person or another program put it there"  # fmt: skip
            return (f"ARP suppression on {bridge} answers {ip} is-at {lladdr} (a neighbour "
                    f"entry {owner}, state {'/'.join(e.get('state', [])) or '-'}), but evpnd "
                    f"has {ip} at {mac}")  # fmt: skip
    return ""


def _wire_hint(bridge: str, vxlan: str, mac: str | None = None) -> str:
    """Likely reasons a frame did not leave through the VXLAN device."""
    hints = []
    if mac:  # the bridge sends the MAC to another port
        try:
            for e in json.loads(_run(["bridge", "-j", "fdb", "show", "br", bridge]) or "[]"):
                if e.get("mac") == mac and e.get("ifname") not in (None, vxlan, bridge):
                    flags = " ".join([*e.get("flags", []), e.get("state", "")]).strip()
                    hints.append(f"{bridge} forwards {mac} to its port {e['ifname']}"
                                 + (f" ({flags})" if flags else ""))  # fmt: skip
        except (RuntimeError, json.JSONDecodeError):
            pass
    try:
        link = json.loads(_run(["ip", "-j", "link", "show", vxlan]))[0]
        if "UP" not in link.get("flags", []):
            hints.append(f"{vxlan} is down")
        port = json.loads(_run(["bridge", "-j", "link", "show", "dev", vxlan]) or "[]")
        if port and port[0].get("state") not in (None, "forwarding"):
            hints.append(f"{vxlan}'s bridge port is {port[0].get('state')}")
    except (RuntimeError, json.JSONDecodeError, IndexError):
        pass
    tables = _run(["nft", "list", "tables", "bridge"], check=False).split()
    if "table" in tables:
        names = [tables[i + 2] for i, w in enumerate(tables) if w == "table"]
        hints.append(f"nftables bridge tables {', '.join(names)} may drop it")
    if _run(["ebtables", "-L", "FORWARD"], check=False).count("-j DROP"):
        hints.append("an ebtables rule drops frames")
    return f" ({'; '.join(hints)})" if hints else \
        f" (the bridge {bridge} did not forward it to {vxlan})"  # fmt: skip


class Probe:
    """A veth port on `bridge` (learning off) whose peer is in a namespace of its own."""

    def __init__(self, bridge: str, source: ipaddress.IPv4Interface, mtu: int) -> None:
        tag = uuid.uuid4().hex[:6]
        # One MAC per bridge and probe address, the same for every trace: a host still holding
        # the previous probe's ARP entry must answer to this one too.
        digest = hashlib.sha256(f"{bridge} {source}".encode()).digest()
        mac = "02:65:76:" + ":".join(f"{x:02x}" for x in digest[:3])
        # The bridge side's MAC as high as unicast goes: a bridge whose MAC the kernel chose
        # takes its lowest port's, and a changed bridge MAC flushes its neighbours (a person's
        # permanent ones too); the probe must not change what it looks at.
        port_mac = "fe:65:76:" + ":".join(f"{x:02x}" for x in digest[3:6])
        self.ns, self.port, self.peer = f"evtrace-{tag}", f"evtr{tag}", f"evtp{tag}"
        _run(["ip", "netns", "add", self.ns])
        try:
            _run(["ip", "link", "add", self.port, "address", port_mac, "mtu", str(mtu),
                  "type", "veth", "peer",
                  "name", self.peer, "mtu", str(mtu), "netns", self.ns])  # fmt: skip
            _run(["ip", "link", "set", self.port, "master", bridge])
            _run(["bridge", "link", "set", "dev", self.port, "learning", "off"])
            _run(["ip", "link", "set", self.port, "up"])
            ns = ["ip", "-n", self.ns]
            _run([*ns, "link", "set", self.peer, "address", mac])
            _run([*ns, "addr", "add", str(source), "dev", self.peer])
            _run([*ns, "link", "set", self.peer, "up"])
            _run([*ns, "link", "set", "lo", "up"])
        except Exception:
            self.remove()
            raise

    def ping(self, dst: str, count: int, size: int | None = None) -> tuple[int, float | None]:
        cmd = ["ip", "netns", "exec", self.ns, "ping", "-n", "-c", str(count), "-i", "0.2",
               "-W", "1"]  # fmt: skip
        if size:
            cmd += ["-s", str(size - 28), "-M", "do"]
        out = _run([*cmd, dst], check=False, timeout=count * 2 + 10)
        rtts = [float(m) for m in re.findall(r"time=([\d.]+)", out)]
        return len(rtts), (min(rtts) if rtts else None)

    def remove(self) -> None:
        _run(["ip", "link", "del", self.port], check=False)
        _run(["ip", "netns", "del", self.ns], check=False)


def probe(report: Report, sock: Path, path: dict, dst: str, args) -> None:
    """Step 3: the probe, and a capture of it on the underlay."""
    from evpnd.capture import live
    from evpnd.capture.decode import decode

    vni = target.ask(sock, "show vni", {"vni": path["vni"]})["vnis"][0]
    local = target.local_vtep(sock)
    iface = target.interface_of(local) if local else None
    if not iface:
        raise _Stop(report.fail("probe", "cannot find the underlay interface of the local VTEP"))
    mtu = int(Path(f"/sys/class/net/{vni['vxlan_device']}/mtu").read_text())
    expression = bpf.build(bpf.Spec(vni=path["vni"], family=4))
    cap = live.Capture(iface, expression)
    seen: list = []
    stop = threading.Event()

    def collect(ts, data, length):
        pkt = decode(ts, data, length, cap.linktype)
        if pkt is not None:
            seen.append(pkt)

    thread = threading.Thread(target=cap.run, args=(collect,), kwargs={"stop": stop.is_set})
    thread.start()
    pr = Probe(vni["bridge"], _probe_source(dst, args.source), mtu)
    try:
        got, rtt = pr.ping(dst, 3)
        big = pr.ping(dst, 3, args.size) if args.size and got else None
    finally:
        time.sleep(0.2)
        stop.set()
        thread.join()
        cap.close()
        pr.remove()
    out = [p for p in seen if p.outer_src == local]
    # Where the probe's echo requests went; only without any, where its ARP requests went (a
    # request is flooded to every VTEP, so it says nothing about where the probe goes next).
    towards = sorted({p.outer_dst for p in out if p.inner.dst == dst and p.inner.proto != "ARP"}
                     or {p.outer_dst for p in out if p.inner.dst == dst})  # fmt: skip
    if not out or not towards:
        hint = _wire_hint(vni["bridge"], vni["vxlan_device"], path.get("mac"))
        raise _Stop(report.fail("wire", f"probe not seen on the wire: nothing left {iface} in "
                                f"VNI {path['vni']} for {dst}{hint}"))  # fmt: skip
    if path["vtep"] not in towards:
        note = neighbour_note(vni["bridge"], dst, path.get("mac"))
        raise _Stop(
            report.fail(
                "wire",
                f"probe left towards {', '.join(towards)}, expected "
                f"VTEP {path['vtep']}" + (f": {note}" if note else ""),
            )
        )
    report.step("wire", True, f"probe left {iface} encapsulated for {path['vtep']} in VNI "
                f"{path['vni']}")  # fmt: skip
    if not got:
        raise _Stop(report.fail("reply", f"no reply from {dst} (the remote side: the probe "
                                f"reached VTEP {path['vtep']}; check the host and the remote "
                                "leaf)"))  # fmt: skip
    report.rtt_ms = rtt
    report.step("reply", True, f"{got}/3 replies, rtt {rtt:.3f} ms")
    if big is not None:
        if not big[0]:
            frame = args.size + 14
            raise _Stop(report.fail("size", f"full-size probe dropped (MTU): {args.size}-byte "
                                    f"packets with DF; {vni['vxlan_device']} MTU {mtu}, a "
                                    f"{frame}-byte frame needs {frame + 36}-byte underlay "
                                    "packets"))  # fmt: skip
        report.step("size", True, f"{args.size}-byte DF probe passed")


def run(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    from evpnd.capture import live

    report = Report(args.target)
    sock = Path(getattr(args, "socket", None) or target.default_socket())
    try:
        query = str(bpf.parse_ip(args.target)) if ":" not in args.target or \
            args.target.count(":") != 5 else args.target.lower()  # fmt: skip
    except bpf.FilterError:
        print(f"evpnctl: trace: not a MAC or IP address: {args.target!r}", file=sys.stderr)
        return EXIT_USAGE
    if not live.has_net_raw():
        print("evpnctl: trace: needs CAP_NET_RAW (capture) and CAP_NET_ADMIN (probe port)",
              file=sys.stderr)  # fmt: skip
        return EXIT_CANNOT
    try:
        path = daemon_path(sock, report, query, args.vni)
        if path is not None:
            vni = target.ask(sock, "show vni", {"vni": path["vni"]})["vnis"][0]
            kernel_check(report, vni["vxlan_device"], path.get("mac"), path["vtep"], sock,
                         path["vni"])  # fmt: skip
            dst = path.get("ip") if "." not in query else query
            if not dst and path.get("mac"):  # a MAC-only route: the IPs evpnd knows for it
                macs = target.ask(sock, "show macs", {"vni": path["vni"]}).get("macs", [])
                dst = next((ip for m in macs if m.get("mac") == path["mac"]
                            for ip in m.get("ips", []) if "." in ip), None)  # fmt: skip
            if not dst or ":" in dst:
                report.fail("probe", f"no IPv4 address known for {query}: trace its IP")
            else:
                probe(report, sock, path, dst, args)
                report.ok = True
    except _Stop:
        pass
    except target.DaemonError as exc:
        print(f"evpnctl: trace: {exc}", file=sys.stderr)
        return EXIT_CANNOT if exc.unreachable else EXIT_FAIL
    if args.json:
        out.write(orjson.dumps(report.__dict__).decode() + "\n")
    else:
        # the steps that passed; the failed one is the last line (so an unknown target, which
        # fails at the first step, is one line)
        for s in report.steps:
            if s["ok"]:
                out.write(f"ok   {s['step']:7} {s['detail']}\n")
        if report.ok:
            out.write(f"ok: {args.target} reached, rtt {report.rtt_ms:.3f} ms\n")
        else:
            out.write(f"failed at {report.failed_step}: {report.cause}\n")
    out.flush()
    return EXIT_OK if report.ok else EXIT_FAIL
