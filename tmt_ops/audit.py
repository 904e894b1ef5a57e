"""One change to the system, on the record: who made it, from where, with which command line, and how it ended.

A Change writes the journal's "begin" line when the operation starts (under the run lock) and its "end" line
when it ends, however it ends (a result, an error, Ctrl-C); end() returns the whole record, "type":
"operation", which is also what a notification about it carries (notify.py). Every text in it has passed the
Redactor. A journal that cannot be written costs one warning line for the whole change, never the change.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

from . import journal
from .interrupts import INTERRUPTED
from .output import redact_tree
from .redact import Redactor
from .results import Result


def operator() -> dict:
    """Who runs this: the user (and the one behind sudo), the ssh client's address, the terminal, where known."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = str(os.getuid())
    who = {"user": user, "uid": os.getuid(), "host": socket.gethostname(), "pid": os.getpid()}
    if os.environ.get("SUDO_USER"):
        who["sudo_user"] = os.environ["SUDO_USER"]
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION")
    if ssh:
        who["ssh_client"] = ssh.split()[0]
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                who["tty"] = os.ttyname(fd)
                break
        except OSError:
            continue
    return who


def describe(who: Mapping) -> str:
    """'alice (sudo from bob) from ssh 10.0.0.5 on /dev/pts/3' for a person to read."""
    text = who.get("user", "?")
    if who.get("sudo_user"):
        text += f" (sudo from {who['sudo_user']})"
    if who.get("ssh_client"):
        text += f" from ssh {who['ssh_client']}"
    if who.get("tty"):
        text += f" on {who['tty']}"
    return text


def command_line(argv: Iterable[str] | None = None) -> str:
    """This process's command line as a person would type it (`python -m tmt_ops` for the package's entry)."""
    argv = list(sys.argv if argv is None else argv)
    head = Path(argv[0]).name if argv else "?"
    if head == "__main__.py":
        head = "python -m tmt_ops"
    return " ".join([head, *map(shlex.quote, argv[1:])])


def outcome(exit_code: int, level: str) -> str:
    """ok / warning / failed / interrupted: how an operation ended, in one word."""
    if exit_code == INTERRUPTED:
        return "interrupted"
    if exit_code:
        return "failed"
    return "warning" if level == "warn" else "ok"


class Change:
    def __init__(self, registry, operation: str, mode: str, services: Iterable[str], redactor: Redactor,
                 warn: Callable[[str], None], command: str | None = None) -> None:
        self.state_dir, self.redact, self.warn = registry.state_dir, redactor, warn
        self.id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.urandom(3).hex()}"
        self.began = time.monotonic()
        self.record = redact_tree({
            "type": "operation", "id": self.id, "operation": operation, "project": registry.project,
            "started": journal.stamp(time.time()), "who": operator(), "command": command or command_line(),
            "mode": mode, "services": list(services)}, redactor)
        self.writable = True
        self._write("begin", self.record)

    def _write(self, phase: str, line: dict) -> None:
        if not self.writable:
            return
        try:
            journal.append(self.state_dir, {"phase": phase, **line})
        except journal.JournalError as exc:
            self.writable = False  # one warning for the whole change
            self.warn(f"journal: this {self.record['operation']} is not recorded ({exc}); it goes on")

    def end(self, exit_code: int, last: str, level: str = "ok", *, changed: bool,
            results: Mapping[str, Mapping] | None = None) -> dict:
        """Write the end line; the whole record (what a notification about it carries)."""
        ending = redact_tree({
            "id": self.id, "ended": journal.stamp(time.time()), "seconds": round(time.monotonic() - self.began, 2),
            "changed": changed, "exit_code": exit_code, "outcome": outcome(exit_code, level), "last": last,
            "results": dict(results or {})}, self.redact)
        self._write("end", ending)
        return {**self.record, **ending}

    def ended(self, result: Result, *, changed: bool) -> dict:
        """end() from an operation's Result: each service's state, what runs it and the detail."""
        return self.end(result.exit_code, result.last, result.level, changed=changed, results={
            o.service: {k: v for k, v in (("state", o.state), ("runs_as", o.runs_as), ("detail", o.detail)) if v}
            for o in result.outcomes.values()})


class HealJournal:
    """--heal's restarts on the record, from its events: an attempt begins a Change ("heal"), its result ends it.
    `changing()`: whether the heal's restart got as far as touching anything."""

    def __init__(self, registry, mode: str, redactor: Redactor, warn: Callable[[str], None],
                 changing: Callable[[], bool]) -> None:
        self.registry, self.mode, self.redact, self.warn, self.changing = registry, mode, redactor, warn, changing
        self.current: Change | None = None

    def event(self, event: Mapping) -> None:
        if event["event"] == "attempt":
            self.current = Change(self.registry, "heal", self.mode, event["restarting"], self.redact, self.warn)
        elif event["event"] == "result" and self.current is not None:
            self.current.end(event["exit_code"], event["message"], "ok" if event["ok"] else "warn",
                             changed=self.changing(), results={name: {"state": state}
                                                               for name, state in event["states"].items()})
            self.current = None
