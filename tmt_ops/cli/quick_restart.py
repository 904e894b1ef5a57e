"""quick-restart.py [native|docker] [--force]: restart in the mode that runs now, always validating health."""

from __future__ import annotations

from typing import Sequence

from ..console import Printer
from ..mode import resolve_mode
from .common import ArgumentParser, add_config_argument, run
from .restart import load_for_operation, restart_in_mode


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="quick-restart.py",
                            description="Restart the TMT trading system with sensible defaults: the mode that "
                                        "runs now (else the registry's default), health always validated.")
    parser.add_argument("mode", nargs="?", choices=("native", "docker"), help="default: detected")
    parser.add_argument("--force", action="store_true", help="SIGKILL what outlives its grace period; also stop foreign holders of a service port")
    add_config_argument(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    interrupts, registry = load_for_operation(args, printer)
    mode = args.mode or resolve_mode("auto", registry)
    printer.info(f"mode: {mode}" + ("" if args.mode else " (detected)"))
    return restart_in_mode(registry, printer, interrupts, mode, force=args.force, skip_health_check=False)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
