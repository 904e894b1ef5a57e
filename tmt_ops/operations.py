"""The native stop and restart procedures the scripts run: discover, plan, preflight, execute, summarise.

The promise of a restart: without --force it never ends with fewer services up than it began with.
Everything it needs is checked before the first signal (preflight); a service that will not stop halts the
stop waves and what this run stopped is started again; an interrupt in the stop half does the same after
the wave in flight.
"""

from __future__ import annotations

import threading
from typing import Iterable

from . import preflight
from .console import Printer, open_toolkit_log
from .errors import OperationFailed, UsageError
from .interrupts import INTERRUPTED, Interrupts
from .lifecycle import Outcome, StopRun, execute_start, execute_stop, forget_stale, validate
from .native.discovery import Discovery, discover
from .plan import StopPlan, describe_start, plan_start, plan_stop
from .redact import Redactor
from .registry import Registry, Service

NOTHING_MORE = "nothing more is started; what runs keeps running and keeps its run record"


def prepare_output(printer: Printer, registry: Registry) -> None:
    """Mask the registry's secret values too (not only the environment's), and log to logs/tmt-ops.log."""
    printer.redact = Redactor.for_registry(registry)
    open_toolkit_log(registry.log_dir, printer.redact, registry.log_max_bytes, registry.log_backups)


def select(registry: Registry, only: Iterable[str] | None, with_dependents: bool = True) -> list[Service]:
    """The managed services to act on: all, or the named ones (and, unless told not to, their dependents)."""
    if not only:
        return registry.managed
    for name in only:
        service = registry.service(name)
        if not service.managed:
            raise UsageError(f"{name} is {service.group} that native mode neither starts nor stops (managed: false)")
    chosen = registry.with_dependents(only) if with_dependents else registry.select(only)
    return [s for s in chosen if s.managed]


def print_stop_plan(printer: Printer, plan: StopPlan, force: bool) -> None:
    for n, wave in enumerate(plan.waves, 1):
        for step in wave:
            printer.line(f"stop wave {n}: {step.describe(force)}")


def _survivors(registry: Registry, run: StopRun, force: bool) -> str:
    text = f"could not stop {', '.join(run.failed)}" + ("" if force else " (use --force to SIGKILL)")
    hooked = [registry.service(n) for n in run.failed if registry.service(n).pre_stop]
    for s in hooked:  # it runs on, but it was told to stop working first; no hook undoes that
        text += f"; {s.name} still runs after its pre-stop {s.pre_stop.method} {s.pre_stop.path}: check that it works"
    return text


def stop(registry: Registry, printer: Printer, services: list[Service], *, force: bool, dry_run: bool,
         interrupts: Interrupts | None = None) -> int:
    interrupts = interrupts or Interrupts()
    found = discover(registry, services)
    plan = plan_stop(registry, services, found, force=force)
    for name, why in plan.blocked.items():
        printer.warn(f"{name}: {why}")
    if dry_run:
        printer.info("dry run: nothing is signalled" if plan.steps else "dry run: nothing to stop")
        print_stop_plan(printer, plan, force)
        return 0
    if not plan.steps:
        printer.ok("nothing to stop: no TMT service of this registry runs natively")
        forget_stale(registry, found)
        return 0
    printer.info(f"stopping {', '.join(s.service for s in plan.steps)}")
    interrupts.begin_changes("finishing the stop wave in flight; nothing more is stopped")
    run = execute_stop(registry, plan, found, printer, force=force, interrupted=interrupts.requested.is_set)
    left = [s.service for s in plan.steps if s.service not in run.results]
    if run.failed:
        raise OperationFailed(_survivors(registry, run, force) + (f"; left running because they serve it: {', '.join(left)}"
                                                        if left else ""))
    if interrupts.requested.is_set():
        printer.warn(f"interrupted: stopped {', '.join(run.stopped) or 'nothing'}; "
                     f"still running: {', '.join(left) or 'nothing'}")
        return INTERRUPTED
    printer.ok(f"stopped {len(run.results)} service(s)")
    return 0


