"""Stopped on purpose: a marker per service in the state directory, left by a stop and cleared by the start
half of a restart or start, so that system-health.py --heal never brings back what a person took down.

A marker is a small JSON file (when, and the pid of the run that stopped it), written atomically, private
like the run records (0600 in a 0700 directory). A missing state directory means no markers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from . import statedir
from .data import dataclass

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


def mark(state_dir: Path, services: Iterable[str], durable: bool = True) -> None:
    """Leave a marker for each service (statedir.StateError when the state directory is not writable); not
    `durable`: without waiting for the disk (sync() makes them durable later)."""
    now, pid = time.time(), os.getpid()
    for name in services:
        statedir.write(state_dir, MARKERS, name, {"service": name, "at": now, "pid": pid}, durable=durable)


def sync(state_dir: Path, services: Iterable[str]) -> None:
    """Make the markers that mark(durable=False) left durable (statedir.StateError when one cannot be)."""
    for name in services:
        statedir.sync(state_dir, MARKERS, name)


def clear(state_dir: Path, services: Iterable[str]) -> None:
    """statedir.StateError when a marker is there and cannot be removed."""
    for name in services:
        statedir.remove(state_dir, MARKERS, name)


def _marker(name: str, data: dict | None) -> StopMarker:
    try:
        if data is None:
            raise ValueError("unreadable")
        return StopMarker(name, statedir.number(data, "at", statedir.WALL_CLOCK),
                          statedir.number(data, "pid", statedir.PID))
    except ValueError:
        return StopMarker(name, 0.0, 0)


def read(state_dir: Path) -> dict[str, StopMarker]:
    """Every marker by service; an unreadable one counts as a marker all the same (a heal must not bring back a
    service because its marker was damaged). No state directory: no markers; one that cannot be read is a
    statedir.StateError (a monitor then cannot know what was stopped on purpose)."""
    return {name: _marker(name, data) for name, data in statedir.read_all(state_dir, MARKERS).items()}
