"""Runs INSIDE the ExaBGP process: EVPN origination and a fast raw channel for evpnd.

Started by the speaker as `python -m evpnd.bgp.exabgp.extension server <exabgp.conf>`: it patches
ExaBGP 5.0.15 (pinned: this uses its internals, all of it kept in this one module), registers
the commands below, then runs ExaBGP's own main.

Commands (one line each, written by evpnd through the relay to ExaBGP's process API):
  announce evpn ... / withdraw evpn ...     one route (grammar: evpnd.bgp.exabgp.commands); answered
                                            with ExaBGP's `done`/`error` when acks are on
  evpnd routes TICKET PEERS ; GROUPS        many routes as packed hex (evpnd.bgp.batch): the
                                            speaker's fast path
  evpnd batch TICKET PEERS ; CMD ; CMD ...  many announce/withdraw evpn commands at once
  evpnd clear TICKET PEERS                  forget the Adj-RIB-Out of PEERS (a re-added peer)
  evpnd eor TICKET PEERS                    queue End-of-RIB l2vpn evpn (manual-eor)
  evpnd notify TICKET PEERS CODE SUBCODE    end the sessions with that NOTIFICATION (RFC 7606
                                            session reset: 3 N; maximum prefixes: Cease 6 1)
  evpnd hold TICKET PEERS SECONDS           keep PEERS down: no connection out, every one in
                                            refused (Cease 6/5), for SECONDS (0: until released)
                                            -- a peer over its max_routes, as FRR keeps it idle
  evpnd release TICKET PEERS                end a hold (`evpnctl clear peer`)
  evpnd ping TICKET                         a barrier: answered in order with the rest
  evpnd peers TICKET                        the configured neighbour addresses (after a reload)
PEERS is `*` (every configured neighbour) or peer addresses joined with `+`.
Every `evpnd` command is answered with one line `evpnd-ack TICKET OK ERRORS [first error]`
so evpnd matches replies by ticket, never by position.

Send path: routes are stored as `EvpnRoute` NLRIs built from packed bytes (no per-field
qualifier objects), keyed by the RFC 7432 route key (not label/ESI), and the Adj-RIB-Out packs
every queued EVPN NLRI sharing one attribute set into as few UPDATEs as fit (stock ExaBGP sends
one NLRI per UPDATE for this family and deep-copies each route per neighbour).

Receive path: UPDATEs are not decoded by ExaBGP: each is written to evpnd as
`evpnd-rx PEER ASN4 HEXBODY` and decoded by evpnd.bgp.compact, evpnd's only decoder of routes
(End-of-RIB, too short for this path, still goes through ExaBGP's JSON).
"""

from __future__ import annotations

import gc
import os
import sys
import time

from evpnd.bgp.exabgp import commands

EXABGP_RELEASE = "5.0.15"

_installed: set[str] = set()


def install(raw_receive: bool = True) -> None:
    """Patch ExaBGP and register the commands (idempotent, part by part).

    Only tests that need ExaBGP's own UPDATE decoder in their process pass raw_receive=False:
    evpnd decodes routes from the raw UPDATEs alone.
    """
    from exabgp import version

    if version.release != EXABGP_RELEASE:
        raise RuntimeError(
            f"evpnd's extension needs exabgp {EXABGP_RELEASE}, not {version.release}"
        )
    parts = [
        ("send", _install_send_path),
        ("commands", _install_commands),
        ("helper", _install_helper_exit),
        ("poll", _install_reactor_poll_fix),
        ("accept", _install_accept_without_local_address),
        ("hold", _install_hold_down),
    ]
    if raw_receive:
        parts.append(("raw", _install_raw_receive))
    for name, fn in parts:
        if name not in _installed:
            fn()
            _installed.add(name)


# ----------------------------------------------------------------------------- NLRI + attributes

_route_class = None
_attr_class = None
_update_class = None
_ip_cache: dict = {}
_attr_cache: dict = {}
_NO_ATTRIBUTES = None
_ANNOUNCE = _WITHDRAW = None
_Change = None
_IP = None


