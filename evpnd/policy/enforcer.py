"""The asyncio edge of network policy: keeps evpnd's nftables tables equal to the policy.

Level-triggered like the dataplane: every pass reads the core's endpoints (on the event loop,
where the core may be read), compiles the desired Ruleset (only when its inputs changed), dumps
evpnd's two tables, and applies the difference as one transaction, all of it but the endpoint
read in a worker thread. A pass runs when the owner task reports a change (`changed()`),
and a full comparison every PASS_INTERVAL seconds, so a rule or set element deleted by hand
is back within a second. Nothing outside `table bridge evpnd` / `table inet evpnd` is read
or written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from evpnd.policy.compile import Members, compile_ruleset, rule_of, verdict
from evpnd.policy.model import (
    FAMILIES,
    Capabilities,
    Endpoints,
    PolicySpec,
    Problem,
    Ruleset,
)
from evpnd.policy.nft import Counters, Nft, NftError
from evpnd.policy.reconcile import build, diff, keep_elements

# A full pass (dump evpnd's tables, compare, repair) this often: drift repaired within a
# second. Passes on EVPN changes compare with what the last pass left (no dump: at 10,000
# members a dump costs ~50 ms, ~1 s on a loaded 2-CPU machine); a refused transaction falls
# back to a full pass at once.
PASS_INTERVAL = 0.6
SETTLE = 0.02  # after a change: let a burst of events land before one pass


def bridge_ports(bridges: dict[int, str]) -> dict[int, frozenset[str]]:
    """The interfaces enslaved to each L2VNI's bridge (sysfs of this network namespace)."""
    out = {}
    for vni, bridge in bridges.items():
        try:
            out[vni] = frozenset(os.listdir(f"/sys/class/net/{bridge}/brif"))
        except OSError:
            out[vni] = frozenset()
    return out


