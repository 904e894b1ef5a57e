"""A native service's output as lines: its log file (logs/<service>.log), this run's part of it (after the last
`--- tmt-ops started` line), the last N of them, and with `follow` what it writes next, through rotations (a file
that shrank or was replaced is read again from its start). Read as bounded parts of regular files only: a log of
gigabytes, or a FIFO put in its place, costs no more than that."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

from ..files import FileProblem, read_part
from ..loglines import this_run

TAIL_BYTES = 256 * 1024  # what is read of a log for its last lines
FOLLOW_EVERY = 0.2  # seconds between looks at a followed log


def _last(path: Path, tail: int | None) -> tuple[list[str], tuple[int, int] | None, int]:
    """(this run's last `tail` lines (all of the tail read, with None), (device, inode), where they end)."""
    try:
        data, end = read_part(path, None, TAIL_BYTES)
        info = os.stat(path)
    except (OSError, FileProblem):
        return [], None, 0
    lines = this_run(data.decode("utf-8", "replace").splitlines())
    return (lines if tail is None else lines[-tail:] if tail else []), (info.st_dev, info.st_ino), end


def lines(paths: dict[str, Path], tail: int | None, follow: bool) -> Iterator[str]:
    """Each service's lines (`service | line` when there are several), then, with `follow`, what they write next
    until the generator is closed."""
    prefix = (lambda name: f"{name} | ") if len(paths) > 1 else (lambda name: "")
    where: dict[str, tuple[tuple[int, int] | None, int]] = {}
    for name, path in paths.items():
        shown, ident, end = _last(path, tail)
        where[name] = (ident, end)
        yield from (prefix(name) + line for line in shown)
    partial: dict[str, str] = {}
    while follow:
        time.sleep(FOLLOW_EVERY)
        for name, path in paths.items():
            ident, offset = where[name]
            try:
                info = os.stat(path)
            except OSError:
                continue  # rotated away for a moment, or not there yet
            if (info.st_dev, info.st_ino) != ident or info.st_size < offset:
                ident, offset = (info.st_dev, info.st_ino), 0  # a new file: read it from its start
            if info.st_size == offset:
                where[name] = (ident, offset)
                continue
            try:
                data, offset = read_part(path, offset, TAIL_BYTES)
            except (OSError, FileProblem):
                continue
            where[name] = (ident, offset)
            *complete, partial[name] = (partial.get(name, "") + data.decode("utf-8", "replace")).split("\n")
            yield from (prefix(name) + line for line in complete)
