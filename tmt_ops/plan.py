"""Plans as plain data: which steps run in which wave. Each step is its backend's own and carries everything
it needs (native: the processes, signal, grace, pre-stop call and why; docker: the container, its grace and
pre-stop call); the waves come from the registry's dependency graph. --dry-run prints this very object, and
the executor runs it as written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

from .data import dataclass, field
from .registry import Service
from .results import Blocked

if TYPE_CHECKING:
    from .backends import Deployment


@dataclass(frozen=True)
class StopPlan:
    waves: tuple[tuple, ...]  # each wave: stop steps (step.service: the name), together; dependents first
    blocked: Mapping[str, str] = field(default_factory=dict)  # service -> what is in its way
    idle: tuple[str, ...] = ()  # selected services with nothing running
    held: tuple[str, ...] = ()  # of the blocked: those whose port stays held by what this plan does not stop

    @property
    def steps(self) -> list:
        return [step for wave in self.waves for step in wave]

    def lines(self) -> list[str]:
        return [f"stop wave {n}: {step.describe()}" for n, wave in enumerate(self.waves, 1) for step in wave]


@dataclass(frozen=True)
class StartWave:
    steps: tuple  # start steps (step.service: the Service), together
    probe_first: tuple[Service, ...] = ()  # dependencies outside the plan, probed before this wave starts


@dataclass(frozen=True)
class StartPlan:
    waves: tuple[StartWave, ...]

    @property
    def steps(self) -> list:
        return [step for wave in self.waves for step in wave.steps]

    @property
    def services(self) -> list[str]:
        return [step.service.name for step in self.steps]

    def lines(self) -> list[str]:
        lines = []
        for n, wave in enumerate(self.waves, 1):
            if wave.probe_first:
                lines.append(f"wave {n}: probe " + ", ".join(f"{d.display_name} ({d.address})" for d in wave.probe_first))
            lines += [f"wave {n}: {step.describe()}" for step in wave.steps]
        return lines


def plan_stop(deployment: "Deployment", services: Iterable[Service], *, force: bool) -> StopPlan:
    services = list(services)
    decided: dict[str, object] = {}
    for backend, members in deployment.group(services).items():
        decided.update(deployment.backend(backend).plan_stop(members, force=force))
    waves, blocked, idle, held = [], {}, [], []
    for wave in deployment.registry.stop_waves(services):
        steps = []
        for service in wave:
            step = decided.get(service.name)
            if isinstance(step, Blocked):
                blocked[service.name] = step.why
                if step.holds_port:
                    held.append(service.name)
            elif step is None:
                idle.append(service.name)
            else:
                steps.append(step)
        if steps:
            waves.append(tuple(steps))
    return StopPlan(tuple(waves), blocked, tuple(idle), tuple(held))


def plan_start(deployment: "Deployment", services: Iterable[Service], *, restore: bool = False) -> StartPlan:
    """The services' start steps in dependency waves; `restore`: the steps that bring each back the way it last
    ran healthy (a rollback), instead of as the registry defines it now."""
    services = list(services)
    decided: dict[str, object] = {}
    for backend, members in deployment.group(services).items():
        b = deployment.backend(backend)
        decided.update(b.plan_restore(members) if restore else b.plan_start(members))
    chosen = {s.name for s in services}
    probed: set[str] = set()
    waves = []
    for wave in deployment.registry.start_waves(services):
        outside = []
        for service in wave:
            for dep in service.depends_on:
                if dep.name not in chosen and dep.name not in probed:
                    probed.add(dep.name)
                    outside.append(deployment.registry.service(dep.name))
        waves.append(StartWave(tuple(decided[s.name] for s in wave), tuple(outside)))
    return StartPlan(tuple(waves))
