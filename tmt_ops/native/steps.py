"""The native backend's plan steps, everything the executor needs decided in advance (plain data), and the pure
rules that make a service's stop step from what discovery found."""

from __future__ import annotations

import signal
from typing import ClassVar

import psutil

from .. import hooks
from ..data import dataclass
from ..hooks import HookCall, first
from ..redact import command_line
from ..registry import Service
from ..results import Blocked
from .discovery import Discovery, describe_holders
from .procs import Proc, live


BACKEND = "native"  # the backend that carries these steps out (its lookup name)

@dataclass(frozen=True)
class StopStep:
    service: str
    # "cgroup" (every process of its cgroup), "group" (the process group it leads), "tree" / "pids" (exactly
    # these processes), "foreign" (holders of its port that are not the service; --force only)
    target: str
    procs: tuple[Proc, ...]  # each re-identified by its create time before it is signalled
    signal: signal.Signals
    grace: float  # seconds between the signal and the verdict
    kill: bool  # SIGKILL what outlives the grace (--force), else the step fails and names the survivors
    host: str  # the service's address, checked free at the end
    port: int
    pre_stop: HookCall | None
    reason: str
    pgid: int | None = None  # with target "group"
    cgroup: str | None = None  # with target "cgroup"
    frozen: str | None = None  # why it cannot act on its stop signal now (a process stopped by SIGSTOP)
    backend: ClassVar[str] = BACKEND

    @property
    def runs_as(self) -> str:
        return f"pid {self.procs[0].pid}" if self.procs else "-"

    def describe(self) -> str:
        pids = ", ".join(str(p.pid) for p in self.procs)
        whom = {"group": f"process group {self.pgid} (pids {pids})", "cgroup": f"cgroup {self.cgroup} (pids {pids})",
                "tree": f"pids {pids} (process tree)", "pids": f"pids {pids} (carrying its run tag)",
                "foreign": f"pids {pids} (not the service: --force)"}[self.target]
        hook = first(self.pre_stop)
        then = "then SIGKILL" if self.kill else "then fail (no --force)"
        return f"{self.service}: {hook}{self.signal.name} to {whom}, {self.grace:g}s grace, {then} - {self.reason}"


@dataclass(frozen=True)
class StartStep:
    service: Service  # what to spawn (command, directory, environment) and how long it may take to be ready
    # A restore (operations: a rollback): stop what is left of the service's failed start first (its processes,
    # proven ours), and say which definition this is; `retry`: it is the definition that just failed
    restore: str | None = None
    retry: bool = False
    backend: ClassVar[str] = BACKEND
    replaces: ClassVar[bool] = False  # a restart stops it first (its stop step), never in place

    def describe(self) -> str:
        s = self.service
        how = f" ({self.restore})" if self.restore else ""
        return f"start {s.name} on port {s.port}{how}: {command_line(s.command, s.secret_args)}"


def stop_steps(found: Discovery, services: list[Service], *, force: bool) -> dict[str, object]:
    """Pure: each service's stop step from what discovery found (a Blocked for a foreign holder without
    --force, and for a run record not trusted; None when nothing runs)."""
    plan: dict[str, object] = {}
    for s in services:
        ours = found.ours.get(s.name)
        if ours is not None:
            plan[s.name] = StopStep(s.name, ours.target, ours.members, s.stop_signal, s.stop_grace, force, s.host,
                                    s.port, hooks.pre_stop(s), ours.how, ours.pgid, ours.cgroup, frozen(ours.members))
        elif s.name in found.others:  # provably another deployment's: never signalled, --force or not
            plan[s.name] = Blocked(found.others[s.name], holds_port=True)
        elif s.name in found.foreign:
            why = describe_holders(s, found.foreign[s.name])
            if force:  # SIGTERM, its grace, then SIGKILL: never a blind kill, never without --force
                procs = tuple(Proc.at(h.pid) for h in found.foreign[s.name])
                plan[s.name] = StopStep(s.name, "foreign", tuple(p for p in procs if p), signal.SIGTERM,
                                        s.stop_grace, True, s.host, s.port, None, why + "; --force")
            else:
                plan[s.name] = Blocked(found.in_the_way(s), holds_port=True)
        elif s.name in found.distrusted:  # never signalled, not even with --force: it is no holder of ours
            plan[s.name] = Blocked(found.distrusted[s.name])
        else:
            plan[s.name] = None
    return plan


def frozen(procs) -> str | None:
    """'pid N is stopped (SIGSTOP)' for the first of these processes that cannot act on a signal now."""
    for proc in procs:
        p = live(proc)
        try:
            if p is not None and p.status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
                return f"pid {p.pid} is {p.status()} (frozen, e.g. by SIGSTOP)"
        except psutil.NoSuchProcess:
            continue
    return None

