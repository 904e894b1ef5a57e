"""The state directory: what the toolkit keeps between runs, each kind of record in a sub-directory of small
JSON files (run records, stop markers, last healthy definitions, ...).

A record is a claim the next run reads, never a proof. So everything here is defensive:
- private: files 0600 in 0700 directories (a record may name what a service runs);
- atomic: a reader sees the old record or the new one, never half of one;
- a state directory that is missing means no records; one that is a file, a FIFO or unreadable is a
  StateError (one line), never a traceback; a record that is not a regular file, not JSON, or holds a number
  that is not finite (NaN, Infinity) is unreadable (None), and each kind decides what that means;
- a failure to write or remove is a StateError: the callers decide whether it costs the operation (it
  never should: state helps the next run, the services are proven without it);
- identity() tells which state directory is at the path, so that a reader that keeps what it read (a monitor)
  sees when the one it read vanished or was replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .bounds import Bound
from .files import FileProblem, private_dir, read_regular, sync_file, what_is, write_atomic

RECORD_LIMIT = 64 * 1024  # bytes: a record is a few hundred
STAMP = ".stamp"  # a random word in the state directory, written once (identity())
# What a record's numbers may be: a wall-clock time the clock can say (time.localtime fails past the year 9999,
# and before 1970 nothing of ours ran), a pid the kernel can give (Linux's pid_max is at most 2**22; 1 is init).
WALL_CLOCK = Bound(0, 253402300799, "seconds since 1970")
PID = Bound(2, (1 << 22) - 1, integer=True)


class StateError(FileProblem):
    """The state directory (or a record in it) cannot be used: one line."""


def _reject_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a finite number")


def loads(text: str | bytes) -> Any:
    """JSON with only finite numbers (Python's json would take NaN and Infinity)."""
    return json.loads(text, parse_constant=_reject_constant)


def problem(state_dir: Path) -> str | None:
    """Why the state directory cannot be read now (None: it can, or it does not exist yet)."""
    try:
        mode = os.stat(state_dir).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"the state directory {state_dir} cannot be read: {exc.strerror}"
    if not stat.S_ISDIR(mode):
        return f"the state directory {state_dir} is {what_is(mode)}, not a directory"
    if not os.access(state_dir, os.R_OK | os.X_OK):
        return f"the state directory {state_dir} cannot be read: permission denied"
    return None


def _folder(state_dir: Path, kind: str) -> Path:
    return Path(state_dir) / kind


def write(state_dir: Path, kind: str, name: str, data: dict, durable: bool = True) -> None:
    """Write one record atomically (StateError when it cannot be); `durable`: to survive a crash of the host."""
    try:
        private_dir(state_dir)
        folder = private_dir(_folder(state_dir, kind))
        write_atomic(folder / f"{name}.json", json.dumps(data, indent=1, allow_nan=False), mode=0o600,
                     durable=durable)
    except (FileProblem, ValueError) as exc:
        raise StateError(str(exc)) from None


def sync(state_dir: Path, kind: str, name: str) -> None:
    """Make a record written with durable=False durable (nothing to do when it is gone; StateError when it cannot
    be)."""
    try:
        sync_file(_folder(state_dir, kind) / f"{name}.json")
    except FileNotFoundError:
        return
    except FileProblem as exc:
        raise StateError(str(exc)) from None


def read_all(state_dir: Path, kind: str, only: Iterable[str] | None = None) -> dict[str, dict | None]:
    """name -> record (a JSON object), or None for a record that is there but unreadable. {} when the state
    directory or the kind's folder does not exist; StateError when the state directory cannot be read.
    `only`: the records of these names, where they are (a look at one service costs one read, not one per
    service: a start of 100 services looks at each of them several times)."""
    why = problem(state_dir)
    if why:
        raise StateError(why)
    folder = _folder(state_dir, kind)
    try:
        if only is None:
            names = sorted(os.listdir(folder))
        elif stat.S_ISDIR(os.stat(folder).st_mode):
            names = [f"{name}.json" for name in only]
        else:
            raise NotADirectoryError
    except FileNotFoundError:
        return {}
    except NotADirectoryError:
        raise StateError(f"{folder} is not a directory") from None
    except OSError as exc:
        raise StateError(f"cannot read {folder}: {exc.strerror}") from None
    found: dict[str, dict | None] = {}
    for entry in names:
        if not entry.endswith(".json") or entry.startswith("."):
            continue
        try:
            data = loads(read_regular(folder / entry, RECORD_LIMIT))
        except FileNotFoundError:
            if only is not None:  # there is no record of it
                continue
            data = None  # gone meanwhile
        except (OSError, ValueError, FileProblem):  # not a regular file, not (finite) JSON
            data = None
        found[entry[:-5]] = data if isinstance(data, dict) else None
    return found


def read(state_dir: Path, kind: str, name: str) -> dict | None:
    """One record, or None when it is missing or unreadable (StateError when the directory cannot be read)."""
    why = problem(state_dir)
    if why:
        raise StateError(why)
    try:
        data = loads(read_regular(_folder(state_dir, kind) / f"{name}.json", RECORD_LIMIT))
    except (OSError, ValueError, FileProblem):
        return None
    return data if isinstance(data, dict) else None


def remove(state_dir: Path, kind: str, name: str) -> None:
    """Remove one record (nothing to do when it is not there; StateError when it cannot be removed). Only a
    record is removed: what is not a regular file or symlink of that name is left as it is."""
    path = _folder(state_dir, kind) / f"{name}.json"
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise StateError(f"cannot remove {path}: {exc.strerror}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise StateError(f"{path} is {what_is(mode)}, not a record: it is left as it is")
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot remove {path}: {exc.strerror}") from None


def identity(state_dir: Path) -> tuple | None:
    """Which state directory is at the path: None when there is none, else its device, inode and stamp (a random
    word written into it at the first ask, where it can be). A copy has another inode; a new directory made after
    a removal may get the very same inode number (ext4 hands it out again at once), never the same stamp.
    StateError when the state directory cannot be read."""
    why = problem(state_dir)
    if why:
        raise StateError(why)
    try:
        info = os.stat(state_dir)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"the state directory {state_dir} cannot be read: {exc.strerror}") from None
    stamp = Path(state_dir) / STAMP
    if not os.path.lexists(stamp):
        try:  # whole, and only where there is none (a link never replaces): the first writer's word is everyone's
            fd, temp = tempfile.mkstemp(dir=state_dir, prefix=f"{STAMP}.")
            try:
                os.write(fd, secrets.token_hex(16).encode())
                os.link(temp, stamp)
            finally:
                os.close(fd)
                os.unlink(temp)
        except OSError:  # there already, or not writable: the inode alone tells it then
            pass
    try:
        word = read_regular(stamp, RECORD_LIMIT)
    except (OSError, FileProblem):
        word = None
    return info.st_dev, info.st_ino, word


def number(data: dict, key: str, bound: Bound) -> Any:
    """A field that must be a number within the bound (an int for an integer bound); ValueError otherwise: a
    record is read back only as what its readers can use (a time they can print, a pid they can signal)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int if bound.integer else (int, float)):
        raise ValueError(f"{key}: not {'an integer' if bound.integer else 'a number'}")
    problem = bound.problem(value)
    if problem:
        raise ValueError(f"{key}: {problem}")
    return value if bound.integer else float(value)
