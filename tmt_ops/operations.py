"""The native stop and restart procedures the scripts run: discover, plan, (print or) execute, summarise."""

from __future__ import annotations

from typing import Iterable

from .console import Printer, open_toolkit_log
from .errors import OperationFailed, UsageError
from .lifecycle import Outcome, execute_start, execute_stop, forget_stale, validate
from .native.discovery import discover
from .plan import StopPlan, describe_start, plan_start, plan_stop
from .redact import Redactor
from .registry import Registry, Service

INTERRUPTED = 130


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


def stop(registry: Registry, printer: Printer, services: list[Service], *, force: bool, dry_run: bool) -> int:
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
    results = execute_stop(registry, plan, found, printer, force=force)
    failed = [name for name, r in results.items() if not r.stopped]
    if failed:
        raise OperationFailed(f"could not stop {', '.join(failed)}" + ("" if force else " (use --force to SIGKILL)"))
    printer.ok(f"stopped {len(results)} service(s)")
    return 0


def summary(printer: Printer, outcomes: dict[str, Outcome]) -> None:
    styles = {"running": "ok", "starting": "warn", "not started": "warn"}
    rows, row_styles = [], []
    for o in outcomes.values():
        ready = f"{o.ready_seconds:.2f}s" if o.ready_seconds is not None else "-"
        rows.append((o.service, o.state, o.pid or "-", o.port, ready, o.detail))
        row_styles.append(styles.get(o.state, "error"))
    printer.line()
    printer.table(("SERVICE", "STATE", "PID", "PORT", "READY", "DETAIL"), rows, row_styles)


def restart(registry: Registry, printer: Printer, services: list[Service], *, force: bool,
            skip_health_check: bool, dry_run: bool) -> int:
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
    if stop_plan.steps:
        printer.info(f"stopping {', '.join(s.service for s in stop_plan.steps)}")
        results = execute_stop(registry, stop_plan, found, printer, force=force)
        failed = [name for name, r in results.items() if not r.stopped]
        if failed:
            raise OperationFailed(f"could not stop {', '.join(failed)}, so nothing was started"
                                  + ("" if force else " (use --force to SIGKILL)"))
    outcomes, interrupted = execute_start(registry, start_plan, printer)
    if interrupted:
        summary(printer, outcomes)
        printer.warn("interrupted: nothing more is started; what runs keeps its run record")
        return INTERRUPTED
    unhealthy = [] if skip_health_check else validate(registry, outcomes)
    summary(printer, outcomes)
    if unhealthy:
        raise OperationFailed(f"health validation failed: {', '.join(unhealthy)}")
    down = [f"{o.service} ({o.state})" for o in outcomes.values() if o.state != "running"]
    if down:
        raise OperationFailed(f"not running: {', '.join(down)}")
    printer.ok(f"{len(outcomes)} service(s) running" + ("" if skip_health_check else " and healthy"))
    return 0
