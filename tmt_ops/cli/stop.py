"""stop-trading-system.py: stop the natively running TMT services, dependents first."""

from __future__ import annotations

from typing import Sequence

from .. import operations
from ..console import Printer
from ..errors import UsageError
from ..lock import run_lock
from .common import ArgumentParser, add_config_argument, run
from .restart import load_for_operation


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="stop-trading-system.py",
                            description="Stop the TMT services this toolkit runs natively, in reverse dependency "
                                        "order; never touches a process that is not one of them without --force.")
    parser.add_argument("--force", action="store_true",
                        help="SIGKILL what outlives its grace period; also stop foreign holders of a service port")
    parser.add_argument("--dry-run", action="store_true", help="print which pids get which signal and why; change nothing")
    parser.add_argument("--only", nargs="+", metavar="SERVICE", help="stop these services and their dependents")
    parser.add_argument("--no-deps", action="store_true", help="with --only: leave their dependents running")
    add_config_argument(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.no_deps and not args.only:
        raise UsageError("--no-deps needs --only SERVICE...")
    interrupts, registry = load_for_operation(args, printer)
    services = operations.select(registry, args.only, not args.no_deps)
    if args.dry_run:
        return operations.stop(registry, printer, services, force=args.force, dry_run=True)
    with run_lock(registry.state_dir, printer.warn):
        return operations.stop(registry, printer, services, force=args.force, dry_run=False, interrupts=interrupts)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
