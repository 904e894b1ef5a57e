"""restart (restart-trading-system.py, tmt-restart, tmt-ops restart): stop what runs, start everything in dependency
waves, validate health; a transaction (operations.py)."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import operations
from ..console import Printer
from .common import (CHANGE_EXITS, add_change_arguments, add_common_arguments, add_mode_argument, add_selection,
                     change, check_selection, deployment_from, for_operation, options_of, parser_for, render, run)


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("restart", "Restart the TMT trading system: stop it (dependents first), start it in "
                                   "dependency waves, each service once the services it needs are ready; what fails "
                                   "to start again is rolled back to the way it last ran healthy.", CHANGE_EXITS)
    add_mode_argument(parser, "how the services run")
    add_change_arguments(parser)
    add_selection(parser, "restart")
    add_common_arguments(parser)
    return parser


def act(args: argparse.Namespace, printer: Printer, among: tuple[str, ...] | None = None, **options) -> int:
    """The restart these arguments ask for (options: the deployment's, e.g. docker-restart.py's compose file)."""
    check_selection(args)
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer, among, **options)
    services = operations.select(deployment, args.only, with_dependents=not args.no_deps, with_infra=args.with_infra)
    opts = options_of(args)
    if args.dry_run:
        return render(printer, operations.restart(deployment, services, opts, printer))
    return change(printer, "restart", deployment, services, interrupts,
                  lambda: operations.restart(deployment, services, opts, printer, interrupts))


def main(argv: Sequence[str] | None = None) -> int:
    return run(lambda a, printer: act(_parser().parse_args(a), printer), argv)
