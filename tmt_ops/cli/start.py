"""start (tmt-ops start, docker-restart.py start): start what does not run, and what it needs that does not run, in
dependency waves; what runs is left as it is (supervisorctl start, pm2 start; as docker compose up SERVICE, the
services it depends on come up with it, --no-deps leaves them)."""

from __future__ import annotations

import argparse
import functools
from typing import Sequence

from .. import operations
from ..console import Printer
from .common import (CHANGE_EXITS, act_on, add_change_arguments, add_common_arguments, add_mode_argument, add_selection,
                     parser_for, run)


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("start", "Start the TMT services that do not run (and what they need that does not run) in "
                                 "dependency waves; touch nothing that runs.", CHANGE_EXITS)
    add_mode_argument(parser, "how the services run")
    add_change_arguments(parser, stops=False)
    add_selection(parser, "start", needs=True)
    add_common_arguments(parser)
    return parser


def act(args: argparse.Namespace, printer: Printer, among: tuple[str, ...] | None = None, **options) -> int:
    """What the selection needs comes up with it, unless --no-deps; never the dependents of what starts."""
    return act_on(args, printer, "start", functools.partial(operations.start, needs=not args.no_deps),
                  with_dependents=False, among=among, **options)


def main(argv: Sequence[str] | None = None) -> int:
    return run(lambda a, printer: act(_parser().parse_args(a), printer), argv)
