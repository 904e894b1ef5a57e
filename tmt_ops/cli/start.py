"""start (tmt-ops start, docker-restart.py start): start what does not run, and what it needs that does not run, in
dependency waves; what runs is left as it is (supervisorctl start, pm2 start; as docker compose up SERVICE, the
services it depends on come up with it, --no-deps leaves them)."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import operations
from ..console import Printer
from .common import (CHANGE_EXITS, add_change_arguments, add_common_arguments, add_mode_argument, add_selection,
                     change, check_selection, deployment_from, for_operation, options_of, parser_for, render, run)


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("start", "Start the TMT services that do not run (and the infrastructure they need) in "
                                 "dependency waves; touch nothing that runs.", CHANGE_EXITS)
    add_mode_argument(parser, "how the services run")
    add_change_arguments(parser, stops=False)
    add_selection(parser, "start", needs=True)
    add_common_arguments(parser)
    return parser


def act(args: argparse.Namespace, printer: Printer, among: tuple[str, ...] | None = None, **options) -> int:
    check_selection(args)
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer, among, **options)
    services = operations.select(deployment, args.only, with_dependents=False, with_infra=args.with_infra)
    opts, needs = options_of(args), not args.no_deps
    if args.dry_run:
        return render(printer, operations.start(deployment, services, opts, printer, needs=needs))
    return change(printer, "start", deployment, services, interrupts,
                  lambda: operations.start(deployment, services, opts, printer, interrupts, needs=needs))


def main(argv: Sequence[str] | None = None) -> int:
    return run(lambda a, printer: act(_parser().parse_args(a), printer), argv)
