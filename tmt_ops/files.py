"""Files the toolkit reads and writes, whatever sits at their paths.

Any path may be missing, a directory, a FIFO, a device or a symlink. The rules, in one place:
- reading never blocks: a file is opened without waiting (a FIFO with no writer would hang an open) and
  must then be a regular file, read up to a bound;
- writing never goes through what is not a regular file: a FIFO, a device, a directory or a symlink where
  a file of the toolkit's belongs is refused with one line, never replaced, followed or written into;
- what the toolkit keeps for itself (state, its own log) is private: files 0600, directories 0700.
Every failure is a FileProblem (an OperationFailed): one line that names the path and what is there.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import OperationFailed

PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


class FileProblem(OperationFailed):
    """A path the toolkit cannot use as it must: one line saying which and why. `why` says it without the path,
    for a caller that names the path its own way ("compose file X: cannot read it: it is a FIFO, ...")."""

    def __init__(self, message: str, why: str = ""):
        super().__init__(message)
        self.why = why or message


class TooLarge(FileProblem):
    """A regular file past the reader's bound (a caller may say what that means for it)."""


def what_is(mode: int) -> str:
    """'a FIFO', 'a directory', ... for an st_mode."""
    for test, words in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return words
    return "not a regular file"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _open_regular(path: str | os.PathLike) -> int:
    """A descriptor of a regular file, opened without blocking (a FIFO or a device is refused at once, never
    waited on); FileNotFoundError when missing, FileProblem for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {_reason(exc)}", f"cannot read it: {_reason(exc)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileProblem(f"{path} is {what_is(mode)}, not a regular file", f"it is {what_is(mode)}, not a regular file")
    return fd


def sync_file(path: str | os.PathLike) -> None:
    """Make a regular file written without fsync durable now (FileNotFoundError when it is gone, FileProblem when
    it is not a regular file or cannot be synced)."""
    fd = _open_regular(path)
    try:
        os.fsync(fd)
    except OSError as exc:
        raise FileProblem(f"cannot sync {path}: {_reason(exc)}") from None
    finally:
        os.close(fd)


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of a regular file, at most `limit` (FileProblem beyond it); FileNotFoundError when missing.
    Opened without blocking, so a FIFO or a device at the path is refused at once instead of hanging."""
    fd = _open_regular(path)
    try:
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise TooLarge(f"{path} is larger than {limit} bytes", f"it is larger than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {_reason(exc)}", f"cannot read it: {_reason(exc)}") from None
    finally:
        os.close(fd)


def read_part(path: str | os.PathLike, offset: int | None, limit: int) -> tuple[bytes, int]:
    """(at most `limit` bytes of a regular file from `offset`, or its last `limit` bytes when offset is None;
    where they end). For a log that grows while it is read (a service's output): never blocks, never reads more
    than asked. FileNotFoundError when missing, FileProblem for what is not a regular file."""
    fd = _open_regular(path)
    try:
        start = max(0, os.fstat(fd).st_size - limit) if offset is None else offset
        data = os.pread(fd, limit, start)
        return data, start + len(data)
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {_reason(exc)}", f"cannot read it: {_reason(exc)}") from None
    finally:
        os.close(fd)


