"""docker-restart.py (tmt-docker, tmt-ops docker): the spec's script for the stack, its subcommands thin names for
the toolkit's commands: restart (the default), start, stop, status, logs, and clean (docker and swarm). Services are
named after the subcommand (`docker-restart.py logs orchestrator --tail 100`) or with --only, as elsewhere. --mode
auto picks docker or swarm, whichever runs; --mode native works too (status, logs, start, restart, stop)."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import modes
from ..console import Printer
from ..errors import UsageError
from . import logs, restart, start, status, stop
from .common import (CHANGE_EXITS, add_change_arguments, add_common_arguments, add_mode_argument, change,
                     deployment_from, for_operation, parser_for, registry_from, run)

CHANGES = ("restart", "start", "stop")
COMMANDS = (*CHANGES, "status", "logs", "clean")
# flag -> the subcommands it goes with
FLAGS = {"--no-deps": ("restart", "start", "stop"), "--with-infra": ("restart", "stop"), "--force": ("restart", "stop"),
         "--timeout": ("restart", "stop"), "--remove-stack": ("stop",), "--dry-run": CHANGES, "--json": ("status",),
         "--yes": ("clean",), "--skip-health-check": ("restart", "start"), "--no-build": ("restart", "start"),
         "--tail": ("logs",), "--follow": ("logs",)}
DESTS = {"--timeout": "grace"}


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("docker", "Manage the TMT stack: with docker compose (v2, else v1), as a Docker Swarm stack "
                                  "(--mode swarm), or as native processes (--mode native).",
                        f"{CHANGE_EXITS}; status: 0 everything runs, 1 not")
    add_common_arguments(parser)
    add_mode_argument(parser, "how the stack runs (auto: docker or swarm, whichever runs)")
    parser.add_argument("--compose-file", metavar="PATH", help="compose file (default: the registry's compose_file)")
    parser.add_argument("--project-name", metavar="NAME",
                        help="compose project (default: the registry's compose_project)")
    parser.add_argument("command", nargs="?", default="restart", choices=COMMANDS,
                        help="restart (default), start, stop, status, logs, clean")
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help="these services (registry or compose names); restart/stop: and their dependents; start: "
                             "and what they need that does not run")
    parser.add_argument("--only", nargs="+", metavar="SERVICE", help="the same as naming them")
    parser.add_argument("--no-deps", action="store_true", help="restart/start/stop: only the named services (not their dependents; start: not what "
                             "they need)")
    parser.add_argument("--with-infra", action="store_true",
                        help="restart/stop: the infrastructure containers too (left running otherwise)")
    add_change_arguments(parser)
    stop.add_remove_stack(parser)
    parser.add_argument("--json", action="store_true", help="status: JSON on stdout")
    logs.add_log_arguments(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="clean: delete without asking")
    return parser


def _check(args: argparse.Namespace) -> None:
    for flag, commands in FLAGS.items():
        value = getattr(args, DESTS.get(flag, flag[2:].replace("-", "_")))
        if value not in (None, False) and args.command not in commands:
            raise UsageError(f"docker-restart.py: {flag} goes with {'/'.join(commands)}")
    if (args.services or args.only) and args.command == "clean":
        raise UsageError("docker-restart.py: clean removes the whole stack: it takes no SERVICE")


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_intermixed_args(argv)
    _check(args)
    args.only = [*args.services, *(args.only or ())] or None
    options = {"compose_file": args.compose_file, "project_name": args.project_name}
    among = None if args.mode != "auto" else modes.modes(engine=True)
    if args.command == "status":  # read only: no signal handling, no lock, no toolkit log
        deployment = deployment_from(args.mode, registry_from(args, printer), among=among, **options)
        return status.show(deployment.default.status_view(), printer, args.json)
    if args.command == "logs":
        deployment = deployment_from(args.mode, registry_from(args, printer), among=among, **options)
        return logs.show(deployment, args.only or (), args.tail, args.follow, printer)
    if args.command == "clean":
        return _clean(args, printer, among, options)
    if args.command == "start":
        args.with_infra = True  # a start brings the stack up whole, as `docker compose up` does
    act = {"restart": restart.act, "start": start.act, "stop": stop.act}[args.command]
    return act(args, printer, among, **options)


def _clean(args: argparse.Namespace, printer: Printer, among, options) -> int:
    from .. import operations
    from ..clean import clean
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer, among=among, **options)
    if not modes.of_backend(deployment.default.name).removable:
        raise UsageError(f"clean removes a stack and its volumes: a {deployment.mode} deployment has none")
    return change(printer, "clean", deployment, operations.select(deployment, None, with_infra=True), interrupts,
                  lambda: clean(deployment, printer, interrupts, yes=args.yes))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
