"""docker-restart.py: the stack under docker compose. restart (default), start, stop [SERVICE...], status,
logs [SERVICE], clean."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from .. import operations
from ..console import Printer, write_out
from ..errors import UsageError
from ..lock import run_lock
from .common import ArgumentParser, add_common_arguments, deployment_from, for_operation, registry_from, render, run

CHANGES = ("restart", "start", "stop")
COMMANDS = (*CHANGES, "status", "logs", "clean")


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="docker-restart.py",
                            description="Manage the TMT stack with docker compose (v2, else v1).")
    add_common_arguments(parser)
    parser.add_argument("--compose-file", metavar="PATH", help="compose file (default: the registry's compose_file)")
    parser.add_argument("--project-name", metavar="NAME",
                        help="compose project (default: the registry's compose_project)")
    parser.add_argument("command", nargs="?", default="restart", choices=COMMANDS,
                        help="restart (default), start, stop, status, logs, clean")
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help="restart/start/stop: these services (registry or compose names) and their dependents; "
                             "logs: one service")
    parser.add_argument("--no-deps", action="store_true", help="restart/stop: only the named services")
    parser.add_argument("--with-infra", action="store_true",
                        help="restart/stop: the infrastructure containers too (left running otherwise)")
    parser.add_argument("--dry-run", action="store_true", help="restart/start/stop: print the plan, change nothing")
    parser.add_argument("--json", action="store_true", help="status: JSON on stdout")
    parser.add_argument("--tail", type=int, metavar="N", help="logs: the last N lines of each service")
    parser.add_argument("-f", "--follow", action="store_true", help="logs: keep following")
    parser.add_argument("--yes", "-y", action="store_true", help="clean: delete without asking")
    parser.add_argument("--skip-health-check", action="store_true",
                        help="restart/start: no final health validation")
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
                           ("--dry-run", CHANGES), ("--json", ("status",)), ("--yes", ("clean",)),
                           ("--skip-health-check", ("restart", "start"))):
        if getattr(args, flag[2:].replace("-", "_")):
            only(flag, commands)
    if args.tail is not None or args.follow:
        only("--tail and --follow", ("logs",))
    if args.tail is not None and args.tail < 0:
        raise UsageError(f"docker-restart.py: --tail must be 0 or more, got {args.tail}")
    if args.no_deps and not args.services:
        raise UsageError("docker-restart.py: --no-deps needs SERVICE...")


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_intermixed_args(argv)
    _check(args)
    options = {"compose_file": args.compose_file, "project_name": args.project_name}
    if args.command in ("status", "logs"):  # read only: no signal handling, no lock, no toolkit log
        registry = registry_from(args, printer)
        project = deployment_from("docker", registry, **options).default.project
        if args.command == "logs":
            from ..compose.ops import logs
            return logs(project, args.services[0] if args.services else None, args.tail, args.follow, printer.redact)
        from ..compose import status
        containers = project.containers()
        if args.json:
            write_out(sys.stdout, json.dumps(status.document(project, containers), indent=2) + "\n")
        else:
            status.print_table(project, Printer(sys.stdout, printer.redact), containers)
        return status.status_code(containers, project)
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from("docker", registry, **options)
    if args.command == "clean":
        from ..compose.ops import clean
        with run_lock(registry.state_dir, printer.warn):
            return render(printer, clean(deployment, deployment.default.project, printer, interrupts, yes=args.yes))
    services = operations.select(deployment, args.services, with_dependents=not args.no_deps,
                                 with_infra=args.with_infra or args.command == "start")
    run_it = {"restart": operations.restart, "start": operations.start, "stop": operations.stop}[args.command]
    opts = operations.Options(skip_health_check=args.skip_health_check, dry_run=args.dry_run)
    if args.dry_run:
        return render(printer, run_it(deployment, services, opts, printer))
    with run_lock(registry.state_dir, printer.warn):  # one change at a time, whichever script makes it
        return render(printer, run_it(deployment, services, opts, printer, interrupts))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
