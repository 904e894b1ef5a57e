"""stop (stop-trading-system.py, tmt-stop, tmt-ops stop): stop the TMT services, dependents first, in whatever way
they run."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import operations
from ..console import Printer
from ..errors import UsageError
from .common import (CHANGE_EXITS, act_on, add_change_arguments, add_common_arguments, add_mode_argument, add_selection,
                     check_selection, deployment_from, for_operation, options_of, parser_for, run, stop_and_remove)


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("stop", "Stop the TMT services in reverse dependency order; never touches a process that is "
                                "not one of them without --force, nor what is another deployment's with it. "
                                "Infrastructure the deployment runs stays up unless --with-infra.", CHANGE_EXITS)
    add_mode_argument(parser, "how the services run")
    add_change_arguments(parser, starts=False)
    add_selection(parser, "stop")
    add_remove_stack(parser)
    add_common_arguments(parser)
    return parser


def add_remove_stack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remove-stack", action="store_true",
                        help="docker and swarm modes: stop everything, infrastructure too, then remove the stack "
                             "(swarm: its services and networks; compose: the project's containers and networks); "
                             "volumes stay")


def act(args: argparse.Namespace, printer: Printer, among: tuple[str, ...] | None = None, **options) -> int:
    check_selection(args)
    if args.remove_stack and (args.only or args.with_infra):
        raise UsageError("--remove-stack stops and removes the whole stack, infrastructure included: it goes "
                         "without --only and --with-infra")
    if args.remove_stack:
        interrupts, registry = for_operation(args, printer)
        deployment = deployment_from(args.mode, registry, printer, among, **options)
        return stop_and_remove(deployment, options_of(args), printer, interrupts)
    return act_on(args, printer, "stop", operations.stop, with_dependents=not args.no_deps, among=among, **options)


def main(argv: Sequence[str] | None = None) -> int:
    return run(lambda a, printer: act(_parser().parse_args(a), printer), argv)
