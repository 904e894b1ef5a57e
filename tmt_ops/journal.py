"""The journal: a record of every change made to the system (restart, stop, start, clean, heal), for the desk to
show who did what, when, and how it ended (`tmt-ops history`, the status page).

One JSON object per line in <state_dir>/journal/journal.jsonl. An operation writes two lines sharing an id:
"begin" (when, who, the command line, the mode, the services) once it holds the run lock, and "end" (what became
of each service, the exit code, the last line, the duration) whatever the ending. So a run that never ends
(killed, or left at once by a second Ctrl-C) still shows who started what, and read() says its end is unknown.

Like the rest of the state directory it is private (0600 in a 0700 directory), written through files.py (a
FIFO, a symlink, a file where the folder should be are refused at once, never followed or waited on), and
help, never a requirement: a journal that cannot be written is a JournalError, which the caller turns into one
warning. Rotated by size: at MAX_BYTES the file becomes journal.jsonl.1 (the older ones shift up), KEEP old
files are kept. Every text in a record has passed the Redactor before it gets here (audit.py).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .files import FileProblem, open_append, private_dir, read_regular

FOLDER, NAME = "journal", "journal.jsonl"
MAX_BYTES = 1024 * 1024  # about a thousand operations per file
KEEP = 5  # old files: journal.jsonl.1 (newest) ... journal.jsonl.5
VERSION = 1


class JournalError(FileProblem):
    """The journal cannot be written or read: one line."""


def path(state_dir: Path) -> Path:
    return Path(state_dir) / FOLDER / NAME


def _files(state_dir: Path) -> list[Path]:
    """The journal's files, newest first."""
    current = path(state_dir)
    return [current, *(current.with_name(f"{NAME}.{n}") for n in range(1, KEEP + 1))]


def append(state_dir: Path, line: dict, max_bytes: int = MAX_BYTES) -> None:
    """One line (a JSON object), after rotating a file that would grow past max_bytes."""
    text = (json.dumps({"v": VERSION, **line}, separators=(",", ":"), allow_nan=False, default=str) + "\n").encode()
    try:
        private_dir(state_dir)
        private_dir(Path(state_dir) / FOLDER)
        target = path(state_dir)
        try:
            size = os.lstat(target).st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(text) > max_bytes:
            _rotate(state_dir)
        with open_append(target) as file:
            file.write(text)
    except (FileProblem, OSError, ValueError) as exc:
        raise JournalError(f"cannot write the journal {path(state_dir)}: {getattr(exc, 'strerror', None) or exc}") \
            from None


def _rotate(state_dir: Path) -> None:
    files = _files(state_dir)
    for older, newer in zip(reversed(files), reversed(files[:-1])):  # .4 -> .5, ..., current -> .1
        if os.path.lexists(newer):
            os.replace(newer, older)


def _lines(file: Path) -> list[dict]:
    """The records of one file, in order; a line that is not a JSON object is skipped (a torn write)."""
    try:
        data = read_regular(file, MAX_BYTES * 4)
    except FileNotFoundError:
        return []
    except FileProblem as exc:
        raise JournalError(str(exc)) from None
    found = []
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("id"), str):
            found.append(line)
    return found


def operations(state_dir: Path) -> Iterator[dict]:
    """Every operation, newest first: its begin line with its end line's fields over it; one with no end
    (killed, still running) has outcome "unknown". An end whose begin was rotated away stands alone."""
    ends: dict[str, dict] = {}
    for file in _files(state_dir):
        for line in reversed(_lines(file)):
            if line.get("phase") == "end":
                ends[line["id"]] = line
            elif line.get("phase") == "begin":
                end = ends.pop(line["id"], None)
                yield _merge(line, end)
    for end in ends.values():
        yield _merge({}, end)


def _merge(begin: dict, end: dict | None) -> dict:
    record = {**begin, **(end or {})}
    record.pop("phase", None)
    record.pop("v", None)
    if end is None:
        record.update(outcome="unknown", last="no end was recorded: the run is still going, or it was killed "
                                               "(or left at once by a second interrupt)")
    return record


def stamp(epoch: float) -> str:
    """A record's time: UTC, milliseconds, as the health documents write theirs."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def began(record: dict) -> float:
    """When the operation began (else ended), seconds since the epoch; 0 when the record does not say."""
    try:
        text = record.get("started") or record["ended"]
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0


def read(state_dir: Path, *, since: float | None = None, service: str | None = None,
         limit: int | None = None) -> list[dict]:
    """The operations, newest first: begun at or after `since` (epoch seconds), touching `service`, at most
    `limit`. JournalError when the journal cannot be read (a missing one is empty)."""
    found = []
    for record in operations(state_dir):
        if since is not None and began(record) < since:
            continue
        if service is not None and service not in (record.get("services") or ()):
            continue
        found.append(record)
        if limit is not None and len(found) >= limit:
            break
    return found

