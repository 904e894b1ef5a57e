"""What every script shares: --config, loading the registry, and turning errors into exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from ..console import Printer
from ..errors import TmtError, UsageError
from ..interrupts import INTERRUPTED
from ..redact import Redactor
from ..registry import Registry, load_registry



class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2 or 3 by caller) instead of printing usage and exiting."""

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="service registry (default: $TMT_CONFIG, else config/services.yaml)")


def registry_from(args: argparse.Namespace, printer: Printer) -> Registry:
    """The registry named by --config; the printer now masks its secrets too."""
    registry = load_registry(args.config)
    printer.redact = Redactor.for_registry(registry)
    for warning in registry.warnings:
        printer.warn(f"registry: {warning}")
    return registry


def run(body: Callable[[Sequence[str], Printer], int], argv: Sequence[str] | None, *,
        config_error_code: int | None = None, failure_code: int | None = None) -> int:
    """Call body(argv, printer); TmtError -> one line and its exit code; Ctrl-C -> 130.

    The final line goes through the same printer as every other (secrets masked, copied to the toolkit log
    once the body opened it). system-health maps every error of its own to 3 (UNKNOWN):
    config_error_code / failure_code override.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    printer = Printer()
    try:
        return body(argv, printer)
    except KeyboardInterrupt:
        printer.warn("interrupted")
        return INTERRUPTED
    except TmtError as exc:
        printer.error(f"error: {exc}")
        if exc.exit_code == 2 and config_error_code is not None:
            return config_error_code
        return failure_code if failure_code is not None else exc.exit_code
    except SystemExit as exc:  # argparse --help / --version
        return exc.code if isinstance(exc.code, int) else 0
