"""What every script shares: --config, loading the registry, and turning errors into exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from ..console import Printer
from ..errors import TmtError, UsageError
from ..registry import Registry, load_registry

INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2 or 3 by caller) instead of printing usage and exiting."""

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="service registry (default: $TMT_CONFIG, else config/services.yaml)")


def registry_from(args: argparse.Namespace, printer: Printer | None = None) -> Registry:
    registry = load_registry(args.config)
    if printer is not None:
        for warning in registry.warnings:
            printer.warn(f"registry: {warning}")
    return registry


def run(body: Callable[[Sequence[str]], int], argv: Sequence[str] | None, *, config_error_code: int | None = None,
        failure_code: int | None = None) -> int:
    """Call body(argv); TmtError -> one line on stderr and its exit code; Ctrl-C -> 130.

    system-health maps every error of its own to 3 (UNKNOWN): config_error_code / failure_code override.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return body(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except TmtError as exc:
        print(f"error: {Printer().redact(str(exc))}", file=sys.stderr)
        if exc.exit_code == 2 and config_error_code is not None:
            return config_error_code
        return failure_code if failure_code is not None else exc.exit_code
    except SystemExit as exc:  # argparse --help / --version
        return exc.code if isinstance(exc.code, int) else 0
