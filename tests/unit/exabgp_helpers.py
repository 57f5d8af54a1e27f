"""Build ExaBGP sessions and UPDATE bytes offline, for the extension's wire tests."""

from __future__ import annotations

from evpnd.bgp import batch
from evpnd.bgp.exabgp import extension
from evpnd.routes.evpn import Path


def negotiated_and_neighbor(asn4: bool = True, local_as: int = 65001, peer_as: int = 65002):
    """An ExaBGP Negotiated for an l2vpn/evpn session (eBGP unless the ASNs are equal)."""
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.open.capability.negotiated import Negotiated
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.environment import getenv
    from exabgp.logger import log
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP

    log.init(getenv())
    extension.install(raw_receive=False)
    neighbor = Neighbor()
    neighbor["peer-address"] = IP.create("10.0.1.2")
    neighbor["local-address"] = IP.create("10.0.1.1")
    neighbor["peer-as"] = ASN(peer_as)
    neighbor["local-as"] = ASN(local_as)
    neighbor["router-id"] = IP.create("192.0.2.1")
    negotiated = Negotiated(neighbor)
    negotiated.local_as = ASN(local_as)
    negotiated.peer_as = ASN(peer_as)
    negotiated.asn4 = asn4
    negotiated.families = [(AFI.l2vpn, SAFI.evpn)]
    return negotiated, neighbor


def outgoing_rib():
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    return OutgoingRIB(True, [(AFI.l2vpn, SAFI.evpn)])


def updates_for(paths: list[Path], negotiated, announce: bool = True, rib=None) -> list[bytes]:
    """The UPDATE messages (with header) ExaBGP sends for these paths via `evpnd routes`."""
    rib = outgoing_rib() if rib is None else rib
    ok, errors = extension.apply_groups([rib], batch.encode([(announce, p) for p in paths]))
    assert not errors, errors
    return [m for u in rib.updates(True) for m in u.messages(negotiated)]


def updates_for_commands(lines: list[str], negotiated, rib=None) -> list[bytes]:
    """The same through the `announce evpn` / `withdraw evpn` text grammar."""
    rib = outgoing_rib() if rib is None else rib
    ok, errors = extension.apply_commands([rib], lines)
    assert not errors, errors
    return [m for u in rib.updates(True) for m in u.messages(negotiated)]
