"""The toolkit's commands and every name each goes by, in one place; and how this process was invoked, so that every
command the toolkit prints (advice, a usage line, --version, the status page's copy buttons) runs where it is
printed.

A command runs as `tmt-ops NAME` (installed), `python -m tmt_ops NAME` (anywhere tmt_ops imports), and the spec's
scripts keep their names: a script at a source checkout's root (restart-trading-system.py) and its installed console
command (tmt-restart). A command printed by a run takes the form of that run: run as a script in a checkout, it
prints that checkout's script (by the path it was run by, with the interpreter that runs it); run as an installed
console command, the console command when it is on PATH; else `tmt-ops NAME` or `python -m tmt_ops NAME`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from .data import dataclass

DOCKER_SCRIPT = "docker-restart.py"  # the spec's script for the stack's status, logs, start and clean


@dataclass(frozen=True)
class Command:
    name: str  # `tmt-ops NAME`
    module: str  # tmt_ops.cli.<module>: its main(argv)
    summary: str  # one line for `tmt-ops --help`
    script: tuple[str, ...] = ()  # the spec's script at a checkout's root, and the words it takes before the rest
    console: str | None = None  # the console command an install puts on PATH


COMMANDS = {c.name: c for c in (
    Command("restart", "restart", "stop what runs, start in dependency waves, validate health (a transaction)",
            ("restart-trading-system.py",), "tmt-restart"),
    Command("stop", "stop", "stop the services, dependents first", ("stop-trading-system.py",), "tmt-stop"),
    Command("start", "start", "start what does not run (and what it needs), touching nothing that runs",
            (DOCKER_SCRIPT, "start")),
    Command("status", "status", "every service: state, pid or container or task, uptime, port, restarts",
            (DOCKER_SCRIPT, "status")),
    Command("logs", "logs", "the services' own output (native: this run's lines of its log; containers: the engine's)",
            (DOCKER_SCRIPT, "logs")),
    Command("health", "health", "health of every service and the host, once or as a monitor (--monitor, --serve)",
            ("system-health.py",), "tmt-health"),
    Command("quick-restart", "quick_restart", "restart in the mode that runs now, health always validated",
            ("quick-restart.py",), "tmt-quick-restart"),
    Command("docker", "docker", "docker-restart.py: the stack's restart, start, stop, status, logs and clean",
            (DOCKER_SCRIPT,), "tmt-docker"),
    Command("init", "admin", "put the starter registry where the commands look for it"),
    Command("systemd", "admin", "systemd units for this installation"),
    Command("completion", "admin", "shell completion (bash, zsh)"),
    Command("services", "admin", "the registry's service names"),
    Command("history", "admin", "the journal: who changed what, when, how it ended"),
    Command("alerts", "admin", "Prometheus alert rules for what --serve exposes"),
)}
SCRIPTS = {c.script[0]: c for c in COMMANDS.values() if len(c.script) == 1}  # a root script -> its command


@dataclass(frozen=True)
class Invocation:
    """How this process was run: "script" (a checkout's root script, `where` its directory as it was named),
    "console" (an installed console command), "tmt-ops", or "module" (python -m tmt_ops, and anything else)."""

    style: str
    where: str = ""

    @classmethod
    def of(cls, argv0: str) -> "Invocation":
        name = os.path.basename(argv0)
        if name in SCRIPTS and (Path(argv0).resolve().parent / "tmt_ops").is_dir():
            return cls("script", os.path.dirname(argv0))
        if name == "tmt-ops":
            return cls("tmt-ops")
        if any(c.console == name for c in COMMANDS.values()):
            return cls("console")
        return cls("module")

    def words(self, name: str) -> list[str]:
        """The words that run command `name` the way this process was run."""
        command = COMMANDS[name]
        if self.style == "script" and command.script:
            script = os.path.join(self.where, command.script[0]) if self.where else command.script[0]
            return [*interpreter(), script, *command.script[1:]]
        if self.style == "console" and command.console and shutil.which(command.console):
            return [command.console]
        if self.style in ("console", "tmt-ops") and shutil.which("tmt-ops"):
            return ["tmt-ops", name]
        return [*interpreter(), "-m", "tmt_ops", name]

    def command(self, name: str, *args: str) -> str:
        """A command line that runs there, with these arguments (each quoted as a shell needs)."""
        return " ".join([*map(shlex.quote, self.words(name)), *map(shlex.quote, args)])

    def prog(self, name: str) -> str:
        """What a command's usage line and --version call it."""
        return " ".join(self.words(name)) if self.style != "script" else COMMANDS[name].script[0] + "".join(
            f" {word}" for word in COMMANDS[name].script[1:])


def interpreter() -> list[str]:
    """The interpreter that runs this, as it can be typed here: `python3` or `python` when that name on PATH is
    it, else its path (relative where it is under the current directory: .venv/bin/python)."""
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found and os.path.realpath(found) == os.path.realpath(sys.executable) and \
                os.path.dirname(found) == os.path.dirname(sys.executable):
            return [name]
    path = sys.executable
    relative = os.path.relpath(path)
    return [relative if not relative.startswith("..") else path]


_current = Invocation.of(sys.argv[0] if sys.argv else "")


def current() -> Invocation:
    """How this process was run (set by the command line's entry, from sys.argv)."""
    return _current


def invoked(argv0: str) -> Invocation:
    """Note how this process was run (the command line's entry calls it once)."""
    global _current
    _current = Invocation.of(argv0)
    return _current