def _classes():
    """Define the ExaBGP subclasses lazily (importing exabgp is only done inside ExaBGP)."""
    global _route_class, _attr_class, _update_class, _NO_ATTRIBUTES
    global _ANNOUNCE, _WITHDRAW, _Change, _IP
    if _route_class is not None:
        return _route_class, _attr_class
    from exabgp.bgp.message import Action, Update
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.bgp.message.update.attribute.attribute import Attribute
    from exabgp.bgp.message.update.nlri.evpn.nlri import EVPN
    from exabgp.protocol.family import AFI, SAFI, Family
    from exabgp.protocol.ip import IP
    from exabgp.rib.change import Change

    _ANNOUNCE, _WITHDRAW, _Change, _IP = Action.ANNOUNCE, Action.WITHDRAW, Change, IP

    family = Family(AFI.l2vpn, SAFI.evpn)
    family_index = family.index()

    class EvpnRoute(EVPN):
        """An EVPN NLRI from its packed route data; identity = RFC 7432 route key."""

        def __init__(self, code: int, data: bytes, key: bytes, nexthop, action) -> None:
            self.afi = family.afi
            self.safi = family.safi
            self.action = action
            self.addpath = None
            self.nexthop = nexthop
            self.CODE = code
            self._packed = data
            self._wire = bytes((code, len(data))) + data
            self._index = family_index + key

        def family(self):
            return family

        def index(self):
            return self._index

        def pack_nlri(self, negotiated=None):
            return self._wire

        def pack(self, negotiated=None):
            return self._wire

        def __hash__(self):
            return hash(self._index)

        def __eq__(self, other):
            return getattr(other, "_index", None) == self._index

        def __ne__(self, other):
            return not self.__eq__(other)

        def __lt__(self, other):
            return self._index < other.index()

        def json(self, compact=None):
            return f'{{ "code": {self.CODE}, "raw": "{self._wire.hex()}" }}'

    class PackedAttribute(Attribute):
        """A path attribute evpnd packed itself (flags, type, length, value)."""

        GENERIC = True

        def __init__(self, code: int, packed: bytes) -> None:
            self.ID = code
            self.FLAG = packed[0]
            self._wire = packed

        def pack(self, negotiated=None):
            return self._wire

        def __str__(self):
            return "0x" + self._wire.hex()

        def __repr__(self):
            return str(self)

    evpn_family = (AFI.l2vpn, SAFI.evpn)
    mp_family = b"\x00\x19\x46"  # AFI 25, SAFI 70

    class EvpnUpdate(Update):
        """EVPN NLRIs sharing one attribute set, packed into as few UPDATEs as fit.

        RFC 7606 5.1: MP_UNREACH and MP_REACH go in separate messages, withdrawals first;
        a withdraw-only UPDATE carries no other attribute (RFC 4760 section 4).
        """

        def messages(self, negotiated, include_withdraw=True):
            if evpn_family not in negotiated.families:
                return
            withdrawn: list[bytes] = []
            by_nexthop: dict[bytes, list[bytes]] = {}
            for nlri in self.nlris:
                if nlri.action == _ANNOUNCE:
                    nexthop = nlri.nexthop.ton(negotiated, nlri.afi)
                    by_nexthop.setdefault(nexthop, []).append(nlri.pack_nlri())
                elif include_withdraw:
                    withdrawn.append(nlri.pack_nlri())
            limit = negotiated.msg_size - 19 - 4
            if withdrawn:
                yield from self._chunks(b"", 15, mp_family, withdrawn, limit)
            if by_nexthop:
                attr = self.attributes.pack(negotiated)
                for nexthop, nlris in by_nexthop.items():
                    head = mp_family + bytes((len(nexthop),)) + nexthop + b"\x00"
                    yield from self._chunks(attr, 14, head, nlris, limit)

        def _chunks(self, attr, code, head, nlris, limit):
            budget = limit - len(attr) - 4 - len(head)
            chunk: list[bytes] = []
            size = 0
            for nlri in nlris:
                if size + len(nlri) > budget and chunk:
                    yield self._build(attr, code, head, chunk)
                    chunk, size = [], 0
                chunk.append(nlri)
                size += len(nlri)
            if chunk:
                yield self._build(attr, code, head, chunk)

        def _build(self, attr, code, head, chunk):
            value = head + b"".join(chunk)
            mp = bytes((0x90, code)) + len(value).to_bytes(2, "big") + value
            attrs = attr + mp
            return self._message(b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs)

    _route_class, _attr_class, _update_class = EvpnRoute, PackedAttribute, EvpnUpdate
    _NO_ATTRIBUTES = Attributes()
    return _route_class, _attr_class