class PolicyEnforcer:
    def __init__(
        self,
        spec: PolicySpec | None,
        endpoints: Callable[[], Endpoints],
        log: Any,
        hold_time: float = 0.0,
    ):
        self.spec = spec
        # after a start, members are only added for this long (the core relearns first)
        self.hold_until = time.monotonic() + hold_time
        self.endpoints = endpoints
        self.log = log
        self.nft: Nft | None = None
        self.caps = Capabilities()
        self.error: str | None = None  # the binding is missing, the kernel refuses everything
        self.problems: list[Problem] = []
        self.members: dict[str, Members] = {}
        self.counters: Counters = {}
        self.skip: frozenset[str] = frozenset()  # rules the kernel refused, for this spec
        self.passes = self.changes = self.repairs = 0
        self.last_change: dict[str, Any] = {}
        self._desired: Ruleset = {}
        self._inputs: Any = None
        self._kernel: Ruleset | None = None  # evpnd's tables as the last pass left them
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self.nft = Nft()
        except NftError as exc:
            self.error = str(exc)
            if self.spec is not None:
                self.log.error("policy_unavailable", reason=self.error)
            return
        self.caps = await asyncio.to_thread(self.nft.probe)
        if not self.caps.bridge_conntrack and self.spec is not None:
            self.log.warning(
                "policy_no_bridge_conntrack",
                detail="nf_conntrack_bridge missing: bridged rules are stateless",
            )
        await self.run_pass()  # without a policy: removes the tables an earlier one left
        self._ensure_loop()

    def _ensure_loop(self) -> None:
        # Without a policy nothing is polled: daemons that use none pay nothing.
        if self.spec is not None and self.nft is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="policy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def changed(self) -> None:
        """The owner task applied events: EVPN's endpoints may have changed."""
        self._wake.set()

    async def reconfigure(self, spec: PolicySpec | None) -> None:
        """A new policy (SIGHUP): applied at once as one transaction."""
        self.spec = spec
        self.skip = frozenset()
        self._inputs = None
        self._kernel = None
        await self.run_pass()
        self._ensure_loop()

    async def _loop(self) -> None:
        next_full = time.monotonic() + PASS_INTERVAL
        while self.spec is not None:
            full = False
            try:
                wait = max(0.0, next_full - time.monotonic())
                await asyncio.wait_for(self._wake.wait(), wait)
                await asyncio.sleep(SETTLE)
            except TimeoutError:
                full = True
                next_full = time.monotonic() + PASS_INTERVAL
            self._wake.clear()
            try:
                await self.run_pass(full)
            except Exception as exc:  # the policy edge must never take the daemon down
                self.error = str(exc)
                self.log.exception("policy_pass_failed")
        self._task = None

    # -- one pass ------------------------------------------------------------------------------
    async def run_pass(self, full: bool = True) -> None:
        if self.nft is None:
            return
        async with self._lock:
            endpoints = self.endpoints() if self.spec is not None else {}
            ports = bridge_ports(self.spec.bridges) if self.spec is not None else {}
            await asyncio.to_thread(self._pass, endpoints, ports, full)

    def _compile(self, endpoints: Endpoints, ports: dict[int, frozenset[str]]) -> None:
        inputs = (self.spec, endpoints, ports, self.skip)
        if inputs == self._inputs:
            return
        desired, problems, members = compile_ruleset(
            self.spec, endpoints, self.caps, ports, self.skip
        )
        self._desired, self.problems, self.members = desired, problems, members
        self._inputs = inputs

    def _dump(self) -> Ruleset:
        assert self.nft is not None
        kernel, counters = {}, {}
        for family in FAMILIES:
            table, c = self.nft.dump(family)
            if table is not None:
                kernel[family] = table
                counters.update(c)
        self.counters = counters
        return kernel

    def _pass(
        self,
        endpoints: Endpoints,
        ports: dict[int, frozenset[str]],
        full: bool,
        believed: Ruleset | None = None,
    ) -> None:
        assert self.nft is not None
        nft = self.nft
        inputs_before = self._inputs
        self._compile(endpoints, ports)
        if not full and self._kernel is not None and inputs_before == self._inputs:
            return  # nothing changed since the last pass, and no check is due
        kernel = self._dump() if full or self._kernel is None else self._kernel
        self.passes += 1
        desired = self._desired
        if time.monotonic() < self.hold_until:
            desired = keep_elements(desired, kernel)
        cmds = diff(desired, kernel, FAMILIES)
        if not cmds:
            self.error = None
            self._kernel = kernel
            return
        believed = believed or self._kernel
        if full and believed is not None and diff(believed, kernel, FAMILIES):
            self.repairs += 1  # the kernel is not as the last pass left it: someone changed it
        started = time.monotonic()
        err = nft.apply(cmds)
        if err is not None and not full:
            # what we believed the kernel holds is wrong (someone changed it): look
            self.log.debug("policy_fallback_to_full_pass", error=err.splitlines()[0])
            believed, self._kernel = self._kernel, None
            self._pass(endpoints, ports, True, believed)
            return
        if err is not None:
            refused = self._refused()
            if refused - self.skip:
                self.skip = self.skip | refused
                self._compile(endpoints, ports)
                desired = self._desired
                if time.monotonic() < self.hold_until:
                    desired = keep_elements(desired, kernel)
                cmds = diff(desired, kernel, FAMILIES)
                err = nft.apply(cmds)
        self.error = err
        self._kernel = desired if err is None else None
        self.changes += 1
        self.last_change = {
            "at": time.time(),
            "commands": len(cmds),
            "seconds": round(time.monotonic() - started, 4),
            "error": err,
        }
        if err is not None:
            self.log.error("policy_apply_failed", error=err.splitlines()[0])

    def _refused(self) -> frozenset[str]:
        """The kernel rules the kernel will not take, each tried alone in a dry run."""
        assert self.nft is not None
        out = set()
        for table in self._desired.values():
            base = [_without_elements(c) for c in build(table) if "rule" not in c["add"]]
            for chain in table.chains:
                for rule in chain.rules:
                    cmd = {"add": {"rule": {"family": table.family, "table": "evpnd",
                                            "chain": chain.name, "expr": list(rule.expr),
                                            "comment": rule.comment}}}  # fmt: skip
                    if self.nft.apply([*base, cmd], dry_run=True) is not None:
                        out.add(rule.comment)
        return frozenset(out)

    # -- what the API reads --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        spec = self.spec
        rules = []
        sums: dict[str, list[int]] = {}
        for comment, (packets, nbytes) in self.counters.items():
            acc = sums.setdefault(rule_of(comment), [0, 0])
            acc[0] += packets
            acc[1] += nbytes
        if spec is not None:
            for r in spec.rules:
                packets, nbytes = sums.get(r.name, [0, 0])
                rules.append(
                    {
                        "name": r.name,
                        "from": r.src,
                        "to": r.dst,
                        "proto": r.proto,
                        "ports": list(r.ports),
                        "action": r.action,
                        "log": r.log,
                        "packets": packets,
                        "bytes": nbytes,
                    }
                )
        groups = []
        if spec is not None:
            for g in spec.groups:
                m = self.members.get(g.name, Members())
                groups.append(
                    {
                        "name": g.name,
                        "vni": g.vni,
                        "static": m.static,
                        "learned": m.learned,
                        "macs": len(m.macs),
                        "ip4": len(m.ip4),
                        "ip6": len(m.ip6),
                    }
                )
        problems = [p.as_dict() for p in self.problems]
        if self.error:
            problems.append({"where": "kernel", "reason": self.error.splitlines()[0]})
        packets, nbytes = sums.get("default", [0, 0])
        return {
            "enabled": spec is not None,
            "default": spec.default if spec is not None else None,
            "default_packets": packets,
            "default_bytes": nbytes,
            "bridge_conntrack": self.caps.bridge_conntrack,
            "inet_conntrack": self.caps.inet_conntrack,
            "groups": groups,
            "rules": rules,
            "problems": problems,
            "passes": self.passes,
            "changes": self.changes,
            "repairs": self.repairs,
            "last_change": self.last_change or None,
        }

    def verdict(self, src: str, dst: str, proto: str | None, port: int | None) -> dict | None:
        if self.spec is None:
            return None
        return verdict(self.spec, self.members, src, dst, proto, port)


def _without_elements(cmd: dict[str, Any]) -> dict[str, Any]:
    body = cmd["add"]
    if "set" in body:
        return {"add": {"set": {k: v for k, v in body["set"].items() if k != "elem"}}}
    return cmd
