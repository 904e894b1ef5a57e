"""Services that run on after their pre-stop call: told to stop working ("stop taking orders"), then not stopped
(they outlived their grace, or the stop was interrupted before them). Such a service answers its probe as
healthy while it may not be trading; a record in the state directory says so until it is started again (a
start clears it), and system-health reports it.

A record holds when the call was made and what it was, nothing of the service's own (no command line, no
environment); private like every state record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import statedir

KIND = "prestopped"  # sub-directory of the state directory


@dataclass(frozen=True)
class PreStopped:
    service: str
    at: float  # wall clock of the pre-stop call
    hook: str  # "POST /api/trading/disable"

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        return f"its pre-stop call {self.hook} was made at {when} and it was not stopped: it may not be working " \
               "(e.g. not trading) until it is started again"


def mark(state_dir: Path, service: str, hook: str) -> None:
    """statedir.StateError when it cannot be written."""
    statedir.write(state_dir, KIND, service, {"service": service, "at": time.time(), "hook": hook})


def clear(state_dir: Path, services: Iterable[str]) -> None:
    """statedir.StateError when a record is there and cannot be removed."""
    for name in services:
        statedir.remove(state_dir, KIND, name)


def read(state_dir: Path) -> dict[str, PreStopped]:
    """Every readable record by service (a damaged one is dropped from the answer: it cannot say when); a state
    directory that cannot be read is a statedir.StateError."""
    found = {}
    for name, data in statedir.read_all(state_dir, KIND).items():
        try:
            at = statedir.number(data or {}, "at")
            time.localtime(at)
            hook = (data or {}).get("hook")
            if isinstance(hook, str):
                found[name] = PreStopped(name, at, hook)
        except (ValueError, OverflowError, OSError):
            continue
    return found