def attributes_for(attrs: commands.AttributeSet):
    """One shared ExaBGP Attributes per distinct attribute set (UPDATE packing groups on it)."""
    cached = _attr_cache.get(attrs)
    if cached is not None:
        return cached
    from exabgp.bgp.message.update.attribute import Attributes

    from evpnd.bgp import wire

    _, packed_attribute = _classes()
    out = Attributes()
    out.add(packed_attribute(wire.ORIGIN, attrs.origin))
    if attrs.communities:
        out.add(packed_attribute(wire.EXTENDED_COMMUNITIES, attrs.communities))
    if attrs.pmsi:
        out.add(packed_attribute(wire.PMSI_TUNNEL, attrs.pmsi))
    if len(_attr_cache) > 65536:
        _attr_cache.clear()
    _attr_cache[attrs] = out
    return out


def attributes_from_hex(text: str):
    """`evpnd routes` attribute hex -> one shared ExaBGP Attributes (cached per text)."""
    cached = _attr_cache.get(text)
    if cached is not None:
        return cached
    from exabgp.bgp.message.update.attribute import Attributes

    from evpnd.bgp import wire

    _, packed_attribute = _classes()
    data = bytes.fromhex(text)
    out = Attributes()
    pos = 0
    for flags, code, value in wire.iter_attributes(data):
        if code not in (wire.ORIGIN, wire.EXTENDED_COMMUNITIES, wire.PMSI_TUNNEL):
            raise wire.WireError(f"evpnd does not set path attribute {code}")
        length = len(value) + (4 if flags & wire.FLAG_EXTENDED_LENGTH else 3)
        out.add(packed_attribute(code, data[pos : pos + length]))
        pos += length
    if len(_attr_cache) > 65536:
        _attr_cache.clear()
    _attr_cache[text] = out
    return out


def _nexthop(text: str):
    nexthop = _ip_cache.get(text)
    if nexthop is None:
        from evpnd.bgp import wire

        wire.ip_bytes(text)  # validates
        nexthop = _ip_cache[text] = _IP.create(text)
    return nexthop


def change_for(cmd: commands.RouteCommand):
    """An exabgp Change for a parsed command (shared by every neighbour: never mutated)."""
    route_class, _ = _classes()
    nexthop = _nexthop(cmd.next_hop)
    if cmd.announce:
        nlri = route_class(cmd.code, cmd.data, cmd.key, nexthop, _ANNOUNCE)
        return _Change(nlri, attributes_for(cmd.attrs))
    nlri = route_class(cmd.code, cmd.data, cmd.key, nexthop, _WITHDRAW)
    return _Change(nlri, _NO_ATTRIBUTES)


