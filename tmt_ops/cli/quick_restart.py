"""quick-restart.py [native|docker|swarm|auto] (tmt-quick-restart, tmt-ops quick-restart): restart in the mode that
runs now, always validating health: the restart command with the spec's positional mode and sensible defaults (its
selection and stop flags as restart's)."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import modes
from ..console import Printer
from ..errors import UsageError
from . import restart
from .common import CHANGE_EXITS, add_change_arguments, add_common_arguments, add_selection, parser_for, run


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("quick-restart", "Restart the TMT trading system with sensible defaults: the mode that runs "
                                         "now (else the registry's default), every service (or those --only names), "
                                         "health always validated.",
                        CHANGE_EXITS)
    words = ", ".join(modes.modes())
    parser.add_argument("mode", nargs="?", choices=(*modes.modes(), "auto"),
                        help=f"{words} or auto (default: auto, the mode that runs now)")
    parser.add_argument("--mode", dest="mode_flag", choices=(*modes.modes(), "auto"), help="the same, as a flag")
    add_change_arguments(parser, starts=False)  # --dry-run, --force, -t/--timeout: health is always validated
    add_selection(parser, "restart")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.mode and args.mode_flag and args.mode != args.mode_flag:
        raise UsageError(f"quick-restart: mode {args.mode} and --mode {args.mode_flag} contradict each other")
    args.mode = args.mode or args.mode_flag or "auto"
    return restart.act(argparse.Namespace(**vars(args), skip_health_check=False, no_build=False), printer)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
