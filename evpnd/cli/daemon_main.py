"""The `evpnd` program: run the daemon, or check a configuration (console script `evpnd`)."""

from __future__ import annotations

import argparse
import sys

from evpnd.cli.version import package_version
from evpnd.config import ConfigError, load_config

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evpnd", description="EVPN/BGP control-plane daemon")
    p.add_argument("-c", "--config", default="/etc/evpnd/evpnd.yaml", help="configuration file")
    p.add_argument("--check-config", action="store_true", help="validate the config and exit")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--version", action="version", version=f"evpnd {package_version()}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        n2, n3 = len(cfg.l2vnis), len(cfg.l3vnis)
        print(f"{args.config}: OK ({len(cfg.peers)} peers, {n2} L2VNIs, {n3} L3VNIs)")
        return 0
    from evpnd.cli.start_checks import start_problems

    problems = start_problems(cfg)  # what only this host can tell (issue 16)
    if problems:
        print(ConfigError(args.config, problems).render(), file=sys.stderr)
        return EXIT_CONFIG
    from evpnd.daemon import run  # imported late: --check-config needs no asyncio or netlink

    return run(cfg, args.config, log_level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