def apply_groups(ribs: list, body: str) -> tuple[int, list[str]]:
    """`evpnd routes` groups -> changes queued in the given OutgoingRIBs -> (ok, errors)."""
    from evpnd.bgp import batch

    route_class, _ = _classes()
    ok = 0
    errors: list[str] = []
    split = batch.split_nlri
    try:
        groups = list(batch.decode(body))
    except ValueError as exc:
        return 0, [f"bad batch: {exc}"]
    for group in groups:
        try:
            if group.announce:
                attributes, nexthop, action = (
                    attributes_from_hex(group.attributes),
                    _nexthop(group.next_hop),
                    _ANNOUNCE,
                )
            else:
                attributes, nexthop, action = _NO_ATTRIBUTES, _nexthop("0.0.0.0"), _WITHDRAW
        except ValueError as exc:
            errors.append(f"bad group ({exc}): {len(group.nlris)} routes dropped")
            continue
        changes = []
        for text in group.nlris:
            try:
                code, data, key = split(bytes.fromhex(text))
            except ValueError as exc:
                errors.append(f"{exc} in {text[:80]!r}")
                continue
            changes.append(_Change(route_class(code, data, key, nexthop, action), attributes))
        for rib in ribs:
            queue_changes(rib, changes, group.announce, attributes, nexthop)
        ok += len(changes)
    return ok, errors


# ----------------------------------------------------------------------------- Adj-RIB-Out


def queue_change(rib, change) -> None:
    """Queue one change in an OutgoingRIB: like add_to_rib/del_from_rib without the deepcopy.

    A change still pending for the same route is taken out of its attribute bucket first, so
    an older announce can never be sent after a newer one (ExaBGP leaves it in when the
    attributes differ, and buckets are sent in creation order).
    """
    index = change.index()
    if change.nlri.action == _ANNOUNCE and rib.in_cache(change):
        return  # the peer has (or is about to get) exactly this
    family = change.nlri.family().afi_safi()
    previous = rib._new_nlri.get(index)
    if previous is not None:
        bucket = rib._new_attr_af_nlri.get(previous.attributes.index(), {}).get(family)
        if bucket is not None:
            bucket.pop(index, None)
    attr_index = change.attributes.index()
    rib._new_attr_af_nlri.setdefault(attr_index, {}).setdefault(family, {})[index] = change
    rib._new_nlri[index] = change
    rib._new_attribute[attr_index] = change.attributes
    rib.update_cache(change)


def queue_changes(rib, changes: list, announce: bool, attributes, nexthop) -> None:
    """`queue_change` for many EVPN changes sharing one action, attribute set and next hop (an
    `evpnd routes` group): the same effect on the RIB and its cache, with the per-change method
    calls of ExaBGP's Cache and Change (family, index, in_cache, update_cache) done once per
    group. About half the cost of queueing 100k routes one by one."""
    if not changes:
        return
    family = changes[0].nlri.family().afi_safi()
    prefix = _change_prefix(family)
    new_nlri, attr_af = rib._new_nlri, rib._new_attr_af_nlri
    attr_index = attributes.index()
    nh_index = nexthop.index()
    cache = rib.cache
    seen = rib._seen.get(family) if cache else None
    mine = None  # this group's bucket, made when the first change goes into it
    for change in changes:
        index = change._Change__index = prefix + change.nlri._index
        if announce and seen is not None:
            cached = seen.get(index)
            if (cached and cached.attributes.index() == attr_index
                    and cached.nlri.nexthop.index() == nh_index):  # fmt: skip
                continue  # the peer has (or is about to get) exactly this
        previous = new_nlri.get(index)
        if previous is not None:
            bucket = attr_af.get(previous.attributes.index(), {}).get(family)
            if bucket is not None:
                bucket.pop(index, None)
        if mine is None:
            mine = attr_af.setdefault(attr_index, {}).setdefault(family, {})
            rib._new_attribute[attr_index] = attributes
        mine[index] = change
        new_nlri[index] = change
        if cache:
            if announce:
                if seen is None:
                    seen = rib._seen.setdefault(family, {})
                seen[index] = change
            elif seen is not None:
                seen.pop(index, None)


def _change_prefix(family: tuple[int, int]) -> bytes:
    """The family part of ExaBGP's Change.index() (`b'%02x%02x' % afi_safi`)."""
    return b"%02x%02x" % family


