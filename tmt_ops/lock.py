"""One restart or stop at a time: an fcntl lock on state_dir/lock that names its holder.

The kernel drops an flock when its holder dies, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import OperationFailed

WAIT = 3.0  # seconds a second run waits for the first before giving up
POLL = 0.05


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "another tmt-ops run"


@contextmanager
def run_lock(state_dir: Path, notify: Callable[[str], None], wait: float = WAIT) -> Iterator[None]:
    """Hold the lock for the block; notify(text) once if another run holds it; OperationFailed after `wait`."""
    path = Path(state_dir) / "lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OperationFailed(f"cannot use the state directory {path.parent}: {exc.strerror} "
                              f"(set project.state_dir in the registry to a writable directory)") from None
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    notify(f"another run holds the lock ({_holder(path)}); waiting up to {wait:g}s")
                    told = True
                if time.monotonic() >= deadline:
                    raise OperationFailed(f"another run still holds {path}: {_holder(path)}; "
                                          f"try again when it has finished") from None
                time.sleep(POLL)
        command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command}) since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
