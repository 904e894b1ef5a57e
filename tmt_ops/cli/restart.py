"""restart-trading-system.py: stop what runs, start everything in dependency waves, validate health."""

from __future__ import annotations

from typing import Sequence

from .. import operations
from ..console import Printer
from ..errors import UsageError
from .common import (ArgumentParser, add_common_arguments, add_mode_argument, change, deployment_from, for_operation,
                     render, run)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="restart-trading-system.py",
                            description="Restart the TMT trading system: stop it (dependents first), start it in "
                                        "dependency waves, each service once the services it needs are ready.")
    add_mode_argument(parser, "how the services run")
    parser.add_argument("--force", action="store_true",
                        help="SIGKILL what outlives its grace period; also stop foreign holders of a service port")
    parser.add_argument("--skip-health-check", action="store_true", help="no final health validation (faster)")
    parser.add_argument("--no-build", action="store_true",
                        help="run what is built now: no registry build step, no image build")
    parser.add_argument("--only", nargs="+", metavar="SERVICE",
                        help="restart these services (registry or compose names) and, in order, their dependents")
    parser.add_argument("--no-deps", action="store_true", help="with --only: restart only the named services")
    parser.add_argument("--with-infra", action="store_true",
                        help="also restart the infrastructure the deployment runs (e.g. its PostgreSQL container)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (what stops how, what starts in which wave) and change nothing")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.no_deps and not args.only:
        raise UsageError("--no-deps needs --only SERVICE...")
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer)
    services = operations.select(deployment, args.only, with_dependents=not args.no_deps, with_infra=args.with_infra)
    options = operations.Options(force=args.force, skip_health_check=args.skip_health_check, dry_run=args.dry_run,
                                 build=not args.no_build)
    if args.dry_run:
        return render(printer, operations.restart(deployment, services, options, printer))
    return change(printer, "restart", deployment, services, interrupts,
                  lambda: operations.restart(deployment, services, options, printer, interrupts))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