def _grouped_updates(self, grouped):
    """OutgoingRIB.updates of exabgp 5.0.15, with l2vpn/evpn packed like ipv4 unicast."""
    from exabgp.bgp.message import Update
    from exabgp.bgp.message.refresh import RouteRefresh
    from exabgp.protocol.family import AFI, SAFI

    packed_families = {
        (AFI.ipv4, SAFI.unicast),
        (AFI.ipv4, SAFI.mcast_vpn),
        (AFI.ipv6, SAFI.mcast_vpn),
    }
    evpn = (AFI.l2vpn, SAFI.evpn)
    attr_af_nlri = self._new_attr_af_nlri
    new_attr = self._new_attribute
    latest_changes = self._new_nlri
    self._new_nlri = {}
    self._new_attr_af_nlri = {}
    self._new_attribute = {}
    refresh_families = self._refresh_families
    refresh_changes = {change.index(): change for change in self._refresh_changes}
    self._refresh_families = set()
    self._refresh_changes = []
    self._prepare_refresh(refresh_changes, latest_changes, attr_af_nlri)
    for afi, safi in refresh_families:
        yield RouteRefresh(afi, safi, RouteRefresh.start)
    for change in refresh_changes.values():
        yield Update([change.nlri], change.attributes)
    for afi, safi in refresh_families:
        yield RouteRefresh(afi, safi, RouteRefresh.end)
    for attr_index, per_family in attr_af_nlri.items():
        for family, changes in per_family.items():
            if not changes:
                continue
            attributes = new_attr[attr_index]
            if family == evpn:  # evpnd's routes: packed by EvpnUpdate.messages
                yield _update_class([change.nlri for change in changes.values()], attributes)
                continue
            if grouped and family in packed_families:
                yield Update([change.nlri for change in changes.values()], attributes)
                continue
            for change in changes.values():
                yield Update([change.nlri], attributes)


def _install_send_path() -> None:
    from exabgp.rib.outgoing import OutgoingRIB

    _classes()
    OutgoingRIB.updates = _grouped_updates


# ----------------------------------------------------------------------------- commands


def _targets(reactor, peers: str) -> list:
    neighbors = list(reactor.configuration.neighbors.values())
    if peers == "*":
        return neighbors
    wanted = set(peers.split("+"))
    return [n for n in neighbors if str(n["peer-address"]) in wanted]


def apply_commands(ribs: list, lines: list[str]) -> tuple[int, list[str]]:
    """Parse and queue route commands into the given OutgoingRIBs -> (ok count, errors)."""
    ok = 0
    errors: list[str] = []
    for line in lines:
        try:
            change = change_for(commands.parse(line))
        except ValueError as exc:
            errors.append(f"{exc} in {line[:100]!r}")
            continue
        for rib in ribs:
            queue_change(rib, change)
        ok += 1
    return ok, errors


def notify_peers(reactor, peers: str, code: int, subcode: int, data: bytes = b"") -> int:
    """End the established sessions of PEERS with a NOTIFICATION (code, subcode) -> how many.

    ExaBGP's API `teardown` can only send a Cease; RFC 7606's session reset is an UPDATE
    Message Error (3). The peer's loop checks its receive timer for every message it reads (or
    the lack of one), and a Notify raised there is sent and the session reset (Peer._run's
    `except Notify`): so the timer of the current session raises it, once."""
    from exabgp.bgp.message import Notify

    wanted = None if peers == "*" else set(peers.split("+"))
    done = 0
    for peer in list(reactor._peers.values()):
        if wanted is not None and str(peer.neighbor["peer-address"]) not in wanted:
            continue
        timer = peer.recv_timer
        if timer is None or peer.proto is None:
            continue

        def check_ka(message=None, ignore=None, _timer=timer):
            _timer.__dict__.pop("check_ka", None)  # once: the class's method is back
            raise Notify(code, subcode, data)

        timer.check_ka = check_ka
        done += 1
    return done


