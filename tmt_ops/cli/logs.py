"""logs (tmt-ops logs, docker-restart.py logs): the services' own output, masked; native: this run's lines of each
service's log; containers: the engine's logs. --tail N, -f/--follow (until Ctrl-C, or the reader goes away)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..backends import Deployment
from ..bounds import Bound
from ..console import Printer, write_out
from ..errors import UsageError
from .common import LOGS_EXITS, add_common_arguments, add_mode_argument, deployment_from, parser_for, registry_from, run

TAIL = Bound(0, 1_000_000, "lines", integer=True)


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tail", type=TAIL.argument, metavar="N", help="the last N lines of each service")
    parser.add_argument("-f", "--follow", action="store_true", help="keep following (Ctrl-C ends it)")


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("logs", "The TMT services' own output (native: this run's lines of logs/SERVICE.log; "
                                "containers: the engine's logs), secrets masked.", LOGS_EXITS)
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="these services (default: every one)")
    parser.add_argument("--only", nargs="+", metavar="SERVICE", help="the same as naming them")
    add_log_arguments(parser)
    add_mode_argument(parser, "how the services run")
    add_common_arguments(parser)
    return parser


def show(deployment: Deployment, names: Sequence[str], tail: int | None, follow: bool, printer: Printer) -> int:
    """The lines of these services (every one the deployment runs when none is named) on stdout, by backend."""
    chosen = deployment.registry.select(names) if names else deployment.managed
    outside = [s.name for s in chosen if deployment.of(s) is None]
    if outside:
        raise UsageError(f"{', '.join(outside)}: outside this {deployment.mode} deployment: tmt-ops has no output "
                         "of it (it neither starts nor stops it)")
    groups = deployment.group(chosen)
    if len(groups) > 1 and follow:
        raise UsageError("--follow follows one backend's services at once: name services of one kind")
    for backend, members in groups.items():
        lines = deployment.backend(backend).log_lines(members if names else [], tail, follow)
        try:
            for line in lines:
                if not write_out(sys.stdout, printer.redact(line) + "\n"):
                    return 0  # the reader went away (| head): quietly done
        finally:
            lines.close()  # stops a CLI that still runs (Ctrl-C, the reader gone)
    return 0


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    deployment = deployment_from(args.mode, registry_from(args, printer))
    return show(deployment, [*args.services, *(args.only or ())], args.tail, args.follow, printer)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
