"""Stop one service: pre-stop hook, its stop signal to its group (or tree), watch, SIGKILL with --force,
then prove nothing of it is left and its port is free. Waits watch the processes; nothing sleeps blind."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Callable

import psutil

from ..ports import Holder, port_open
from ..prestop import call_pre_stop
from ..registry import Service
from .discovery import Found
from . import proof
from .procs import describe, group_members, live, live_pid, running, signal_group, signal_procs, wait_any_exit

KILL_WAIT = 5.0  # seconds for SIGKILL to take effect (a process in uninterruptible sleep may need it)
PORT_RELEASE = 1.0  # seconds for the kernel to close a dead listener's socket
REWATCH = 0.25  # seconds: at the latest, look for new group members this often


@dataclass(frozen=True)
class StopResult:
    service: str
    stopped: bool
    detail: str
    survivors: tuple[str, ...] = ()
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()


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


def _port_released(service: Service) -> bool:
    deadline = time.monotonic() + PORT_RELEASE
    while port_open(service.host, service.port, 0.2):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _finish(service: Service, started: float, alive: list[psutil.Process], *, killed: bool,
            warnings: tuple[str, ...]) -> StopResult:
    elapsed = time.monotonic() - started
    if alive:
        names = tuple(describe(p) for p in alive)
        hint = "still alive after SIGKILL" if killed else \
            f"still running {service.stop_grace:g}s after {service.stop_signal.name}: use --force to SIGKILL"
        return StopResult(service.name, False, hint, names, elapsed, warnings)
    if not _port_released(service):
        return StopResult(service.name, False, f"its processes are gone but port {service.port} still answers",
                          (), elapsed, warnings)
    how = "killed (SIGKILL)" if killed else f"stopped ({service.stop_signal.name})"
    return StopResult(service.name, True, f"{how} in {elapsed:.2f}s", (), elapsed, warnings)


def _handles(found: Found) -> tuple[Callable[[], list[psutil.Process]], Callable[[signal.Signals], None]]:
    """(what of the service is alive now, how to signal it) for each kind of target."""
    if found.target == "cgroup":
        def current() -> list[psutil.Process]:  # re-read: what a member forks meanwhile is in it too
            return [p for p in (live_pid(pid) for pid in proof.cgroup_pids(found.cgroup)) if p is not None]

        def send(sig: signal.Signals) -> None:
            if sig != signal.SIGKILL or not proof.kill_cgroup(found.cgroup):
                signal_procs(current(), sig)
    elif found.target == "group":
        born = min(p.create_time for p in found.members)

        def current() -> list[psutil.Process]:
            return group_members(found.pgid, born)

        def send(sig: signal.Signals) -> None:
            signal_group(found.pgid, sig)
    else:  # "tree" or "pids": exactly the processes found, each re-identified by its create time
        procs = [p for p in (live(m) for m in found.members) if p is not None]

        def current() -> list[psutil.Process]:
            return [p for p in procs if running(p)]

        def send(sig: signal.Signals) -> None:
            signal_procs(current(), sig)
    return current, send


def stop_found(service: Service, found: Found, *, force: bool) -> StopResult:
    """Stop a service of ours: its cgroup, the group it leads, or exactly the processes proven its."""
    started = time.monotonic()
    current, send = _handles(found)
    if not current():
        return StopResult(service.name, True, "already gone", (), 0.0)
    hook = call_pre_stop(service)
    warnings = (hook[1],) if hook and not hook[0] else ()
    try:
        send(service.stop_signal)
        alive = _watch(current, service.stop_grace)
        if alive and force:
            send(signal.SIGKILL)
            alive = _watch(current, KILL_WAIT)
            result = _finish(service, started, alive, killed=True, warnings=warnings)
        else:
            result = _finish(service, started, alive, killed=False, warnings=warnings)
    except (PermissionError, psutil.AccessDenied, ValueError) as exc:
        return StopResult(service.name, False, f"cannot signal it: {exc}", tuple(describe(p) for p in current()),
                          time.monotonic() - started, warnings)
    if result.stopped and found.cgroup:
        proof.remove_cgroup(found.cgroup)
    return result


def _still_listening(holder: Holder, port: int) -> psutil.Process | None:
    """The holder's process, if it still listens on port (guards against a pid reused since the scan)."""
    try:
        p = psutil.Process(holder.pid)
        if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in p.net_connections("inet")):
            return p
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return None


def stop_foreign(service: Service, holders: tuple[Holder, ...]) -> StopResult:
    """--force only: SIGTERM the processes holding the service's port, its grace, then SIGKILL."""
    started = time.monotonic()
    procs = [p for p in (_still_listening(h, service.port) for h in holders) if p is not None]

    def current() -> list[psutil.Process]:
        return [p for p in procs if running(p)]

    try:
        signal_procs(current(), signal.SIGTERM)
        alive = _watch(current, service.stop_grace)
        killed = bool(alive)
        if alive:
            signal_procs(alive, signal.SIGKILL)
            alive = _watch(current, KILL_WAIT)
    except psutil.AccessDenied as exc:
        return StopResult(service.name, False, f"cannot signal the holder of port {service.port}: {exc}",
                          tuple(describe(p) for p in current()), time.monotonic() - started)
    result = _finish(service, started, alive, killed=killed, warnings=())
    return StopResult(result.service, result.stopped, f"foreign holder {result.detail}", result.survivors,
                      result.seconds)
