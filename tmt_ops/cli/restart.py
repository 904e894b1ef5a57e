"""restart-trading-system.py: stop what runs, start everything in dependency waves, validate health."""

from __future__ import annotations

from typing import Sequence

from .. import operations
from ..console import Printer
from ..errors import UsageError
from ..interrupts import Interrupts
from ..lock import run_lock
from ..mode import resolve_mode
from ..registry import Registry
from .common import ArgumentParser, add_config_argument, registry_from, run


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="restart-trading-system.py",
                            description="Restart the TMT trading system: stop it (dependents first), start it in "
                                        "dependency waves, each service once the services it needs are ready.")
    parser.add_argument("--mode", choices=("native", "docker", "auto"), default="auto",
                        help="native processes, docker compose, or auto (default: the mode that runs now, "
                             "else the registry's default_mode)")
    parser.add_argument("--force", action="store_true",
                        help="SIGKILL what outlives its grace period; also stop foreign holders of a service port")
    parser.add_argument("--skip-health-check", action="store_true", help="no final health validation (faster)")
    parser.add_argument("--only", nargs="+", metavar="SERVICE",
                        help="restart these services and, in order, their dependents (native mode)")
    parser.add_argument("--no-deps", action="store_true", help="with --only: restart only the named services")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (signals, pids, waves) and change nothing (native mode)")
    add_config_argument(parser)
    return parser


def load_for_operation(args, printer: Printer) -> tuple[Interrupts, Registry]:
    """For a script that changes the system: its signal handling (installed first, so a hang-up or Ctrl-C at
    any moment is handled), the registry named by --config, and the toolkit log."""
    interrupts = Interrupts().install(printer.warn)
    registry = registry_from(args, printer)
    operations.prepare_output(printer, registry)
    return interrupts, registry


def restart_in_mode(registry: Registry, printer: Printer, interrupts: Interrupts, mode: str, *, force: bool,
                    skip_health_check: bool, only: Sequence[str] | None = None, no_deps: bool = False,
                    dry_run: bool = False) -> int:
    """Shared by restart-trading-system.py and quick-restart.py: one run at a time, in the chosen mode."""
    if mode == "docker":
        if only or no_deps or dry_run:
            raise UsageError("--only, --no-deps and --dry-run work in native mode only")
        from .. import compose
        with run_lock(registry.state_dir, printer.warn):
            return compose.restart(registry, printer, interrupts, force=force, skip_health_check=skip_health_check)
    services = operations.select(registry, only, not no_deps)
    if dry_run:
        return operations.restart(registry, printer, services, force=force, skip_health_check=skip_health_check,
                                  dry_run=True)
    with run_lock(registry.state_dir, printer.warn):
        return operations.restart(registry, printer, services, force=force, skip_health_check=skip_health_check,
                                  dry_run=False, interrupts=interrupts)


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.no_deps and not args.only:
        raise UsageError("--no-deps needs --only SERVICE...")
    interrupts, registry = load_for_operation(args, printer)
    mode = resolve_mode(args.mode, registry)
    printer.info(f"mode: {mode}")
    return restart_in_mode(registry, printer, interrupts, mode, force=args.force,
                           skip_health_check=args.skip_health_check, only=args.only, no_deps=args.no_deps,
                           dry_run=args.dry_run)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
