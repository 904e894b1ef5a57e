"""quick-restart.py [native|docker] [--force]: restart in the mode that runs now, always validating health."""

from __future__ import annotations

from typing import Sequence

from .. import operations
from ..backends import MODES
from ..console import Printer
from .common import ArgumentParser, add_common_arguments, change, deployment_from, for_operation, run


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="quick-restart.py",
                            description="Restart the TMT trading system with sensible defaults: the mode that "
                                        "runs now (else the registry's default), health always validated.")
    parser.add_argument("mode", nargs="?", choices=(*MODES, "auto"), default="auto",
                        help="native or docker; default: auto (the mode that runs now)")
    parser.add_argument("--force", action="store_true",
                        help="SIGKILL what outlives its grace period; also stop foreign holders of a service port")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer)
    services = operations.select(deployment, None)
    return change(printer, "restart", deployment, services, interrupts,
                  lambda: operations.restart(deployment, services, operations.Options(force=args.force), printer,
                                             interrupts))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
