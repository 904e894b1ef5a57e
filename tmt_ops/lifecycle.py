"""Carrying out plans: stop waves and start waves, each wave's services in parallel threads.

Stopping: wave by wave; a wave in flight always finishes. After a wave in which a service would not stop,
or once an interrupt was requested, no further wave starts: the caller decides what to start again.
Starting: outside dependencies are probed before the wave that needs them; each service is spawned, then
its probe polled until it passes, its startup timeout ends, or its process exits (fail at once). A failed
service's dependents are not started. When `cancel` is set nothing more is launched; what runs keeps its
record.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from .console import Printer
from .errors import OperationFailed
from .native import records
from .native.discovery import Discovery, describe_holders
from .native.spawn import Spawned, log_tail, spawn
from .native.stop import StopResult, stop_found, stop_foreign
from .plan import StartPlan, StopPlan
from .ports import port_holders, port_open
from .preflight import READY
from .probes import ProbeResult, probe, probe_all
from .registry import Registry, Service
from .states import Health

POLL = 0.01  # seconds between readiness probes (a probe of a local port costs about a millisecond)
UP = ("running", "degraded")  # summary states of a service that serves

T = TypeVar("T")


@dataclass
class Outcome:
    """One row of the summary."""

    service: str
    state: str  # running / degraded / failed / starting / not started / unhealthy / not stopped / untouched
    port: int
    pid: int | None = None
    ready_seconds: float | None = None
    detail: str = ""

    @property
    def up(self) -> bool:
        return self.state in UP


def run_wave(jobs: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Run the jobs of one wave at once and wait for all of them (an interrupt only sets a flag: the jobs
    that watch it return early, the others finish)."""
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="wave") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
    return {name: future.result() for name, future in futures.items()}


# -- stopping -------------------------------------------------------------------------------------
@dataclass
class StopRun:
    results: dict[str, StopResult] = field(default_factory=dict)
    halted: bool = False  # a wave after the last one run was not started (a survivor, or an interrupt)

    @property
    def stopped(self) -> list[str]:
        return [name for name, r in self.results.items() if r.stopped]

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if not r.stopped]


def execute_stop(registry: Registry, plan: StopPlan, found: Discovery, printer: Printer, *, force: bool,
                 interrupted: Callable[[], bool] = lambda: False) -> StopRun:
    """Stop wave by wave; after a wave with a survivor, or once `interrupted()`, stop no further wave."""
    run = StopRun()
    for n, wave in enumerate(plan.waves):
        if n and (run.failed or interrupted()):
            run.halted = True
            break
        jobs = {}
        for step in wave:
            service = registry.service(step.service)
            if step.target == "foreign":
                jobs[step.service] = lambda s=service: stop_foreign(s, found.foreign[s.name])
            else:
                jobs[step.service] = lambda s=service: stop_found(s, found.ours[s.name], force=force)
        for name, result in run_wave(jobs).items():
            run.results[name] = result
            for warning in result.warnings:
                printer.warn(warning)
            if result.stopped:
                records.remove(registry.state_dir, name)
                printer.ok(f"{name}: {result.detail}")
            else:
                printer.error(f"{name}: {result.detail}")
                for survivor in result.survivors:
                    printer.line(f"    {survivor}")
    forget_stale(registry, found)
    return run


def forget_stale(registry: Registry, found: Discovery) -> None:
    """Drop records whose process is gone: they only mislead the next run."""
    for name in found.stale:
        records.remove(registry.state_dir, name)


# -- starting -------------------------------------------------------------------------------------
def wait_ready(service: Service, spawned: Spawned, cancel: threading.Event) -> tuple[Health | None, str]:
    """(the probe's last verdict once it serves, else None; why not): poll until it serves, the process
    exits, or the startup timeout ends."""
    deadline = spawned.started + service.startup_timeout
    last: ProbeResult | None = None
    while not cancel.is_set():
        code = spawned.process.poll()
        if code is not None:
            return None, f"exited with code {code} before it was ready"
        left = deadline - time.monotonic()
        if left <= 0:
            why = last.error if last and last.error else (last.status.value if last else "no answer")
            return None, f"not ready after {service.startup_timeout:g}s (last probe: {why})"
        last = probe(service, timeout=max(left, 0.05))
        if last.status in READY:
            return last.status, "" if last.status is Health.HEALTHY else f"{last.status.value}: {last.error}"
        time.sleep(POLL)
    return None, "interrupted before it was ready"


