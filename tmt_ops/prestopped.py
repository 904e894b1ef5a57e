"""Services that run on after their pre-stop call: told to stop working ("stop taking orders"), then not stopped
(they outlived their grace, or the stop was interrupted before them). Such a service answers its probe as
healthy while it may not be trading; a record in the state directory says so until it is started again (a
start clears it), and system-health reports it.

A record holds when the call was made and what it was, nothing of the service's own (no command line, no
environment); private like every state record.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from . import statedir
from .data import dataclass

KIND = "prestopped"  # sub-directory of the state directory


@dataclass(frozen=True)
class PreStopped:
    service: str
    at: float | None  # wall clock of the pre-stop call (None: its record is damaged, when is not known)
    hook: str  # "POST /api/trading/disable" ("its pre-stop call" when the record is damaged)

    def describe(self) -> str:
        when = "" if self.at is None else f" was made at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.at))}"
        return f"its pre-stop call {self.hook}{when} and it was not stopped: it may not be working (e.g. not " \
               "trading) until it is started again"


def mark(state_dir: Path, service: str, hook: str, at: float) -> None:
    """`at`: when the call was made. statedir.StateError when it cannot be written."""
    statedir.write(state_dir, KIND, service, {"service": service, "at": at, "hook": hook})


def clear(state_dir: Path, services: Iterable[str]) -> None:
    """statedir.StateError when a record is there and cannot be removed."""
    for name in services:
        statedir.remove(state_dir, KIND, name)


def _record(name: str, data: dict | None) -> PreStopped:
    """A damaged record still says the service ran on after its pre-stop call: when and which call is unknown."""
    try:
        at, hook = statedir.number(data or {}, "at", statedir.WALL_CLOCK), (data or {}).get("hook")
        time.localtime(at)
        if isinstance(hook, str):
            return PreStopped(name, at, hook)
    except (ValueError, OverflowError, OSError):
        pass
    return PreStopped(name, None, "(its record is damaged)")


def read(state_dir: Path) -> dict[str, PreStopped]:
    """Every record by service; a state directory that cannot be read is a statedir.StateError."""
    return {name: _record(name, data) for name, data in statedir.read_all(state_dir, KIND).items()}
