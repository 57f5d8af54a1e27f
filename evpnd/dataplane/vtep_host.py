"""Start-time check of the VTEP against this host (network namespace; pure: the caller reads
the addresses with devices.local_addresses): an IPv6 VTEP must be an address of one of its
interfaces, or the VXLAN device has no source to send from (the kernel
accepts the device and then drops every encapsulated frame: nothing says why).

An IPv4 VTEP that is not local is let through as before: the kernel sends from it regardless,
and setups that add the VTEP address after evpnd starts exist.
"""

from __future__ import annotations

import ipaddress


def vtep_host_problem(vtep: str, have: set[str]) -> str | None:
    """Why this VTEP cannot work on a host holding `have` (canonical spellings, from
    devices.local_addresses()), or None."""
    addr = ipaddress.ip_address(vtep)
    if str(addr) in have:
        return None
    if addr.version == 6:
        v6 = sorted(a for a in have if ":" in a and not a.startswith("fe80") and a != "::1")
        held = f" (this host has {', '.join(v6[:4])})" if v6 else " (this host has no IPv6 address)"
        return f"{addr} is not an address of any interface here{held}"
    return None