def start_service(registry: Registry, service: Service, printer: Printer, cancel: threading.Event) -> Outcome:
    """Spawn one service and wait for it; failures are printed here, with the log's last lines."""
    if port_open(service.host, service.port, 0.2):
        why = describe_holders(service, port_holders(service.port)) + ": stop it, or use --force"
        printer.error(f"{service.name}: {why}")
        return Outcome(service.name, "failed", service.port, detail=why)
    try:
        spawned = spawn(registry, service)
    except OperationFailed as exc:
        printer.error(str(exc))
        return Outcome(service.name, "failed", service.port, detail=str(exc))
    pid = spawned.process.pid
    printer.line(f"  {service.name}: started pid {pid}: {' '.join(service.command)}")
    serving, why = wait_ready(service, spawned, cancel)
    if serving is not None:
        return Outcome(service.name, "running" if serving is Health.HEALTHY else "degraded", service.port, pid,
                       round(time.monotonic() - spawned.started, 2), why)
    if cancel.is_set():
        return Outcome(service.name, "starting", service.port, pid, detail=why)
    exited = spawned.process.poll() is not None
    if exited:
        records.remove(registry.state_dir, service.name)
    else:
        why += "; left running for inspection (stop-trading-system.py stops it)"
    printer.error(f"{service.name}: {why}; last lines of {spawned.record.log_file}:")
    for line in log_tail(Path(spawned.record.log_file), spawned.log_offset):
        printer.line(f"    | {line}")
    return Outcome(service.name, "failed", service.port, None if exited else pid, detail=why)


def _blocked_by(service: Service, outcomes: dict[str, Outcome], outside: dict[str, ProbeResult],
                registry: Registry) -> str | None:
    for dep in service.required_deps:
        if dep in outcomes and not outcomes[dep].up:
            return f"requires {dep}, which {'failed' if outcomes[dep].state == 'failed' else 'did not start'}"
        if dep in outside and outside[dep].status not in READY:
            d = registry.service(dep)
            return (f"requires {d.display_name} at {d.address}, which does not answer "
                    f"({outside[dep].error or outside[dep].status.value})")
    return None


def execute_start(registry: Registry, plan: StartPlan, printer: Printer,
                  cancel: threading.Event) -> tuple[dict[str, Outcome], bool]:
    """(outcomes by service, interrupted): once `cancel` is set, nothing more is launched."""
    outcomes: dict[str, Outcome] = {}
    outside: dict[str, ProbeResult] = {}
    for n, wave in enumerate(plan.waves, 1):
        if cancel.is_set():
            break
        if wave.probe_first:
            deps = [registry.service(d) for d in wave.probe_first]
            outside.update(probe_all(deps, max(d.probe.timeout for d in deps)))
            for dep in deps:
                result = outside[dep.name]
                if result.status not in READY and not any(
                        dep.name in registry.service(s).required_deps for s in plan.services):
                    printer.warn(f"{dep.display_name} at {dep.address} does not answer "
                                 f"({result.error or result.status.value}); optional, starting anyway")
        jobs = {}
        for name in wave.services:
            service = registry.service(name)
            blocked = _blocked_by(service, outcomes, outside, registry)
            if blocked:
                outcomes[name] = Outcome(name, "not started", service.port, detail=blocked)
                printer.error(f"{name}: not started: {blocked}")
            else:
                jobs[name] = lambda s=service: start_service(registry, s, printer, cancel)
        if jobs:
            printer.info(f"wave {n}: starting {', '.join(jobs)}")
        for name, outcome in run_wave(jobs).items():
            outcomes[name] = outcome
            if outcome.up:
                extra = f" ({outcome.detail})" if outcome.detail else ""
                say = printer.ok if outcome.state == "running" else printer.warn
                say(f"{name}: ready in {outcome.ready_seconds:.2f}s (pid {outcome.pid}){extra}")
    interrupted = cancel.is_set()
    for name in plan.services:
        if name not in outcomes:
            outcomes[name] = Outcome(name, "not started", registry.service(name).port, detail="interrupted")
    return outcomes, interrupted


def validate(registry: Registry, outcomes: dict[str, Outcome]) -> list[str]:
    """Final health validation of what started: one probe round; the names of services that do not serve.
    A service that answers degraded stays up, with the state "degraded"."""
    running = [registry.service(n) for n, o in outcomes.items() if o.up]
    failing = []
    for name, result in probe_all(running, registry.health.deadline).items():
        if result.status is Health.HEALTHY:
            continue
        outcomes[name].detail = result.error or result.status.value
        if result.status is Health.DEGRADED:
            outcomes[name].state = "degraded"
        else:
            outcomes[name].state = "unhealthy"
            failing.append(name)
    return failing
