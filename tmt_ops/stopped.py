"""Stopped on purpose: a marker per service in the state directory, left by a stop and cleared by the start
half of a restart or start, so that system-health.py --heal never brings back what a person took down.

A marker is a small JSON file (when, and the pid of the run that stopped it), written atomically, private
like the run records (0600 in a 0700 directory). A missing state directory means no markers.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .atomic import write_atomic

MARKERS = "stopped"  # sub-directory of the state directory


@dataclass(frozen=True)
class StopMarker:
    service: str
    at: float  # wall clock of the stop
    pid: int  # the run that stopped it

    def describe(self) -> str:
        if not self.pid:
            return "stopped on purpose (its marker is unreadable)"
        return f"stopped on purpose at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.at))} (pid {self.pid})"


def _folder(state_dir: Path) -> Path:
    return Path(state_dir) / MARKERS


def mark(state_dir: Path, services: Iterable[str]) -> None:
    """Leave a marker for each service (OSError / OperationFailed when the state directory is not writable)."""
    folder = _folder(state_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    now, pid = time.time(), os.getpid()
    for name in services:
        write_atomic(folder / f"{name}.json", json.dumps({"service": name, "at": now, "pid": pid}), mode=0o600)


def clear(state_dir: Path, services: Iterable[str]) -> None:
    for name in services:
        (_folder(state_dir) / f"{name}.json").unlink(missing_ok=True)


def read(state_dir: Path) -> dict[str, StopMarker]:
    """Every readable marker by service; an unreadable one counts as a marker all the same (a heal must not
    bring back a service because its marker was damaged)."""
    found = {}
    try:
        paths = list(_folder(state_dir).glob("*.json"))
    except OSError:
        return found
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found[path.stem] = StopMarker(path.stem, float(data["at"]), int(data["pid"]))
        except (OSError, ValueError, TypeError, KeyError):
            found[path.stem] = StopMarker(path.stem, 0.0, 0)
    return found