def writable_file(target: str | os.PathLike) -> bool:
    """A path to be written must be missing or a regular file (never followed if it is a symlink): FileProblem
    otherwise, so a caller may ask before it changes anything. True when there is a regular file."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise FileProblem(f"cannot write {target}: {_reason(exc)}") from None
    if not stat.S_ISREG(mode):
        raise FileProblem(f"{target} is {what_is(mode)}, not a regular file: it is left as it is (remove it, or "
                          "choose another path)")
    return True


def ensure_dir(folder: str | os.PathLike, mode: int = 0o755) -> Path:
    """The directory, made (with its parents) if missing; FileProblem when something else is there. A symlink
    to a directory is accepted (an administrator's layout); its target is not changed."""
    folder = Path(folder)
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise FileProblem(f"cannot make the directory {folder}: {_reason(exc)}", f"cannot make it: {_reason(exc)}") \
            from None
    try:
        found = os.stat(folder).st_mode
    except FileNotFoundError:  # made or found a moment ago: a symlink to nowhere (mkdir takes it for a file)
        raise FileProblem(f"{folder} is a symlink to a missing target, not a directory",
                          "it is a symlink to a missing target, not a directory") from None
    except OSError as exc:
        raise FileProblem(f"cannot use the directory {folder}: {_reason(exc)}", f"cannot use it: {_reason(exc)}") \
            from None
    if not stat.S_ISDIR(found):
        raise FileProblem(f"{folder} is {what_is(found)}, not a directory", f"it is {what_is(found)}, not a directory")
    return folder


def private_dir(folder: str | os.PathLike) -> Path:
    """ensure_dir, then 0700 when this user owns it (a directory of someone else's is left as it is)."""
    folder = ensure_dir(folder, PRIVATE_DIR)
    try:
        info = os.stat(folder)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
            os.chmod(folder, PRIVATE_DIR)
    except OSError:
        pass
    return folder


def write_atomic(path: str | os.PathLike, text: str, mode: int = 0o644, durable: bool = True) -> None:
    """Write a whole file so that a reader (a later stop, cron mail, node_exporter) sees the old content or the
    new, never half: a temporary file in the same directory, fsync (unless not `durable`: what only matters while
    this boot lasts), rename over the target. A target that is not a regular file is refused, never replaced."""
    target = Path(path)
    writable_file(target)
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise FileProblem(f"cannot write {target}: {_reason(exc)} (does {target.parent} exist?)") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(temp, mode)  # mkstemp makes 0600; collectors often run as another user
        writable_file(target)  # again: the rename must not replace what appeared meanwhile
        os.replace(temp, target)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, (OSError, ValueError)):  # ValueError: text the encoding cannot carry
            raise FileProblem(f"cannot write {target}: {getattr(exc, 'strerror', None) or exc}") from None
        raise


def open_append(path: str | os.PathLike, mode: int = PRIVATE_FILE):
    """A binary file object appending to a regular file (made with `mode` when missing; an existing one of this
    user's is set to `mode`). A symlink, FIFO, device or directory at the path is refused (FileProblem)."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | \
        getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:  # a symlink (O_NOFOLLOW), a FIFO without a reader (ENXIO), a directory: say which
        writable_file(path)
        raise FileProblem(f"cannot write {path}: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"{path} is {what_is(info.st_mode)}, not a regular file: it is left as it is "
                              "(remove it, or choose another path)")
        os.set_blocking(fd, True)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def rotate(path: str | os.PathLike, backups: int) -> None:
    """path becomes path.1, path.1 becomes path.2, ..., the oldest (path.<backups>) drops; with no backups, path
    drops. Only regular files are moved or dropped: a FIFO, device, directory or symlink at any of these names
    is a FileProblem, checked before anything moves (never renamed over, never unlinked)."""
    path = Path(path)
    names = [path] + [path.with_name(f"{path.name}.{n}") for n in range(1, backups + 1)]
    present = [writable_file(name) for name in names]
    try:
        if backups <= 0:
            if present[0]:
                os.unlink(path)
            return
        for n in range(backups - 1, 0, -1):
            if present[n]:
                os.replace(names[n], names[n + 1])
        if present[0]:
            os.replace(path, names[1])
    except OSError as exc:
        raise FileProblem(f"cannot rotate {path}: {_reason(exc)}") from None


def make_private(path: str | os.PathLike) -> None:
    """A regular file of this user's at path set to 0600 (an older version's log). Anything else, or a file of
    someone else's, is left as it is; never followed through a symlink, never waiting on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        pass
    finally:
        os.close(fd)
