"""The configuration reduced to what the core's hot path looks up, built once per config."""

from __future__ import annotations

from evpnd.config import Config
from evpnd.core.mobility import vtep_rank
from evpnd.core.rib import ImportMap, own_rds


class ConfigView:
    """The configuration reduced to what the hot path looks up."""

    def __init__(self, cfg: Config) -> None:
        self.vtep = str(cfg.vtep)
        self.vtep_rank = vtep_rank(self.vtep)
        self.router_id = str(cfg.router_id)
        self.asn = cfg.asn
        self.own_rds = own_rds(cfg)
        self.imports = ImportMap(cfg)
        self.l2 = {item.vni: item for item in cfg.l2vnis}
        self.l3 = {item.vni: item for item in cfg.l3vnis}
        self.rd = {item.vni: cfg.rd_for(item.vni) for item in cfg.all_vnis()}
        self.export = {item.vni: tuple(cfg.export_rts_for(item.vni)) for item in cfg.all_vnis()}
        self.l3_of = {vni: cfg.l3vni_of(vni) for vni in self.l2}
        self.sticky = {item.vni: frozenset(item.sticky_macs) for item in cfg.l2vnis}
        self.graceful_restart = cfg.exabgp.graceful_restart
