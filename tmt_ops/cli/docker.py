"""docker-restart.py: the stack under docker compose, or deployed to a Docker Swarm (--mode swarm). restart
(default), start, stop [SERVICE...], status, logs [SERVICE], clean."""

from __future__ import annotations

import sys
from typing import Sequence

from ..bounds import Bound
from ..console import Printer
from ..errors import UsageError
from .common import (ArgumentParser, add_common_arguments, add_mode_argument, change, deployment_from, for_operation,
                     registry_from, render, run, stop_and_remove)

ENGINE_MODES = ("docker", "swarm")  # this script's modes: the container engine's two ways of running the stack

CHANGES = ("restart", "start", "stop")
COMMANDS = (*CHANGES, "status", "logs", "clean")
TAIL = Bound(0, 1_000_000, "lines", integer=True)  # logs --tail


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="docker-restart.py",
                            description="Manage the TMT stack with docker compose (v2, else v1), or as a Docker Swarm "
                                        "stack (--mode swarm).")
    add_common_arguments(parser)
    add_mode_argument(parser, "how the stack runs", ENGINE_MODES)
    parser.add_argument("--compose-file", metavar="PATH", help="compose file (default: the registry's compose_file)")
    parser.add_argument("--project-name", metavar="NAME",
                        help="compose project (default: the registry's compose_project)")
    parser.add_argument("--remove-stack", action="store_true",
                        help="swarm stop: remove the stack too (its services and networks; volumes stay)")
    parser.add_argument("command", nargs="?", default="restart", choices=COMMANDS,
                        help="restart (default), start, stop, status, logs, clean")
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help="restart/start/stop: these services (registry or compose names) and their dependents; "
                             "logs: one service")
    parser.add_argument("--no-deps", action="store_true", help="restart/stop: only the named services")
    parser.add_argument("--with-infra", action="store_true",
                        help="restart/stop: the infrastructure containers too (left running otherwise)")
    parser.add_argument("--dry-run", action="store_true", help="restart/start/stop: print the plan, change nothing")
    parser.add_argument("--force", action="store_true",
                        help="restart/stop: stop a service that does not answer (frozen, hung) all the same")
    parser.add_argument("--json", action="store_true", help="status: JSON on stdout")
    parser.add_argument("--tail", type=TAIL.argument, metavar="N", help="logs: the last N lines of each service")
    parser.add_argument("-f", "--follow", action="store_true", help="logs: keep following")
    parser.add_argument("--yes", "-y", action="store_true", help="clean: delete without asking")
    parser.add_argument("--skip-health-check", action="store_true",
                        help="restart/start: no final health validation")
    parser.add_argument("--no-build", action="store_true", help="restart/start: no image build (run what is built)")
    return parser


def _check(args) -> None:
    def only(flag: str, commands: Sequence[str]) -> None:
        if args.command not in commands:
            raise UsageError(f"docker-restart.py: {flag} goes with {'/'.join(commands)}")
    if args.services:
        only("a service name", (*CHANGES, "logs"))
        if args.command == "logs" and len(args.services) > 1:
            raise UsageError("docker-restart.py: logs takes one service")
    for flag, commands in (("--no-deps", ("restart", "stop")), ("--with-infra", ("restart", "stop")),
                           ("--force", ("restart", "stop")),
                           ("--remove-stack", ("stop",)),
                           ("--dry-run", CHANGES), ("--json", ("status",)), ("--yes", ("clean",)),
                           ("--skip-health-check", ("restart", "start")), ("--no-build", ("restart", "start"))):
        if getattr(args, flag[2:].replace("-", "_")):
            only(flag, commands)
    if args.tail is not None or args.follow:
        only("--tail and --follow", ("logs",))
    if args.no_deps and not args.services:
        raise UsageError("docker-restart.py: --no-deps needs SERVICE...")
    if args.remove_stack and (args.services or args.with_infra):
        raise UsageError("docker-restart.py: --remove-stack stops and removes the whole stack, infrastructure "
                         "included: it takes no SERVICE and no --with-infra")


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_intermixed_args(argv)
    _check(args)
    options = {"compose_file": args.compose_file, "project_name": args.project_name}
    if args.command in ("status", "logs"):  # read only: no signal handling, no lock, no toolkit log
        backend = deployment_from(args.mode, registry_from(args, printer), among=ENGINE_MODES, **options).default
        if args.command == "logs":
            return backend.stream_logs(args.services[0] if args.services else None, args.tail, args.follow,
                                       printer.redact)
        return backend.show_status(Printer(sys.stdout, printer.redact), args.json)
    from .. import operations  # imported here: status must be quick, and changes need them
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer, among=ENGINE_MODES, **options)
    if args.command == "clean":
        from ..clean import clean
        return change(printer, "clean", deployment, operations.select(deployment, None, with_infra=True), interrupts,
                      lambda: clean(deployment, printer, interrupts, yes=args.yes))
    if args.remove_stack:
        return stop_and_remove(deployment, operations.Options(force=args.force, dry_run=args.dry_run), printer,
                               interrupts)
    services = operations.select(deployment, args.services, with_dependents=not args.no_deps,
                                 with_infra=args.with_infra or args.command == "start")
    run_it = {"restart": operations.restart, "start": operations.start, "stop": operations.stop}[args.command]
    opts = operations.Options(force=args.force, skip_health_check=args.skip_health_check, dry_run=args.dry_run,
                              build=not args.no_build)
    if args.dry_run:
        return render(printer, run_it(deployment, services, opts, printer))
    return change(printer, args.command, deployment, services, interrupts,  # one change at a time, on the record
                  lambda: run_it(deployment, services, opts, printer, interrupts))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
