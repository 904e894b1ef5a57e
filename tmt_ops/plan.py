"""Plans as plain data: what stops in which wave, with which signal to which pids and why; what starts
in which wave after probing which outside dependencies. Built from a discovery, pure, printable."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .native.discovery import Discovery, describe_holders
from .ports import Holder
from .registry import Registry, Service


@dataclass(frozen=True)
class StopStep:
    service: str
    target: str  # as Found.target ("cgroup", "group", "tree", "pids"), or "foreign" (a port holder, --force)
    signal: signal.Signals
    grace: float
    pids: tuple[int, ...]
    pgid: int | None = None
    pre_stop: str | None = None  # "POST /api/trading/disable"
    why: str = ""
    cgroup: str | None = None

    def describe(self, force: bool) -> str:
        then = "then SIGKILL" if force else "then fail (no --force)"
        pids = ", ".join(map(str, self.pids))
        if self.target == "group":
            whom = f"process group {self.pgid} (pids {pids})"
        elif self.target == "cgroup":
            whom = f"cgroup {self.cgroup} (pids {pids})"
        else:
            whom = f"pids {pids}" + {"tree": " (process tree)", "pids": " (carrying its run tag)"}.get(self.target, "")
        hook = f"{self.pre_stop}, then " if self.pre_stop else ""
        return f"{self.service}: {hook}{self.signal.name} to {whom}, {self.grace:g}s grace, {then} - {self.why}"


@dataclass(frozen=True)
class StopPlan:
    waves: tuple[tuple[StopStep, ...], ...]
    blocked: Mapping[str, str] = field(default_factory=dict)  # service -> foreign holder left alone
    idle: tuple[str, ...] = ()  # selected services with nothing running

    @property
    def steps(self) -> list[StopStep]:
        return [step for wave in self.waves for step in wave]


@dataclass(frozen=True)
class StartWave:
    services: tuple[str, ...]
    probe_first: tuple[str, ...] = ()  # dependencies outside the plan, probed before this wave


@dataclass(frozen=True)
class StartPlan:
    waves: tuple[StartWave, ...]

    @property
    def services(self) -> list[str]:
        return [name for wave in self.waves for name in wave.services]


def plan_stop(registry: Registry, services: Iterable[Service], found: Discovery, *, force: bool) -> StopPlan:
    waves, blocked, idle = [], {}, []
    for wave in registry.stop_waves(list(services)):
        steps = []
        for service in wave:
            ours = found.ours.get(service.name)
            if ours is not None:
                hook = f"{service.pre_stop.method} {service.pre_stop.path}" if service.pre_stop else None
                steps.append(StopStep(service.name, ours.target, service.stop_signal, service.stop_grace,
                                      tuple(p.pid for p in ours.members), ours.pgid, hook, ours.how, ours.cgroup))
            elif service.name in found.foreign:
                holders: tuple[Holder, ...] = found.foreign[service.name]
                if force:
                    steps.append(StopStep(service.name, "foreign", signal.SIGTERM, service.stop_grace,
                                          tuple(h.pid for h in holders),
                                          why=describe_holders(service, holders) + "; --force"))
                else:
                    blocked[service.name] = describe_holders(service, holders) + ": stop it, or use --force"
            else:
                idle.append(service.name)
        if steps:
            waves.append(tuple(steps))
    return StopPlan(tuple(waves), blocked, tuple(idle))


def plan_start(registry: Registry, services: Iterable[Service]) -> StartPlan:
    services = list(services)
    chosen = {s.name for s in services}
    probed: set[str] = set()
    waves = []
    for wave in registry.start_waves(services):
        outside = []
        for service in wave:
            for dep in service.depends_on:
                if dep.name not in chosen and dep.name not in probed:
                    probed.add(dep.name)
                    outside.append(dep.name)
        waves.append(StartWave(tuple(s.name for s in wave), tuple(outside)))
    return StartPlan(tuple(waves))


def describe_start(registry: Registry, plan: StartPlan) -> list[str]:
    lines = []
    for n, wave in enumerate(plan.waves, 1):
        if wave.probe_first:
            checks = ", ".join(f"{registry.service(d).display_name} ({registry.service(d).address})"
                               for d in wave.probe_first)
            lines.append(f"wave {n}: probe {checks}")
        for name in wave.services:
            service = registry.service(name)
            lines.append(f"wave {n}: start {name} on port {service.port}: {' '.join(service.command)}")
    return lines
