"""docker-restart.py: the stack under docker compose. restart (default), start, stop, status, logs, clean."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from ..console import Printer, open_toolkit_log, write_out
from ..errors import UsageError
from ..lock import run_lock
from ..interrupts import Interrupts
from .common import ArgumentParser, add_config_argument, registry_from, run

COMMANDS = ("restart", "start", "stop", "status", "logs", "clean")


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="docker-restart.py",
                            description="Manage the TMT stack with docker compose (v2, else v1).")
    add_config_argument(parser)
    parser.add_argument("--compose-file", metavar="PATH", help="compose file (default: the registry's compose_file)")
    parser.add_argument("--project-name", metavar="NAME",
                        help="compose project (default: the registry's compose_project)")
    parser.add_argument("command", nargs="?", default="restart", choices=COMMANDS,
                        help="restart (default), start, stop, status, logs, clean")
    parser.add_argument("service", nargs="?", help="logs: one service (registry or compose name)")
    parser.add_argument("--json", action="store_true", help="status: JSON on stdout")
    parser.add_argument("--tail", type=int, metavar="N", help="logs: the last N lines of each service")
    parser.add_argument("-f", "--follow", action="store_true", help="logs: keep following")
    parser.add_argument("--yes", "-y", action="store_true", help="clean: delete without asking")
    parser.add_argument("--skip-health-check", action="store_true",
                        help="restart: do not wait for healthy containers nor probe them")
    return parser


def _check(args) -> None:
    if args.service and args.command != "logs":
        raise UsageError(f"docker-restart.py: {args.command} takes no service name (only logs does)")
    if args.json and args.command != "status":
        raise UsageError("docker-restart.py: --json goes with status")
    if (args.tail is not None or args.follow) and args.command != "logs":
        raise UsageError("docker-restart.py: --tail and --follow go with logs")
    if args.tail is not None and args.tail < 0:
        raise UsageError(f"docker-restart.py: --tail must be 0 or more, got {args.tail}")
    if args.yes and args.command != "clean":
        raise UsageError("docker-restart.py: --yes goes with clean")


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_intermixed_args(argv)
    _check(args)
    interrupts = Interrupts().install(printer.warn) if args.command not in ("status", "logs") else None
    registry = registry_from(args, printer)
    from ..compose import status
    from ..compose.project import Project
    project = Project(registry, args.project_name, args.compose_file)
    if args.command == "status":  # the quick path: no compose CLI, no probes
        containers = project.containers()
        if args.json:
            write_out(sys.stdout, json.dumps(status.document(project, containers), indent=2) + "\n")
        else:
            status.print_table(project, Printer(sys.stdout, printer.redact), containers)
        return status.status_code(containers, project)
    from ..compose import ops
    if args.command == "logs":
        return ops.logs(project, args.service, args.tail, args.follow, printer.redact)
    open_toolkit_log(registry.log_dir, printer.redact, registry.log_max_bytes, registry.log_backups)
    with run_lock(registry.state_dir, printer.warn):  # one change at a time, whichever script makes it
        if args.command == "start":
            return ops.start(project, printer, interrupts)
        if args.command == "stop":
            return ops.stop(project, printer, interrupts)
        if args.command == "clean":
            return ops.clean(project, printer, yes=args.yes)
        return ops.restart(project, printer, interrupts, skip_health_check=args.skip_health_check,
                           show_status=lambda p: status.print_table(p, Printer(sys.stdout, printer.redact)))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