def _ack(reactor, service: str, ticket: str, ok: int, errors: list[str]) -> None:
    first = f" {errors[0]}" if errors else ""
    reactor.processes.write(service, f"evpnd-ack {ticket} {ok} {len(errors)}{first}")


def handle_evpnd(reactor, service: str, command: str) -> None:
    """`evpnd VERB TICKET ...`: runs synchronously (no scheduling) and always answers."""
    from exabgp.protocol.family import AFI, SAFI

    head, _, body = command.partition(" ; ")
    words = head.split()
    verb = words[1] if len(words) > 1 else ""
    ticket = words[2] if len(words) > 2 else "-"
    try:
        if verb == "ping":
            _ack(reactor, service, ticket, 1, [])
        elif verb == "peers":
            addrs = sorted(str(n["peer-address"]) for n in reactor.configuration.neighbors.values())
            reactor.processes.write(service, f"evpnd-ack {ticket} {len(addrs)} 0 {' '.join(addrs)}")
        elif verb == "routes" and len(words) == 4:
            ribs = [n.rib.outgoing for n in _targets(reactor, words[3]) if n.rib is not None]
            ok, errors = apply_groups(ribs, body)
            _ack(reactor, service, ticket, ok, errors)
        elif verb == "batch" and len(words) == 4:
            ribs = [n.rib.outgoing for n in _targets(reactor, words[3]) if n.rib is not None]
            ok, errors = apply_commands(ribs, [c for c in body.split(" ; ") if c.strip()])
            _ack(reactor, service, ticket, ok, errors)
        elif verb == "clear" and len(words) == 4:
            targets = [n for n in _targets(reactor, words[3]) if n.rib is not None]
            for neighbor in targets:
                neighbor.rib.outgoing.clear()
            _ack(reactor, service, ticket, len(targets), [])
        elif verb == "notify" and len(words) == 6 and words[4].isdigit() and words[5].isdigit():
            done = notify_peers(reactor, words[3], int(words[4]), int(words[5]))
            _ack(reactor, service, ticket, done, [])
        elif verb == "hold" and len(words) == 5:
            seconds = float(words[4])
            targets = _targets(reactor, words[3])
            for neighbor in targets:
                until = time.monotonic() + seconds if seconds > 0 else None
                _HELD[str(neighbor["peer-address"])] = until
            _ack(reactor, service, ticket, len(targets), [])
        elif verb == "release" and len(words) == 4:
            targets = _targets(reactor, words[3])
            for neighbor in targets:
                _HELD.pop(str(neighbor["peer-address"]), None)
            _ack(reactor, service, ticket, len(targets), [])
        elif verb == "eor" and len(words) == 4:
            targets = _targets(reactor, words[3])
            for neighbor in targets:
                neighbor.eor.append(_eor_family(AFI, SAFI))
            _ack(reactor, service, ticket, len(targets), [])
        else:
            _ack(reactor, service, ticket, 0, [f"unknown evpnd command {head[:80]!r}"])
    except Exception as exc:  # noqa: BLE001 - a bad command must never stop ExaBGP
        _ack(reactor, service, ticket, 0, [f"internal error: {exc!r}"])


def _eor_family(afi_cls, safi_cls):
    from exabgp.protocol.family import Family

    return Family(afi_cls.l2vpn, safi_cls.evpn)


