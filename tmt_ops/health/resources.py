"""Host resources for a health round: CPU, memory, disks, load, each judged by the registry's thresholds.

CPU is never sampled by blocking (no cpu_percent(interval=1)): a CpuSampler is marked when the round
starts and read when it ends, and the checker's own CPU time in that window is left out, so a short
one-shot run does not report its own interpreter start-up as system load.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, Mapping

import psutil

from ..data import dataclass, replace
from ..registry import Threshold
from ..states import Overall
from .severity import of_value, worst


MIN_CPU_WINDOW = 0.1  # seconds: below this, 10 ms kernel ticks make the figure noise


class CpuSampler:
    """System CPU busy % between mark() and read(), minus this process's own CPU time."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self._system = psutil.cpu_times()
        self._own = _own_cpu_seconds()
        self._at = time.monotonic()

    def read(self, min_window: float = 0.0) -> tuple[float, float]:
        """(percent of all cores, seconds sampled); re-marks, so the next read covers the next window.

        Tick resolution is 10 ms per core: a window shorter than `min_window` is waited out first."""
        time.sleep(max(0.0, self._at + min_window - time.monotonic()))
        system, own, at = psutil.cpu_times(), _own_cpu_seconds(), time.monotonic()
        total = _total(system) - _total(self._system)
        idle = _idle(system) - _idle(self._system)
        others_busy = max(0.0, total - idle - (own - self._own))
        percent = round(min(100.0, 100.0 * others_busy / total), 1) if total > 0 else 0.0
        window = at - self._at
        self._system, self._own, self._at = system, own, at
        return percent, round(window, 3)


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _total(times) -> float:
    # guest time is already counted in user time on Linux (psutil does the same subtraction)
    return sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _idle(times) -> float:
    return times.idle + getattr(times, "iowait", 0.0)


@dataclass(frozen=True)
class Disk:
    path: str  # as configured
    measured: str  # the existing directory actually measured (a log dir not created yet -> its parent)
    percent: float
    free_bytes: int
    total_bytes: int
    severity: Overall
    other_paths: tuple[str, ...] = ()  # the paths configured after it that are on the same file system


@dataclass(frozen=True)
class Resources:
    cpu_percent: float
    cpu_sample_seconds: float
    cpu_count: int
    memory_percent: float
    memory_available_bytes: int
    memory_total_bytes: int
    disks: tuple[Disk, ...]
    load_average: tuple[float, float, float]
    load_per_cpu: float
    severities: Mapping[str, Overall]  # cpu_percent, memory_percent, disk_percent, load_per_cpu
    thresholds: Mapping[str, Threshold]

    @property
    def disk_percent(self) -> float:
        return max((d.percent for d in self.disks), default=0.0)

    @property
    def severity(self) -> Overall:
        return worst(self.severities.values())


def _existing(path: Path) -> Path:
    """The path, else its nearest ancestor that can be looked at: statvfs needs no more (it opens nothing, so a
    FIFO or a device is measured as the file system it is on). A path that cannot be looked at (missing,
    a dangling symlink, a directory this user may not search) is measured at its ancestor, never an error."""
    while path != path.parent:
        try:
            os.stat(path)
            return path
        except (OSError, ValueError):  # ValueError: a NUL in the path
            path = path.parent
    return path


def disk_usage(paths: Iterable[Path], threshold: Threshold | None) -> tuple[Disk, ...]:
    """A Disk for each file system, named by the first path on it: the log directory on / is /, measured and shown
    once (its other_paths say it is there)."""
    disks: dict[int, Disk] = {}  # by the file system's device (st_dev)
    for path in paths:
        measured = _existing(Path(path))
        try:
            device = os.stat(measured).st_dev
            if device in disks:
                if str(path) != disks[device].path and str(path) not in disks[device].other_paths:
                    disks[device] = replace(disks[device], other_paths=(*disks[device].other_paths, str(path)))
                continue
            usage = psutil.disk_usage(str(measured))
        except OSError:
            continue  # vanished or unreadable: nothing to judge
        disks[device] = Disk(str(path), str(measured), usage.percent, usage.free, usage.total,
                             of_value(usage.percent, threshold))
    return tuple(disks.values())


def measure(thresholds: Mapping[str, Threshold], disk_paths: Iterable[Path], cpu: CpuSampler) -> Resources:
    memory = psutil.virtual_memory()
    cores = psutil.cpu_count() or 1
    load = tuple(round(x, 2) for x in psutil.getloadavg())
    disks = disk_usage(disk_paths, thresholds.get("disk_percent"))
    cpu_percent, window = cpu.read(MIN_CPU_WINDOW)
    load_per_cpu = round(load[0] / cores, 2)
    severities = {
        "cpu_percent": of_value(cpu_percent, thresholds.get("cpu_percent")),
        "memory_percent": of_value(memory.percent, thresholds.get("memory_percent")),
        "disk_percent": worst(d.severity for d in disks),
        "load_per_cpu": of_value(load_per_cpu, thresholds.get("load_per_cpu")),
    }
    return Resources(cpu_percent, window, cores, memory.percent, memory.available, memory.total, disks,
                     load, load_per_cpu, severities, thresholds)
