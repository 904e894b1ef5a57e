"""Carrying out plans: stop waves and start waves, each wave's services in parallel threads.

Starting: outside dependencies are probed before the wave that needs them; each service is spawned,
then its probe polled until it passes, its startup timeout ends, or its process exits (fail at once).
A failed service's dependents are not started. Ctrl-C (cancel) stops launching; what runs keeps its record.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
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
from .probes import ProbeResult, probe, probe_all
from .registry import Registry, Service
from .states import Health

POLL = 0.01  # seconds between readiness probes (a probe of a local port costs about a millisecond)
READY = (Health.HEALTHY, Health.DEGRADED)  # it answers and serves; degraded is reported, not fatal

T = TypeVar("T")


@dataclass
class Outcome:
    """One row of the summary."""

    service: str
    state: str  # running / failed / starting / not started / stopped
    port: int
    pid: int | None = None
    ready_seconds: float | None = None
    detail: str = ""


def run_wave(jobs: dict[str, Callable[[], T]], cancel: threading.Event) -> dict[str, T]:
    """Run the jobs of one wave at once. Ctrl-C sets cancel: the jobs notice, return, and their results
    (a service spawned but not yet ready, say) are still reported; the caller checks cancel."""
    if not jobs:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="wave")
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    try:
        pending = set(futures.values())
        while pending:
            _, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
    except KeyboardInterrupt:
        cancel.set()
    finally:
        pool.shutdown(wait=True)
    return {name: future.result() for name, future in futures.items()}


# -- stopping -------------------------------------------------------------------------------------
def execute_stop(registry: Registry, plan: StopPlan, found: Discovery, printer: Printer, *,
                 force: bool) -> dict[str, StopResult]:
    results: dict[str, StopResult] = {}
    cancel = threading.Event()
    for wave in plan.waves:
        jobs = {}
        for step in wave:
            service = registry.service(step.service)
            if step.target == "foreign":
                jobs[step.service] = lambda s=service: stop_foreign(s, found.foreign[s.name])
            else:
                jobs[step.service] = lambda s=service: stop_found(s, found.ours[s.name], force=force)
        for name, result in run_wave(jobs, cancel).items():
            results[name] = result
            for warning in result.warnings:
                printer.warn(warning)
            if result.stopped:
                records.remove(registry.state_dir, name)
                printer.ok(f"{name}: {result.detail}")
            else:
                printer.error(f"{name}: {result.detail}")
                for survivor in result.survivors:
                    printer.line(f"    {survivor}")
        if cancel.is_set():
            raise KeyboardInterrupt
    forget_stale(registry, found)
    return results


def forget_stale(registry: Registry, found: Discovery) -> None:
    """Drop records whose process is gone: they only mislead the next run."""
    for name in found.stale:
        records.remove(registry.state_dir, name)


# -- starting -------------------------------------------------------------------------------------
def wait_ready(service: Service, spawned: Spawned, cancel: threading.Event) -> tuple[bool, str]:
    """(ready, why not): poll the probe until it passes, the process exits, or the startup timeout ends."""
    deadline = spawned.started + service.startup_timeout
    last: ProbeResult | None = None
    while not cancel.is_set():
        code = spawned.process.poll()
        if code is not None:
            return False, f"exited with code {code} before it was ready"
        left = deadline - time.monotonic()
        if left <= 0:
            why = last.error if last and last.error else (last.status.value if last else "no answer")
            return False, f"not ready after {service.startup_timeout:g}s (last probe: {why})"
        last = probe(service, timeout=max(left, 0.05))
        if last.status in READY:
            return True, "" if last.status is Health.HEALTHY else f"ready but {last.status.value}: {last.error}"
        time.sleep(POLL)
    return False, "interrupted before it was ready"


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
    ready, why = wait_ready(service, spawned, cancel)
    if ready:
        return Outcome(service.name, "running", service.port, pid, round(time.monotonic() - spawned.started, 2), why)
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
        if dep in outcomes and outcomes[dep].state != "running":
            return f"requires {dep}, which {'failed' if outcomes[dep].state == 'failed' else 'did not start'}"
        if dep in outside and outside[dep].status not in READY:
            d = registry.service(dep)
            return (f"requires {d.display_name} at {d.address}, which does not answer "
                    f"({outside[dep].error or outside[dep].status.value})")
    return None


def execute_start(registry: Registry, plan: StartPlan, printer: Printer) -> tuple[dict[str, Outcome], bool]:
    """(outcomes by service, interrupted)."""
    outcomes: dict[str, Outcome] = {}
    outside: dict[str, ProbeResult] = {}
    cancel = threading.Event()
    try:
        for n, wave in enumerate(plan.waves, 1):
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
            for name, outcome in run_wave(jobs, cancel).items():
                outcomes[name] = outcome
                if outcome.state == "running":
                    extra = f" ({outcome.detail})" if outcome.detail else ""
                    printer.ok(f"{name}: ready in {outcome.ready_seconds:.2f}s (pid {outcome.pid}){extra}")
            if cancel.is_set():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        for name in plan.services:
            if name not in outcomes:
                outcomes[name] = Outcome(name, "not started", registry.service(name).port, detail="interrupted")
        return outcomes, True
    return outcomes, False


def validate(registry: Registry, outcomes: dict[str, Outcome]) -> list[str]:
    """Final health validation of what started: one probe round; the names of failing services."""
    running = [registry.service(n) for n, o in outcomes.items() if o.state == "running"]
    failing = []
    for name, result in probe_all(running, registry.health.deadline).items():
        if result.status not in READY:
            outcomes[name].state = "unhealthy"
            outcomes[name].detail = result.error or result.status.value
            failing.append(name)
    return failing
