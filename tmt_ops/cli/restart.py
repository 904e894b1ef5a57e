"""restart (restart-trading-system.py, tmt-restart, tmt-ops restart): stop what runs, start everything in dependency
waves, validate health; a transaction (operations.py)."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import operations
from ..console import Printer
from .common import (CHANGE_EXITS, act_on, add_change_arguments, add_common_arguments, add_mode_argument, add_selection,
                     parser_for, run)


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
    return act_on(args, printer, "restart", operations.restart, with_dependents=not args.no_deps, among=among,
                  **options)


def main(argv: Sequence[str] | None = None) -> int:
    return run(lambda a, printer: act(_parser().parse_args(a), printer), argv)