def _install_commands() -> None:
    from exabgp.reactor.api import API
    from exabgp.reactor.api.command.command import Command

    original = API.process

    def process(self, reactor, service, command):
        # Checked before ExaBGP's dispatcher, which splits and scans the whole line per command.
        if command.startswith("evpnd "):
            handle_evpnd(reactor, service, command)
            return True
        return original(self, reactor, service, command)

    API.process = process

    for action in ("announce evpn", "withdraw evpn"):

        @Command.register(action)
        def single(self, reactor, service, line, use_json):
            from exabgp.reactor.api.command.limit import extract_neighbors, match_neighbors

            try:
                descriptions, command = extract_neighbors(line)
                peers = set(match_neighbors(reactor.peers(service), descriptions))
                ribs = [
                    n.rib.outgoing
                    for name, n in reactor.configuration.neighbors.items()
                    if name in peers and n.rib is not None
                ]
                ok, errors = apply_commands(ribs, [command])
            except Exception as exc:  # noqa: BLE001
                ok, errors = 0, [repr(exc)]
            if errors or not ok:
                reactor.processes.answer_error(service)
            else:
                reactor.processes.answer_done(service)
            return True


# ----------------------------------------------------------------------------- helper exit


def _install_helper_exit() -> None:
    """ExaBGP exits when its API process (the relay to evpnd) ends.

    exabgp.api.terminate only acts when a write to the helper fails while a peer runs; a
    relay that dies quietly (evpnd gone, or killed) would leave ExaBGP running, uncontrolled,
    with every route it had announced. Here any end of the helper shuts ExaBGP down through
    its own SIGTERM handler (sessions closed with a Cease); evpnd's supervisor starts afresh.
    """
    import signal

    from exabgp.reactor.api.processes import Processes

    original = Processes._handle_problem

    def handle_problem(self, process):
        known = process in self._process
        original(self, process)
        if known and not self.respawn_number:
            sys.stderr.write(f"evpnd extension: API process {process} ended: shutting down\n")
            os.kill(os.getpid(), signal.SIGTERM)

    Processes._handle_problem = handle_problem


# ----------------------------------------------------------------------------- raw receive


def _install_raw_receive() -> None:
    from exabgp.bgp.message import Message
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.reactor.api.processes import Processes

    original_unpack = Update.unpack_message.__func__

    class RawUpdate(Update):
        """An UPDATE left undecoded: evpnd decodes the bytes (evpnd.bgp.compact)."""

        def __init__(self, body: bytes, asn4: bool) -> None:
            Update.__init__(self, [], Attributes())
            self.body = body
            self.asn4 = asn4

    def unpack_message(cls, data, direction, negotiated):
        # Short bodies may be End-of-RIB (RFC 4724 2), which ExaBGP reports itself.
        if direction == Direction.IN and len(data) > 11:
            return RawUpdate(bytes(data), bool(negotiated.asn4))
        return original_unpack(cls, data, direction, negotiated)

    Update.unpack_message = classmethod(unpack_message)

    dispatch = Processes._dispatch
    original_update = dispatch[Message.CODE.UPDATE]

    def update(self, peer, direction, message, negotiated, header, body):
        if not isinstance(message, RawUpdate):
            return original_update(self, peer, direction, message, negotiated, header, body)
        line = f"evpnd-rx {peer['peer-address']} {int(message.asn4)} {message.body.hex()}"
        for process in self._notify(peer, f"{direction}-update"):
            self.write(process, line, peer)
        return None

    dispatch[Message.CODE.UPDATE] = update


def _install_reactor_poll_fix() -> None:
    """ExaBGP 5.0.15 leaves the descriptor of a closed connection (e.g. a failed connect
    attempt) registered in its poller. poll() then reports POLLNVAL for it on every loop, and
    the reactor's spin prevention sleeps 10 ms per iteration beyond the first each second: that
    capped UPDATE intake at roughly 100 messages/s (measured: 100k routes took ~4 s instead of
    ~1 s). A closed descriptor is never valid again, so unregister it instead."""
    import select

    from exabgp.reactor.loop import Reactor

    readable = select.POLLIN | select.POLLPRI
    broken = select.POLLHUP | select.POLLERR

    def _wait_for_io(self, sleeptime):
        spin_prevention = False
        try:
            for fd, event in self._poller.poll(sleeptime):
                if event & readable:
                    yield fd
                elif event & select.POLLNVAL:
                    self._poller.unregister(fd)
                elif event & broken:
                    spin_prevention = True
            if spin_prevention:
                self._prevent_spin()
        except KeyboardInterrupt:
            self._termination("^C received", self.Exit.normal)
        except Exception:
            self._prevent_spin()

    Reactor._wait_for_io = _wait_for_io