def summary(printer: Printer, outcomes: dict[str, Outcome]) -> None:
    styles = {"running": "ok", "degraded": "warn", "starting": "warn", "not started": "warn", "untouched": "ok"}
    rows, row_styles = [], []
    for o in outcomes.values():
        ready = f"{o.ready_seconds:.2f}s" if o.ready_seconds is not None else "-"
        rows.append((o.service, o.state, o.pid or "-", o.port, ready, o.detail))
        row_styles.append(styles.get(o.state, "error"))
    printer.line()
    printer.table(("SERVICE", "STATE", "PID", "PORT", "READY", "DETAIL"), rows, row_styles)


def _restore(registry: Registry, printer: Printer, services: list[Service], found: Discovery, run: StopRun,
             interrupts: Interrupts) -> dict[str, Outcome]:
    """Start again what this run stopped; every other selected service is shown as it was left."""
    stopped = [registry.service(n) for n in run.stopped]
    if stopped:
        printer.info(f"starting again what this run stopped: {', '.join(s.name for s in stopped)}")
    interrupts.then = "finishing the start in flight (a second interrupt leaves things as they are)"
    # A fresh event: the interrupt that brought us here must not cancel the restore; only a second one ends it.
    outcomes, _ = execute_start(registry, plan_start(registry, stopped), printer, threading.Event())
    for service in services:
        ours = found.ours.get(service.name)
        pid = (ours.root or ours.members[0]).pid if ours else None
        if service.name in run.failed:
            outcomes[service.name] = Outcome(service.name, "not stopped", service.port, pid,
                                             detail=run.results[service.name].detail)
        elif service.name not in outcomes:
            outcomes[service.name] = Outcome(service.name, "untouched", service.port, pid,
                                             detail="left as it was: the stop halted before it")
    return {s.name: outcomes[s.name] for s in services}


def restart(registry: Registry, printer: Printer, services: list[Service], *, force: bool,
            skip_health_check: bool, dry_run: bool, interrupts: Interrupts | None = None) -> int:
    interrupts = interrupts or Interrupts()
    found = discover(registry, services)
    stop_plan = plan_stop(registry, services, found, force=force)
    start_plan = plan_start(registry, services)
    if dry_run:
        printer.info("dry run: nothing is signalled or started")
        for name, why in stop_plan.blocked.items():
            printer.warn(f"{name}: {why}; it will not start")
        print_stop_plan(printer, stop_plan, force)
        for line in describe_start(registry, start_plan):
            printer.line(line)
        return 0
    problems = preflight.native(registry, services, dict(stop_plan.blocked))
    for problem in problems:
        printer.error(f"preflight: {problem.text}")
    preflight.check(problems)

    if stop_plan.steps:
        printer.info(f"stopping {', '.join(s.service for s in stop_plan.steps)}")
        interrupts.begin_changes("finishing the stop wave in flight, then starting again what this run stopped")
        run = execute_stop(registry, stop_plan, found, printer, force=force, interrupted=interrupts.requested.is_set)
        if run.failed or interrupts.requested.is_set():
            outcomes = _restore(registry, printer, services, found, run, interrupts)
            summary(printer, outcomes)
            if run.failed:
                raise OperationFailed(_survivors(registry, run, force) + "; nothing more was stopped, and what "
                                      "this run stopped was started again")
            printer.warn("interrupted: what this run stopped was started again")
            return INTERRUPTED
    interrupts.begin_changes(NOTHING_MORE)
    outcomes, interrupted = execute_start(registry, start_plan, printer, interrupts.requested)
    if interrupted:
        summary(printer, outcomes)
        printer.warn(f"interrupted: {NOTHING_MORE}")
        return INTERRUPTED
    unhealthy = [] if skip_health_check else validate(registry, outcomes)
    summary(printer, outcomes)
    if unhealthy:
        raise OperationFailed(f"health validation failed: {', '.join(unhealthy)}")
    down = [f"{o.service} ({o.state})" for o in outcomes.values() if not o.up]
    if down:
        raise OperationFailed(f"not running: {', '.join(down)}")
    degraded = [o.service for o in outcomes.values() if o.state == "degraded"]
    if degraded:
        printer.warn(f"{len(outcomes)} service(s) running; degraded: {', '.join(degraded)}")
    else:
        printer.ok(f"{len(outcomes)} service(s) running" + ("" if skip_health_check else " and healthy"))
    return 0
