"""Carry out one native stop step as written: its signal to its target, watch, SIGKILL if the step says so,
then prove nothing of it is left (its cgroup is empty) and its port is free. Waits watch the processes;
nothing sleeps blind. The step decided everything; this only does it (the pre-stop call is the executor's).

In two halves, so that a wave's services get their signals together: signal_first (one look, the signal) for
every step of the wave one right after another, then finish (the watch) for each in a thread of its own. Signalled
from a thread each, 20 steps took up to 100 ms from the first signal to the last on 2 cores.
"""

from __future__ import annotations

import signal
import time
from typing import Callable

import psutil

from ..data import dataclass
from ..ports import port_open
from ..results import StopResult
from . import proof
from .procs import describe, group_members, live, live_pid, running, signal_group, signal_procs, wait_any_exit
from .steps import StopStep

KILL_WAIT = 5.0  # seconds for SIGKILL to take effect (a process in uninterruptible sleep may need it)
PORT_RELEASE = 1.0  # seconds for the kernel to close a dead listener's socket
REWATCH = 0.25  # seconds: at the latest, look for new group members this often


def _watch(current: Callable[[], list[psutil.Process]], seconds: float) -> list[psutil.Process]:
    """Wait until current() is empty or `seconds` pass, waking at each exit; returns what is still alive.
    current() is asked again after every wake so a group member forked meanwhile is watched too."""
    deadline = time.monotonic() + seconds
    while True:
        alive = current()
        left = deadline - time.monotonic()
        if not alive or left <= 0:
            return alive
        wait_any_exit(alive, min(left, REWATCH))


def _port_released(step: StopStep) -> bool:
    deadline = time.monotonic() + PORT_RELEASE
    while port_open(step.host, step.port, 0.2):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _handles(step: StopStep) -> tuple[Callable[[], list[psutil.Process]], Callable[..., None]]:
    """(what of the target is alive now, how to send it signals, in order, after one look at it) for each kind
    of target."""
    if step.target == "cgroup":
        def current() -> list[psutil.Process]:  # re-read: what a member forks meanwhile is in it too
            return [p for p in (live_pid(pid) for pid in proof.cgroup_pids(step.cgroup)) if p is not None]

        def send(*sigs: signal.Signals) -> None:
            if sigs != (signal.SIGKILL,) or not proof.kill_cgroup(step.cgroup):
                signal_procs(current(), *sigs)
    elif step.target == "group":
        born = min(p.create_time for p in step.procs)

        def current() -> list[psutil.Process]:
            return group_members(step.pgid, born)

        def send(*sigs: signal.Signals) -> None:
            signal_group(step.pgid, *sigs)
    else:  # exactly the processes planned, each re-identified by its create time (never a reused pid)
        procs = [p for p in (live(m) for m in step.procs) if p is not None]

        def current() -> list[psutil.Process]:
            return [p for p in procs if running(p)]

        def send(*sigs: signal.Signals) -> None:
            signal_procs(current(), *sigs)
    return current, send


@dataclass
class Signalled:
    """A step whose stop signal is sent: what finish() watches."""
    step: StopStep
    current: Callable[[], list[psutil.Process]]
    send: Callable[..., None]
    started: float  # time.monotonic() before its first look


def signal_first(step: StopStep) -> Signalled | StopResult:
    """One look at the step's target and its stop signal sent (nothing waits here: a wave's services are all
    signalled one right after another, then each watched); the StopResult when it is already gone or cannot be
    signalled."""
    started = time.monotonic()
    current, send = _handles(step)
    if not current():
        return StopResult(step.service, True, "already gone", (), 0.0)
    try:
        send(step.signal, signal.SIGCONT)  # as systemd does: a process stopped by SIGSTOP acts on its signal now
    except (PermissionError, psutil.AccessDenied, ValueError) as exc:
        return _unsignalled(step, current, exc, started)
    return Signalled(step, current, send, started)


def finish(signalled: Signalled | StopResult) -> StopResult:
    """Watch a signalled step to its end: its grace, SIGKILL if the step says so, then nothing of it left and
    its port free."""
    if isinstance(signalled, StopResult):
        return signalled
    step, current, send, started = signalled.step, signalled.current, signalled.send, signalled.started
    try:
        alive = _watch(current, step.grace)
        killed = bool(alive) and step.kill
        if killed:
            send(signal.SIGKILL)
            alive = _watch(current, KILL_WAIT)
    except (PermissionError, psutil.AccessDenied, ValueError) as exc:
        return _unsignalled(step, current, exc, started)
    elapsed = time.monotonic() - started
    whose = "foreign holder " if step.target == "foreign" else ""
    if alive:
        hint = "still alive after SIGKILL" if killed else \
            f"still running {step.grace:g}s after {step.signal.name}: use --force to SIGKILL"
        return StopResult(step.service, False, whose + hint, tuple(describe(p) for p in alive), elapsed)
    if step.port is not None and not _port_released(step):
        return StopResult(step.service, False, f"its processes are gone but port {step.port} still answers",
                          (), elapsed)
    if step.cgroup:
        proof.remove_cgroup(step.cgroup)
    how = "killed (SIGKILL)" if killed else f"stopped ({step.signal.name})"
    return StopResult(step.service, True, f"{whose}{how} in {elapsed:.2f}s", (), elapsed)


def execute(step: StopStep) -> StopResult:
    """One step on its own, start to end."""
    return finish(signal_first(step))


def _unsignalled(step: StopStep, current: Callable[[], list[psutil.Process]], exc: Exception,
                 started: float) -> StopResult:
    return StopResult(step.service, False, f"cannot signal it: {exc}", tuple(describe(p) for p in current()),
                      time.monotonic() - started)