def _install_accept_without_local_address() -> None:
    """ExaBGP 5.0.15 cannot accept a connection for a neighbour without `local-address`: its
    listener matches an incoming connection with `neighbor['local-address'].address()`, which
    raises on None, and the connection is reset (seen as: a `passive` peer never gets a
    session). ExaBGP's own outgoing path fills the address in from the connected socket
    (Protocol.connect); this does the same for incoming connections, before the listener
    matches them: a passive neighbour with auto-discovered local address (auto_discovery)
    whose peer address is the connection's remote end gets the connection's local address.

    Passive ones only: an active neighbour connects out itself, and accepting the peer's
    connection as well turned every restart into a connection collision (RFC 4271 6.8) that
    delayed the new session (measured: 44 of 112 pings lost across an evpnd restart with
    FRR, against under 30 without)."""
    from exabgp.protocol.ip import IP
    from exabgp.reactor.listener import Listener

    connected = Listener._connected

    def _connected(self):
        reactor = self._reactor
        for incoming in connected(self):
            # Incoming names the ends from the peer's view: .local is the peer's address,
            # .peer is ours (see Listener._connected)
            try:
                remote = IP.create(incoming.local).address()
                for key in reactor.peers():
                    neighbor = reactor.neighbor(key)
                    if (
                        not neighbor.auto_discovery
                        or not neighbor["passive"]
                        or neighbor["peer-address"] is None
                    ):
                        continue
                    start = neighbor["peer-address"].address()
                    if start <= remote < start + neighbor.range_size:
                        neighbor["local-address"] = IP.create(incoming.peer)
            except (ValueError, OSError):
                pass  # the listener itself reports what it cannot match
            yield incoming

    Listener._connected = _connected


# Peers held down (over their max_routes): address -> until (time.monotonic(); None: until
# released). FRR keeps such a peer idle (PEER_STATUS_PREFIX_OVERFLOW: bgp_start makes no
# connection and bgp_accept closes incoming ones) instead of accepting sessions to end them.
_HELD: dict[str, float | None] = {}


def held(address: str) -> bool:
    if address not in _HELD:
        return False
    until = _HELD[address]
    if until is not None and time.monotonic() >= until:
        del _HELD[address]  # its restart time ran out: it may connect again
        return False
    return True


def _install_hold_down() -> None:
    """A held peer starts no new connection (Peer.run waits, as in its reconnect back-off) and
    refuses incoming ones with Cease 6/5 "Connection Rejected" (RFC 4486) before any OPEN."""
    from exabgp.reactor.peer import ACTION, Peer

    run = Peer.run
    handle_connection = Peer.handle_connection

    def _run(self):
        if (
            self.generator is None
            and self.proto is None
            and held(str(self.neighbor["peer-address"]))
        ):
            return ACTION.LATER
        return run(self)

    def _handle_connection(self, connection):
        if held(str(self.neighbor["peer-address"])):
            return connection.notification(6, 5, "held down: maximum number of prefixes reached")
        return handle_connection(self, connection)

    Peer.run = _run
    Peer.handle_connection = _handle_connection


# ----------------------------------------------------------------------------- launcher


def tune_gc() -> None:
    """ExaBGP allocates a few objects per route; with the default thresholds the cyclic GC runs
    every 700 allocations and rescans the whole (growing) table: part of why stock ExaBGP slows
    down as its RIB grows. Routes are freed by reference counting anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def main(argv: list[str] | None = None) -> int:
    install()
    tune_gc()
    from exabgp.application.main import main as exabgp_main

    sys.argv = ["exabgp", *(sys.argv[1:] if argv is None else argv)]
    return exabgp_main() or 0


if __name__ == "__main__":
    sys.exit(main())
