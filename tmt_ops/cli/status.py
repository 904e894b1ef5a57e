"""status (tmt-ops status, docker-restart.py status): every service the deployment runs, in any mode, by what its
own backend says (statusview.py): state, pid or container or task, uptime, port, restarts; a table or --json.
docker-restart.py status shows a container backend's own, fuller view (its containers, or its stack's tasks and
nodes)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .. import statusview
from ..backends import Deployment
from ..console import Printer, write_out
from ..results import StatusView
from .common import (STATUS_EXITS, add_common_arguments, add_mode_argument, deployment_from, parser_for,
                     registry_from, run)


def _parser() -> argparse.ArgumentParser:
    parser = parser_for("status", "Every TMT service the deployment runs: state, pid or container or task, uptime, "
                                  "port, restarts (like supervisorctl status, pm2 ls, docker compose ps).",
                        STATUS_EXITS)
    add_mode_argument(parser, "how the services run")
    parser.add_argument("--only", nargs="+", metavar="SERVICE", help="these services only")
    parser.add_argument("--json", action="store_true", help="JSON on stdout (versioned; fields are only ever added)")
    add_common_arguments(parser)
    return parser


def of(deployment: Deployment, only: Sequence[str] | None) -> StatusView:
    """Each selected service by its own backend."""
    chosen = deployment.registry.select(only) if only else deployment.managed
    statuses, backends = {}, {}
    for backend, members in deployment.group(chosen).items():
        statuses.update(deployment.backend(backend).statuses(members))
        backends.update(dict.fromkeys((s.name for s in members), backend))
    ordered = {s.name: statuses[s.name] for s in chosen if s.name in statuses}
    return statusview.view(deployment.registry, deployment.mode, ordered, backends)


def show(view: StatusView, printer: Printer, as_json: bool) -> int:
    """A status on stdout: its JSON document, or its lines and table for a person; its exit code."""
    if as_json:
        write_out(sys.stdout, json.dumps(view.document, indent=2) + "\n")
        return view.exit_code
    out = Printer(sys.stdout, printer.redact)
    for style, text in view.before:
        out.line(text, style)
    if view.table:
        out.table(view.table.header, view.table.rows, view.table.styles)
    for style, text in view.after:
        out.line(text, style)
    return view.exit_code


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    deployment = deployment_from(args.mode, registry_from(args, printer))
    return show(of(deployment, args.only), printer, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
