"""tmt-ops COMMAND (python -m tmt_ops COMMAND): every command of the toolkit under one name (commands.py lists
them), and the entry of each script and console command: they all note how they were invoked, run their command,
and end the process at once when it has said its last line."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Callable, NoReturn, Sequence

from .. import __version__, commands
from ..console import write_out
from ..registry.model import suggest

USAGE = "usage: tmt-ops [-h] [-V] COMMAND [ARGS...]   (tmt-ops COMMAND --help for each)"


def _help() -> str:
    width = max(map(len, commands.COMMANDS))
    lines = [USAGE, "", "Start, stop, restart and health-check the TMT trading system.", "", "commands:"]
    lines += [f"  {name:<{width}}  {c.summary}" for name, c in commands.COMMANDS.items()]
    return "\n".join(lines) + "\n"


def run_command(name: str, argv: Sequence[str]) -> int:
    """Command `name` with these arguments (an admin command gets its own name first, as its parser reads it)."""
    command = commands.COMMANDS[name]
    main = importlib.import_module(f"tmt_ops.cli.{command.module}").main
    return main([name, *argv] if command.module == "admin" else list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        write_out(sys.stdout if argv else sys.stderr, _help())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        write_out(sys.stdout, f"tmt-ops {__version__}\n")
        return 0
    if argv[0] not in commands.COMMANDS:
        write_out(sys.stderr, f"error: tmt-ops: unknown command '{argv[0]}'{suggest(argv[0], commands.COMMANDS)} "
                              f"(see tmt-ops --help)\n")
        return 2
    return run_command(argv[0], argv[1:])


def finish(code: int) -> NoReturn:
    """End the process with `code` now that its last line is out: the toolkit log closed, the streams flushed, and
    none of the interpreter's own finalization (tens of milliseconds, on every run)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def entry(name: str | None = None) -> Callable[[], NoReturn]:
    """The entry of a script or console command: command `name`, or tmt-ops itself (None)."""
    def start() -> NoReturn:
        commands.invoked(sys.argv[0])
        try:
            finish(main() if name is None else run_command(name, sys.argv[1:]))
        except ModuleNotFoundError as exc:  # run by an interpreter the toolkit's dependencies are not installed for
            if not exc.name or exc.name.split(".")[0] == "tmt_ops":
                raise
            write_out(sys.stderr, f"error: the Python package '{exc.name}' is not installed for {sys.executable}: "
                                  "install the toolkit (README: `pip install -e .`) or run it with the interpreter "
                                  "it is installed for\n")
            finish(3 if (name or next(iter(sys.argv[1:2]), "")) == "health" else 2)
    return start


tmt_ops, restart, stop, quick_restart, docker, health = (entry(), entry("restart"), entry("stop"),
                                                         entry("quick-restart"), entry("docker"), entry("health"))
