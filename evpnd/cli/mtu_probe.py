"""`evpnctl mtu --probe`: is the underlay path towards each remote as wide as the overlay MTU
assumes? For every remote VTEP and static-tunnel remote, a DF-set probe of the full
encapsulated size (the overlay MTU plus the encapsulation's overhead: what a full-size overlay
frame becomes on the wire); when it fails, a binary search for the largest size that passes.
A path that carries less than the full size is a black hole for full-size frames: reported
with the size that passes.

Runs in the operator's process (like `evpnctl trace`), with iputils' ping: the daemon is never
asked to send packets.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import asdict, dataclass

ICMP_HEADERS = {4: 20 + 8, 6: 40 + 8}  # IP + ICMP echo: ping's -s is the payload
MINIMUM = {4: 68, 6: 1280}  # the smallest MTU each family must carry (RFC 791, RFC 8200)


@dataclass
class ProbeResult:
    remote: str
    devices: list[str]
    source: str | None
    size: int  # the full encapsulated size probed (an IP packet on the underlay, DF set)
    passed: bool
    path_mtu: int | None  # the largest size that passed (None: not even the smallest)
    black_hole: bool  # full-size frames are lost on this path
    no_route: bool = False  # a static tunnel's remote the daemon found no route to: not probed

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ping(remote: str, size: int, source: str | None = None, timeout: float = 1.0) -> bool:
    """One DF-set echo of an IP packet of `size` bytes (two tries: one lost probe is no
    black hole)."""
    family = ipaddress.ip_address(remote).version
    payload = size - ICMP_HEADERS[family]
    cmd = ["ping", f"-{family}", "-n", "-q", "-M", "do", "-c", "2", "-i", "0.2",
           "-W", str(timeout), "-s", str(payload)]  # fmt: skip
    if source:
        cmd += ["-I", source]
    res = subprocess.run([*cmd, remote], capture_output=True, text=True, check=False)
    return res.returncode == 0


def search(remote: str, size: int, source: str | None) -> int | None:
    """The largest size in [minimum, size) that passes, or None."""
    family = ipaddress.ip_address(remote).version
    low, high = MINIMUM[family], size - 1
    if not ping(remote, low, source):
        return None
    while low < high:  # invariant: low passes
        mid = (low + high + 1) // 2
        if ping(remote, mid, source):
            low = mid
        else:
            high = mid - 1
    return low


def probe(targets: dict[str, tuple[int, list[str], str | None]]) -> list[ProbeResult]:
    """targets: remote -> (full encapsulated size, devices that use it, source address)."""
    if shutil.which("ping") is None:
        raise RuntimeError("ping (iputils-ping) is not installed")
    out = []
    for remote, (size, devices, source) in sorted(targets.items()):
        if ping(remote, size, source):
            out.append(ProbeResult(remote, devices, source, size, True, size, False))
            continue
        found = search(remote, size, source)
        out.append(ProbeResult(remote, devices, source, size, False, found, True))
    return out


def no_route(row: dict) -> bool:
    """A static tunnel (`show mtu` row) whose remote has no route in the underlay."""
    unreachable = str(row.get("status", "")).startswith("remote unreachable")
    return bool(row.get("remote")) and row.get("underlay_interface") is None and unreachable


def unreachable_from(mtu_reply: dict) -> list[ProbeResult]:
    """The static tunnels' remotes without a route: reported as such, not probed (every probe
    would fail at once and read as a black hole)."""
    return [
        ProbeResult(row["remote"], [row["device"]], row.get("local"),
                    row["overlay_mtu"] + row["overhead"]["total"], False, None, False, True)
        for row in mtu_reply.get("devices", [])
        if no_route(row) and row.get("overlay_mtu") is not None and row.get("overhead")
    ]  # fmt: skip


def targets_from(mtu_reply: dict, vni_reply: dict) -> dict:
    """What to probe, from `show mtu` and `show vni`: each static tunnel's remote at its
    device's full size; each remote VTEP at the largest full size of the VNIs that reach it."""
    by_device = {d["device"]: d for d in mtu_reply.get("devices", [])}
    out: dict[str, tuple[int, list[str], str | None]] = {}

    def add(remote: str, row: dict, source: str | None) -> None:
        if row.get("overlay_mtu") is None or not row.get("overhead"):
            return
        size = row["overlay_mtu"] + row["overhead"]["total"]
        old = out.get(remote)
        devices = sorted({*(old[1] if old else []), row["device"]})
        out[remote] = (max(size, old[0] if old else 0), devices, source)

    for row in by_device.values():
        if row.get("remote") and not no_route(row):
            add(row["remote"], row, row.get("local"))
    for vni in vni_reply.get("vnis", []):
        row = by_device.get(vni.get("vxlan_device"))
        if row is None:
            continue
        for remote in vni.get("remote_vteps", []):
            add(remote, row, row.get("local"))
    return out
