"""quick-restart.py [native|docker|swarm|auto] (tmt-quick-restart, tmt-ops quick-restart): restart in the mode that
runs now, always validating health: the restart command with the spec's positional mode and sensible defaults."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import modes
from ..console import Printer
from ..errors import UsageError
from . import restart
from .common import CHANGE_EXITS, add_common_arguments, parser_for, run, STOP_GRACE


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("quick-restart", "Restart the TMT trading system with sensible defaults: the mode that runs "
                                         "now (else the registry's default), every service, health always validated.",
                        CHANGE_EXITS)
    words = ", ".join(modes.modes())
    parser.add_argument("mode", nargs="?", choices=(*modes.modes(), "auto"),
                        help=f"{words} or auto (default: auto, the mode that runs now)")
    parser.add_argument("--mode", dest="mode_flag", choices=(*modes.modes(), "auto"), help="the same, as a flag")
    parser.add_argument("--force", action="store_true",
                        help="stop what does not answer (frozen, hung) all the same, SIGKILL what outlives its "
                             "grace; native: also stop an unidentified holder of a service port")
    parser.add_argument("-t", "--timeout", type=STOP_GRACE.argument, metavar="SECONDS", dest="grace",
                        help="each service's stop grace for this run")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.mode and args.mode_flag and args.mode != args.mode_flag:
        raise UsageError(f"quick-restart: mode {args.mode} and --mode {args.mode_flag} contradict each other")
    full = argparse.Namespace(mode=args.mode or args.mode_flag or "auto", force=args.force, grace=args.grace,
                              only=None, no_deps=False, with_infra=False, dry_run=False, skip_health_check=False,
                              no_build=False, config=args.config, quiet=args.quiet, verbose=args.verbose)
    return restart.act(full, printer)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
