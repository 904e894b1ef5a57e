"""Carrying out plans, wave by wave, each wave's steps at once. The executor decides nothing: every step says
what to do, its backend does it; the executor only keeps the order, calls the services' hooks (pre-stop before
a stop, post-start once a service is ready), and reports.

Stopping: a wave in flight always finishes; after a wave in which a service would not stop, or once an
interrupt was requested, no further wave starts (the caller decides what to start again).
Starting: dependencies outside the plan are probed before the wave that needs them; a service whose
required dependency did not come up is not started; once `cancel` is set nothing more is launched and the
waits in flight end (what is not ready then is "starting").
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from . import hooks, loglines
from .data import dataclass, field
from .parallel import run_parallel
from .events import Events
from .plan import StartPlan, StopPlan
from .probes import ProbeResult, probe_all
from .registry import Service
from .results import Outcome, StopResult
from .states import SERVING

if TYPE_CHECKING:
    from .backends import Deployment

FAILED_LOG_LINES = 12  # shown of a failed start's output (loglines.telling picks them) ...
SCANNED = 1000  # ... from its last lines


def _by_backend(steps) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for step in steps:
        grouped.setdefault(step.backend, []).append(step)
    return grouped


@dataclass
class StopRun:
    results: dict[str, StopResult] = field(default_factory=dict)  # the services of the waves that ran
    prestopped: dict[str, float] = field(default_factory=dict)  # their pre-stop call answered (when): told to stop working
    broke_off: str | None = None  # an unexpected error ended it (operations.py settles what it left)

    @property
    def stopped(self) -> list[str]:
        return [name for name, r in self.results.items() if r.stopped]

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if not r.stopped]


def execute_stop(deployment: "Deployment", plan: StopPlan, events: Events,
                 interrupted: Callable[[], bool] = lambda: False, run: StopRun | None = None) -> StopRun:
    """`run`: filled as the waves go (a caller that must know what was stopped when an error breaks this off
    passes its own)."""
    run = StopRun() if run is None else run
    for n, wave in enumerate(plan.waves):
        if n and (run.failed or interrupted()):
            break
        for step in wave:
            events.waiting(step.service, "stopping", step.grace)
        calls = {step.service: (lambda h=step.pre_stop: hooks.call(h)) for step in wave if step.pre_stop}
        called = time.time()
        for name, (answered, line) in run_parallel(calls).items():  # "stop taking orders" first; never blocks
            (events.info if answered else events.warn)(line)
            if answered:
                run.prestopped[name] = called
        done = run_parallel({b: (lambda b=b, steps=steps: deployment.backend(b).execute_stop(steps, events))
                             for b, steps in _by_backend(wave).items()})
        for step in wave:
            events.settled(step.service)
            result = next(r[step.service] for r in done.values() if step.service in r)
            run.results[step.service] = result
            for warning in result.warnings:
                events.warn(warning)
            if result.stopped:
                events.ok(f"{step.service}: {result.detail}")
            else:
                events.error(f"{step.service}: {result.detail}")
                for survivor in result.survivors:
                    events.line(f"    {survivor}")
    return run


def _probe_outside(deployment: "Deployment", deps: tuple[Service, ...]) -> dict[str, ProbeResult]:
    """Dependencies outside the plan that must answer (a oneshot job outside it did its work before: met)."""
    deps = tuple(d for d in deps if not d.oneshot)
    if not deps:
        return {}
    targets = [deployment.of(d).address(d) if deployment.of(d) else d for d in deps]
    return probe_all(targets, max(d.probe.timeout for d in deps))


def _blocked_by(service: Service, outcomes: dict[str, Outcome], outside: dict[str, ProbeResult],
                deployment: "Deployment") -> str | None:
    for dep in service.required_deps:
        if dep in outcomes and not outcomes[dep].up:
            return f"requires {dep}, which {'failed' if outcomes[dep].state == 'failed' else 'did not start'}"
        if dep in outside and outside[dep].status not in SERVING:
            d = deployment.registry.service(dep)
            return (f"requires {d.display_name} at {d.address}, which does not answer "
                    f"({outside[dep].error or outside[dep].status.value})")
    return None


def _post_start(deployment: "Deployment", steps: list, events: Events) -> None:
    """Each started service's post-start call ("take orders again"), made where the service answers."""
    calls = {step.service.name: (lambda s=step: hooks.call(hooks.post_start(deployment.backend(s.backend)
                                                                            .address(s.service))))
             for step in steps}
    for answered, line in run_parallel(calls).values():
        (events.info if answered else events.warn)(line)


def execute_start(deployment: "Deployment", plan: StartPlan, events: Events,
                  cancel: threading.Event) -> tuple[dict[str, Outcome], bool]:
    """(outcomes by service, interrupted): once `cancel` is set, nothing more is launched."""
    outcomes: dict[str, Outcome] = {}
    outside: dict[str, ProbeResult] = {}
    needed = {dep for name in plan.services for dep in deployment.registry.service(name).required_deps}
    for n, wave in enumerate(plan.waves, 1):
        if cancel.is_set():
            break
        if wave.probe_first:
            outside.update(_probe_outside(deployment, wave.probe_first))
            silent = [d for d in wave.probe_first
                      if d.name in outside and outside[d.name].status not in SERVING and d.name not in needed]
            if silent:  # one line for the wave, however many: a fresh machine has none of its infrastructure
                events.warn("optional dependencies that do not answer (starting anyway): " + ", ".join(
                    f"{d.display_name} ({outside[d.name].error or outside[d.name].status.value})" for d in silent))
        ready = []
        for step in wave.steps:
            service = step.service
            blocked = _blocked_by(service, outcomes, outside, deployment)
            if blocked:
                outcomes[service.name] = Outcome(service.name, "not started", service.port, detail=blocked)
                events.error(f"{service.name}: not started: {blocked}")
            else:
                ready.append(step)
        if ready:
            events.info(f"wave {n}: starting {', '.join(step.service.name for step in ready)}")
        for step in ready:
            events.waiting(step.service.name, "starting", step.service.startup_timeout)
        done = run_parallel({b: (lambda b=b, steps=steps: deployment.backend(b).execute_start(steps, events, cancel))
                             for b, steps in _by_backend(ready).items()})
        post_start = []
        for step in ready:
            name = step.service.name
            events.settled(name)
            outcome = next(r[name] for r in done.values() if name in r)
            outcomes[name] = outcome
            if outcome.up and step.service.post_start and not step.service.oneshot:
                post_start.append(step)
            if outcome.state == "done":
                events.ok(f"{name}: done in {outcome.ready_seconds:.2f}s ({outcome.runs_as}, {outcome.detail})")
            elif outcome.up:
                extra = f" ({outcome.detail})" if outcome.detail else ""
                say = events.ok if outcome.state == "running" else events.warn
                say(f"{name}: ready in {outcome.ready_seconds:.2f}s ({outcome.runs_as}){extra}")
            elif outcome.state == "failed":
                lines = loglines.telling(step.service, deployment.backend(step.backend).logs(step.service, SCANNED),
                                         FAILED_LOG_LINES)
                events.error(f"{name}: {outcome.detail}" + ("; its output (this run's, errors first):" if lines else ""))
                for line in lines:
                    events.line(f"    | {line}")
        _post_start(deployment, post_start, events)
    interrupted = cancel.is_set()
    for name in plan.services:
        if name not in outcomes:
            outcomes[name] = Outcome(name, "not started", deployment.registry.service(name).port,
                                     detail="interrupted")
    return outcomes, interrupted
