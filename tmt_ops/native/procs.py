"""Processes as discovered (pid + create time) and the guarded ways to look at and signal them.

Every signal the toolkit sends goes through here: a process is re-identified by its create time first
(PID reuse), and no signal ever goes to pid <= 1, to this process or its ancestors, or to its own group
or session.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import time

import psutil

from ..data import dataclass
from ..redact import command_line

FALLBACK_POLL = 0.02  # seconds, where pidfds are missing
SAME_PROCESS = 0.01  # seconds: create times are derived from boot ticks; equal up to rounding


@dataclass(frozen=True)
class Proc:
    pid: int
    create_time: float

    @classmethod
    def of(cls, proc: psutil.Process) -> "Proc":
        return cls(proc.pid, proc.create_time())

    @classmethod
    def at(cls, pid: int) -> "Proc | None":
        """The process that has `pid` now (None: there is none)."""
        try:
            return cls.of(psutil.Process(pid))
        except psutil.NoSuchProcess:
            return None


def live(proc: Proc) -> psutil.Process | None:
    """The running, non-zombie process that is still `proc` (same create time), else None."""
    try:
        p = psutil.Process(proc.pid)
        if abs(p.create_time() - proc.create_time) > SAME_PROCESS or p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except psutil.NoSuchProcess:
        return None


def live_pid(pid: int) -> psutil.Process | None:
    """The running, non-zombie process with this pid (for a pid the kernel just listed, e.g. in a cgroup)."""
    try:
        p = psutil.Process(pid)
        return None if p.status() == psutil.STATUS_ZOMBIE else p
    except psutil.NoSuchProcess:
        return None


def running(p: psutil.Process) -> bool:
    """Still the same process (psutil compares create times) and not a zombie waiting for its reaper."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def tree(root: psutil.Process) -> list[Proc]:
    """root and all its descendants."""
    found = [Proc.of(root)]
    for child in root.children(recursive=True):
        try:
            found.append(Proc.of(child))
        except psutil.NoSuchProcess:
            continue
    return found


def group_members(pgid: int, born_since: float = 0.0) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group pgid created at or after born_since."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE and p.create_time() >= born_since - SAME_PROCESS:
                members.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def leads_session(pid: int) -> bool:
    """pid is its own session and group leader: what start_new_session makes, never a shell's job."""
    try:
        return os.getpgid(pid) == pid == os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return False


def signal_group(pgid: int, *sigs: signal.Signals) -> None:
    if pgid <= 1 or pgid in (os.getpgrp(), os.getpid(), os.getsid(0)):
        raise ValueError(f"refusing to signal process group {pgid} (the toolkit's own or init's)")
    try:
        for sig in sigs:
            os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


@functools.cache
def _own_lineage() -> frozenset[int]:
    """This process and its ancestors: never signalled, whatever a tree scan says. Asked once: a live process's
    ancestors can only go (reparented), so a pid kept here is at worst one more that is spared."""
    me = psutil.Process()
    return frozenset({me.pid} | {p.pid for p in me.parents()})


def signal_procs(procs: list[psutil.Process], *sigs: signal.Signals) -> None:
    """Each signal, in order, to each process (SIGTERM then SIGCONT: one look at the targets for both)."""
    spared = _own_lineage()
    for p in procs:
        if p.pid <= 1 or p.pid in spared:
            continue
        try:
            for sig in sigs:
                p.send_signal(sig)  # psutil refuses a reused pid (create time) itself too
        except psutil.NoSuchProcess:
            continue


def describe(p: psutil.Process) -> str:
    """'pid N (name): its command line', secrets masked by the rules of redact.mask_argv (the words at its run
    record's secret positions are masked by value, through the printer's Redactor: records.secret_words)."""
    try:
        with p.oneshot():
            return f"pid {p.pid} ({p.name()}): {command_line(p.cmdline()) or p.name()}"
    except psutil.Error:
        return f"pid {p.pid}"


def wait_any_exit(procs: list[psutil.Process], timeout: float) -> None:
    """Return when one of procs exits or timeout passes. pidfds wake us at the exit itself: psutil.wait_procs
    waits for the zombie to be reaped, which a slow init (here every ~2 s) turns into a fixed delay."""
    fds = []
    try:
        for p in procs:
            try:
                fds.append(os.pidfd_open(p.pid))
            except ProcessLookupError:
                return  # already gone
            except (AttributeError, OSError):  # no pidfd (not Linux, or old kernel): poll by time
                time.sleep(min(timeout, FALLBACK_POLL))
                return
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(max(0, int(timeout * 1000)))
    finally:
        for fd in fds:
            os.close(fd)
