"""Putting back what a restart took down, and keeping what it needs to.

A restart is a transaction: it ends with every service that ran at its start running, or with the new
definition running healthy. So:
- what a start brings up ready and healthy is committed: its backend keeps what it ran (native: the
  definition; compose: the image) as the way to come back to, and a pre-stop record of it is cleared;
- whatever this run took down (stopped, or replaced in place) that is not up when its start half ends (a new
  command died, a probe never passed, a dependency hung, an interrupt) is started again the way it last ran
  healthy: its backend's restore steps, in dependency waves, after what is left of the failed start. A
  service that failed with exactly what it would come back to is not tried again (it would fail again); one
  that an interrupt left still starting with exactly that is waited for, not stopped and started again (native);
- a service that survived its stop after its pre-stop call ("stop taking orders") runs on, but may not be
  working: a restart undoes the call where the registry gives a post_start hook; otherwise (and after a
  plain stop) a record says so, and system-health reports it until the service is started again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterable

from . import hooks, prestopped
from .errors import TmtError
from .events import Events
from .executor import StopRun, execute_start
from .plan import StartPlan, plan_start
from .results import Outcome

if TYPE_CHECKING:
    from .backends import Deployment

NOT_ROLLED_BACK = "not rolled back"  # the state of a service whose way back is exactly what just failed


def broke_off(events: Events, what: str, exc: Exception) -> str:
    """One line for an error that ended a part of the run (a TmtError's own words; anything else is a bug, whose
    traceback goes to the toolkit log as a detail line); returns the line."""
    import traceback
    text = f"{what} broke off: {exc}" if isinstance(exc, TmtError) else \
        f"{what} broke off on an internal error ({type(exc).__name__}: {exc}; the traceback is in the toolkit log)"
    events.error(text)
    if not isinstance(exc, TmtError):
        events.detail("".join(traceback.format_exception(exc)).rstrip())
    return text


def commit(deployment: "Deployment", plan: StartPlan, outcomes: dict[str, Outcome], events: Events) -> None:
    """After a start: what came up ready and healthy is what to come back to; what came up at all no longer runs
    after a pre-stop call."""
    up = [step for step in plan.steps if outcomes.get(step.service.name) and outcomes[step.service.name].up]
    _clear_prestopped(deployment, [step.service.name for step in up], events)
    healthy: dict[str, list] = {}
    for step in up:
        if outcomes[step.service.name].state == "running":
            healthy.setdefault(step.backend, []).append(step)
    for backend, steps in healthy.items():
        deployment.backend(backend).commit(steps, events)


def _clear_prestopped(deployment: "Deployment", names: list[str], events: Events) -> None:
    if not names:
        return
    try:
        prestopped.clear(deployment.registry.state_dir, names)
    except TmtError as exc:
        events.warn(f"cannot clear the pre-stop records of {', '.join(names)} ({exc}): system-health may still "
                    "report them as running after their pre-stop call")


def survivors(deployment: "Deployment", run: StopRun, events: Events, *, undo: bool) -> None:
    """Services that run on after their pre-stop call answered (their stop failed, or the stop broke off on an
    error before it signalled them): undone by their post-start call where `undo` (a restart puts things
    back) and the registry has one; else recorded, and said."""
    registry = deployment.registry
    stopped = set(run.stopped)
    for name in (n for n in run.prestopped if n not in stopped):
        service = registry.service(name)
        hook = service.pre_stop.describe()
        if undo and service.post_start:
            answered, line = hooks.call(hooks.post_start(deployment.of(service).address(service)))
            (events.info if answered else events.warn)(line)
            if answered:
                events.info(f"{name}: its pre-stop {hook} is undone: it works as before")
                continue
        try:
            prestopped.mark(registry.state_dir, name, hook, run.prestopped[name])
            kept = "system-health reports it until it is started again"
        except TmtError as exc:
            kept = f"and this cannot be recorded for system-health ({exc})"
        events.warn(f"{name} runs on after its pre-stop {hook}: it may not be working (not trading); {kept}")


def put_back(deployment: "Deployment", names: Iterable[str], failed: set[str], events: Events,
             why: str) -> dict[str, Outcome]:
    """Start again these services (taken down by this run, not up now) the way they last ran healthy, in
    dependency waves. `failed`: those whose new start failed; one whose way back is exactly what failed is not
    tried again. Only a second interrupt (which ends the process) stops this."""
    registry = deployment.registry
    chosen = set(names)
    services = [s for s in registry.services.values() if s.name in chosen]
    plan = plan_start(deployment, services, restore=True)
    again = {step.service.name for step in plan.steps if step.retry and step.service.name in failed}
    outcomes: dict[str, Outcome] = {}
    for name in again:
        outcomes[name] = Outcome(name, NOT_ROLLED_BACK, registry.service(name).port,
                                 detail="it failed with the very definition it last ran healthy with")
    if again:
        plan = plan_start(deployment, [s for s in services if s.name not in again], restore=True)
    if plan.steps:
        events.warn(f"starting again what this run took down ({why}), the way it last ran healthy: "
                    f"{', '.join(plan.services)}")
        for step in plan.steps:
            events.line(f"  {step.service.name}: {step.restore}")
        try:
            started, _ = execute_start(deployment, plan, events, threading.Event())
        except Exception as exc:  # what the backends can tell of what runs is said after this
            text = broke_off(events, "the rollback", exc)
            started = {name: Outcome(name, "failed", registry.service(name).port, detail=text) for name in plan.services}
        commit(deployment, plan, started, events)
        for step in plan.steps:
            outcome = started[step.service.name]
            if outcome.up:
                outcome.detail = "; ".join(filter(None, [f"rolled back to {step.restore}", outcome.detail]))
        outcomes.update(started)
    return {s.name: outcomes[s.name] for s in services}
