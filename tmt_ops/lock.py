"""One restart or stop at a time per state directory, whichever script runs it.

The lock is a listening socket in Linux's abstract unix namespace, named after the state directory's real
path: no file holds it, so deleting or replacing the state directory during a run cannot let a second run
in (a lock file would be recreated with a new inode and granted again). The kernel releases it when its
holder exits, however it exits, so a crashed run never leaves a stale lock. A waiting run learns the
holder's pid from the socket itself (SO_PEERCRED) and names it.

Limits: Linux only, and runs in different network namespaces (one inside a container, one outside) do not
see each other's lock.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psutil

from .errors import OperationFailed
from .redact import command_line

WAIT = 3.0  # seconds a second run waits for the first before giving up
POLL = 0.05


def _address(state_dir: Path) -> bytes:
    digest = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:32]
    return b"\0tmt-ops-lock-" + digest.encode()


def holder(state_dir: Path) -> str | None:
    """'pid N (command) since HH:MM:SS' of the run holding the lock, 'another tmt-ops run' when it cannot be
    asked, None when the lock is free."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(_address(state_dir))
        except ConnectionRefusedError:
            return None
        except OSError:  # its backlog is full: someone holds it
            return "another tmt-ops run"
        pid, _, _ = struct.unpack("3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            argv = proc.cmdline()
            command = command_line([os.path.basename(argv[0]), *argv[1:]] if argv else [])[:160]
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(proc.create_time()))
        return f"pid {pid} ({command}) since {since}"
    except psutil.Error:
        return f"pid {pid}"


@contextmanager
def run_lock(state_dir: Path, notify: Callable[[str], None], wait: float = WAIT) -> Iterator[None]:
    """Hold the lock for the block; notify(text) once if another run holds it; OperationFailed after `wait`."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # not inherited by what the run spawns (PEP 446)
    try:
        deadline = time.monotonic() + wait
        told = None
        while True:
            try:
                lock.bind(_address(state_dir))
                lock.listen(16)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise OperationFailed(f"cannot take the run lock for {state_dir}: {exc.strerror}") from None
            if told is None:
                told = holder(state_dir) or "another tmt-ops run"
                notify(f"another run holds the lock ({told}); waiting up to {wait:g}s")
            if time.monotonic() >= deadline:
                raise OperationFailed(f"another run still holds the lock of {state_dir}: {told}; "
                                      f"try again when it has finished")
            time.sleep(POLL)
        yield
    finally:
        lock.close()
