"""stop-trading-system.py: stop the TMT services, dependents first, in whatever way they run."""

from __future__ import annotations

from typing import Sequence

from .. import operations
from ..console import Printer
from ..errors import UsageError
from .common import (ArgumentParser, add_common_arguments, add_mode_argument, change, deployment_from, for_operation,
                     render, run, stop_and_remove)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="stop-trading-system.py",
                            description="Stop the TMT services in reverse dependency order; never touches a process "
                                        "that is not one of them without --force. Infrastructure the deployment "
                                        "runs stays up unless --with-infra.")
    add_mode_argument(parser, "how the services run")
    parser.add_argument("--force", action="store_true",
                        help="SIGKILL what outlives its grace period; also stop foreign holders of a service port")
    parser.add_argument("--dry-run", action="store_true", help="print what gets which signal and why; change nothing")
    parser.add_argument("--only", nargs="+", metavar="SERVICE", help="stop these services and their dependents")
    parser.add_argument("--no-deps", action="store_true", help="with --only: leave their dependents running")
    parser.add_argument("--with-infra", action="store_true",
                        help="also stop the infrastructure the deployment runs (e.g. its PostgreSQL container)")
    parser.add_argument("--remove-stack", action="store_true",
                        help="docker and swarm modes: stop everything, infrastructure too, then remove the stack "
                             "(swarm: its services and networks; compose: the project's networks); volumes stay")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.no_deps and not args.only:
        raise UsageError("--no-deps needs --only SERVICE...")
    if args.remove_stack and (args.only or args.with_infra):
        raise UsageError("--remove-stack stops and removes the whole stack, infrastructure included: it goes "
                         "without --only and --with-infra")
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer)
    options = operations.Options(force=args.force, dry_run=args.dry_run)
    if args.remove_stack:
        return stop_and_remove(deployment, options, printer, interrupts)
    services = operations.select(deployment, args.only, with_dependents=not args.no_deps, with_infra=args.with_infra)
    if args.dry_run:
        return render(printer, operations.stop(deployment, services, options, printer))
    return change(printer, "stop", deployment, services, interrupts,
                  lambda: operations.stop(deployment, services, options, printer, interrupts))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
