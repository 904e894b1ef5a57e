"""Is a process one of ours? Pure rules over (cmdline, cwd); the caller gathers them with psutil.

Keyword matching is never enough: a process is a service's when its whole command line is the service's
registered command (the interpreter may be any python) and it runs in the service's directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import psutil

from ..registry import Service

PYTHON = re.compile(r"python(\d+(\.\d+)?)?$")


def _same_program(a: str, b: str) -> bool:
    a, b = os.path.basename(a), os.path.basename(b)
    return a == b or bool(PYTHON.match(a) and PYTHON.match(b))


def matches_command(service: Service, cmdline: Sequence[str], cwd: str | os.PathLike | None) -> bool:
    """True when (cmdline, cwd) is the service's registered command started in its directory."""
    command = service.command
    if not command or len(cmdline) != len(command) or not _same_program(cmdline[0], command[0]):
        return False
    if list(cmdline[1:]) != list(command[1:]):
        return False
    return cwd is not None and Path(cwd).resolve() == service.cwd


def service_root(service: Service, pid: int) -> psutil.Process | None:
    """The process whose command is the service's, found at `pid` or among its ancestors (a listener may
    be a grandchild of the command, as `npm run dev` -> sh -> node), else None."""
    try:
        proc: psutil.Process | None = psutil.Process(pid)
        while proc is not None and proc.pid > 1:
            with proc.oneshot():
                try:
                    if matches_command(service, proc.cmdline(), proc.cwd()):
                        return proc
                except psutil.AccessDenied:
                    pass
                proc = proc.parent()
    except psutil.NoSuchProcess:
        return None
    return None
