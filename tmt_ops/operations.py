"""The operations the scripts run, the same for every backend: plan, preflight, execute, validate; each returns
a Result (results.py) that the CLI renders and turns into the exit code.

The promise of a restart: it is a transaction. It ends with every service that ran at its start running, or
with the new definition running healthy; never with less (rollback.py). All it needs is checked before the
first change (preflight: what must answer, what must not be in the way, what would not stop; then the
backends' own preparation such as image builds). A service that will not stop halts the stop; a start
that fails for any reason, or an interrupt anywhere, ends the run in the nearest safe state: what this run
took down and is not up is started again the way it last ran healthy. A backend that restarts in place (swarm:
a rolling update per service, in the start waves) has no stop half: its services are replaced one wave at a
time, each once the services it needs are ready again.

Healthy enough, one rule for every operation that starts something: a service counts by its final health
check (native: its own process answers; docker: its own container) and the registry's `critical` flag, as
system-health judges it (health/severity.py): critical not healthy fails the operation (exit 1); anything
less is a warning.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable

from . import rollback, stopped
from .backends import Deployment
from .data import dataclass, replace
from .errors import TmtError, UsageError
from .events import Events
from .executor import StopRun, execute_start, execute_stop
from .health.severity import of_health, worst
from .interrupts import INTERRUPTED, Interrupts
from .plan import StartPlan, StopPlan, plan_start, plan_stop
from .preflight import Problem, check, dependencies, needed, probe_round, unresponsive
from .registry import Service
from .results import Outcome, Result, StopResult
from .states import Health, Overall, ServiceState

NOTHING_MORE = "nothing more is started; what runs keeps running"
PUT_BACK = "what this run stopped was started again the way it last ran healthy"


@dataclass(frozen=True)
class Options:
    # SIGKILL what outlives its grace; stop what does not answer (frozen, hung); native: also stop unidentified
    # holders of a service port (never what is provably another deployment's)
    force: bool = False
    skip_health_check: bool = False
    dry_run: bool = False
    build: bool = True  # --no-build: False
    grace: float | None = None  # -t/--timeout: every stopped service's stop_grace, for this run


def _graced(services: list[Service], options: Options) -> list[Service]:
    """The services as this run stops them: with -t/--timeout, each with that stop grace (compose's `stop -t`)."""
    return services if options.grace is None else [replace(s, stop_grace=options.grace) for s in services]


def select(deployment: Deployment, only: Iterable[str] | None, *, with_dependents: bool = True,
           with_infra: bool = False) -> list[Service]:
    """The services to act on: the named ones (registry or compose names) and, unless told not to, their
    dependents; or every service the deployment runs, infrastructure only `with_infra`."""
    registry = deployment.registry
    if not only:
        return [s for s in deployment.managed if with_infra or s.group != "infrastructure"]
    names = [registry.service(name).name for name in only]
    for name in names:
        service = registry.service(name)
        if deployment.of(service) is None:
            raise UsageError(f"{name} is {service.group} outside this {deployment.mode} deployment: tmt-ops neither "
                             "starts nor stops it (managed: false; give it `backend: compose` to run it in a container)")
    chosen = registry.with_dependents(names) if with_dependents else registry.select(names)
    return [s for s in chosen if deployment.of(s) is not None]


def not_running(deployment: Deployment, services: list[Service]) -> list[Service]:
    """The services that do not run now; a job whose last run is known to have ended well (exit 0) is done,
    not down (a restart runs jobs again; a start does not)."""
    down = set()
    for backend, members in deployment.group(services).items():
        down |= {name for name, status in deployment.backend(backend).statuses(members).items()
                 if status.state not in (ServiceState.RUNNING, ServiceState.STARTING)
                 and not (deployment.registry.service(name).oneshot and status.exit_code == 0)}
    return [s for s in services if s.name in down]


def bring_up(deployment: Deployment, services: list[Service], *, needs: bool = False) -> list[Service]:
    """The services to start: these, and what they depend on that the deployment runs and that does not run yet:
    the infrastructure (a native restart brings up its compose-run databases first), or with `needs` every
    dependency (a start, as compose's `up SERVICE`: what the selection needs comes up with it)."""
    chosen = {s.name for s in services}
    needed: list[Service] = []
    todo = list(services)
    while todo:
        for dep in todo.pop().depends_on:
            d = deployment.registry.service(dep.name)
            if d.name not in chosen and (needs or d.group == "infrastructure") and deployment.of(d) is not None:
                chosen.add(d.name)
                needed.append(d)
                todo.append(d)
    keep = {s.name for s in services} | {s.name for s in not_running(deployment, needed)}
    return [s for s in deployment.registry.services.values() if s.name in keep]


def _plan_lines(stop: StopPlan | None, start: StartPlan | None) -> list[str]:
    return (stop.lines() if stop else []) + (start.lines() if start else [])


def _dry_run(events: Events, stop: StopPlan | None, start: StartPlan | None) -> Result:
    events.info("dry run: this is the plan; nothing is signalled, stopped or started")
    for name, why in (stop.blocked if stop else {}).items():
        events.warn(f"{name}: {why}")
    for line in _plan_lines(stop, start):
        events.line(line)
    return Result(0, last="dry run: nothing was changed")


def _about_to_run(events: Events, stop: StopPlan | None, start: StartPlan | None) -> None:
    """--verbose: the plan that is about to run, as --dry-run would print it."""
    for line in _plan_lines(stop, start):
        events.detail(f"plan: {line}")


def check_and_prepare(deployment: Deployment, starting: list[Service], stop: StopPlan | None, events: Events,
                      force: bool = False, start: StartPlan | None = None, build: bool = True) -> None:
    """Before any change: every problem, one line each (PreflightFailed, exit 2 or 1, when there is one); then
    the backends' own preparation that may fail (docker: pull and build images). What is to be stopped (the stop
    plan's steps, and the start plan's that replace a running service in place) must be able to stop."""
    problems: list[Problem] = []
    for backend, members in deployment.group(starting).items():
        problems += deployment.backend(backend).preflight(members)
    problems += [Problem(f"{name}: {why}", 1) for name, why in (stop.blocked if stop else {}).items()]
    steps = [*(stop.steps if stop else ()), *(s for s in (start.steps if start else ()) if s.replaces)]
    registry = deployment.registry
    stopping = [registry.service(s.service if isinstance(s.service, str) else s.service.name) for s in steps]
    answers = probe_round(deployment, [*needed(deployment, starting), *stopping])
    problems += dependencies(deployment, starting, answers)
    for name, why in unresponsive(steps, answers).items():
        if force:
            events.warn(f"{name}: {why}: --force: it is stopped all the same (killed if it outlives its grace)")
        else:
            problems.append(Problem(f"{name}: {why}: it would not stop, and what needs it could not start again: "
                                    "find out why (its log), or use --force to stop it all the same (it is killed "
                                    "if it outlives its grace)", 1))
    for problem in problems:
        events.error(f"preflight: {problem.text}")
    check(problems)
    for backend, members in deployment.group(starting).items():
        deployment.backend(backend).prepare(members, events, build)


class _StopMarks:
    """A stop's intent, for system-health.py --heal: what it stops stays down until a restart or start brings it
    up. Each service is marked before its signal (in its batch's thread), so a stop killed midway (SIGKILL, the
    OOM killer) leaves marked what it had begun to stop, and no heal brings that back; once the stop has ended,
    the marker of what still runs (it would not stop) is taken back. What could not be marked is said once.
    A marker is written without waiting for the disk (a disk busy with the services' logs must not hold a
    signal back) and made durable by a thread of its own while the services shut down; the stop ends once
    that thread is done."""

    def __init__(self, deployment: Deployment, events: Events) -> None:
        self.deployment, self.events = deployment, events
        self.lock = threading.Lock()
        self.marked: list[str] = []
        self.unmarked: list[str] = []
        self.problem = ""
        self.to_sync: queue.Queue = queue.Queue()
        self.syncer: threading.Thread | None = None

    def _failed(self, names: list[str], exc: TmtError) -> None:
        with self.lock:
            self.unmarked += [n for n in names if n not in self.unmarked]
            self.problem = self.problem or str(exc)

    def mark(self, names: list[str]) -> None:
        if not names:
            return
        try:
            stopped.mark(self.deployment.registry.state_dir, names, durable=False)
        except TmtError as exc:
            self._failed(names, exc)
        with self.lock:
            self.marked += names  # (some of them, when it failed midway)
            if self.syncer is None:
                self.syncer = threading.Thread(target=self._sync, name="stop-markers", daemon=True)
                self.syncer.start()
        self.to_sync.put(names)

    def _sync(self) -> None:
        while (names := self.to_sync.get()) is not None:
            try:
                stopped.sync(self.deployment.registry.state_dir, names)
            except TmtError as exc:
                self._failed(names, exc)

    def settle(self, down: list[str]) -> None:
        """The stop has ended with `down` stopped or not running: its markers made durable, every other marker
        it left taken back."""
        if self.syncer is not None:
            self.to_sync.put(None)
            self.syncer.join()
        registry = self.deployment.registry
        _clear_stopped(self.deployment, [registry.service(n) for n in self.marked if n not in down], self.events)
        if self.unmarked:
            self.events.warn(f"cannot leave the stopped-on-purpose markers in {registry.state_dir} ({self.problem}): "
                             f"a monitor with --heal may start {', '.join(self.unmarked)} again")


def _clear_stopped(deployment: Deployment, services: list[Service], events: Events) -> None:
    try:
        stopped.clear(deployment.registry.state_dir, [s.name for s in services])
    except TmtError as exc:
        events.warn(f"cannot clear the stopped-on-purpose markers in {deployment.registry.state_dir} ({exc}): "
                    "a monitor with --heal leaves these services down")


def _tidy(deployment: Deployment, services: list[Service]) -> None:
    for backend in deployment.group(services):
        deployment.backend(backend).tidy()


def _now_running(deployment: Deployment, services: list[Service], events: Events) -> None:
    """After a start that did not finish: exactly which services run now and which do not, from the backends."""
    running, down = [], []
    for backend, members in deployment.group(services).items():
        for name, status in deployment.backend(backend).statuses(members).items():
            (running if status.state.value in ("running", "starting") else down).append(
                name + ("" if status.state.value == "running" else f" ({status.state.value})"))
    events.warn(f"now running: {', '.join(running) or 'nothing'}; not running: {', '.join(down) or 'nothing'}")


def _verdict(deployment: Deployment, outcomes: dict[str, Outcome], skip_health_check: bool) -> tuple[Overall, list]:
    """The one rule: each service's final health (a check like system-health's, unless skipped) against its
    criticality. Updates the outcomes with what the check found; (worst severity, [(severity, outcome)])."""
    services = [deployment.registry.service(n) for n in outcomes]
    checks = {}
    if not skip_health_check:  # a job that is done has nothing to check
        from .health.report import check_services
        checks = check_services(deployment, [s for s in services if outcomes[s.name].up and not s.oneshot])
    judged = []
    for service in services:
        outcome = outcomes[service.name]
        check = checks.get(service.name)
        if check is not None and check.status is not Health.HEALTHY:
            outcome.state = "degraded" if check.status is Health.DEGRADED else "unhealthy"
            outcome.detail = check.error or check.status.value
        health = (check.status if check else Health.HEALTHY) if outcome.up else Health.UNHEALTHY
        judged.append((of_health(health, service.critical), outcome))
    return worst(s for s, _ in judged), judged


def _finish(deployment: Deployment, outcomes: dict[str, Outcome], interrupted: bool, skip_health_check: bool,
            events: Events, rolled_back: dict[str, Outcome] | None = None, failure: str = "") -> Result:
    if any(not o.up for o in outcomes.values()):
        _now_running(deployment, [deployment.registry.service(n) for n in outcomes], events)
    if interrupted:
        if rolled_back:
            return Result(INTERRUPTED, outcomes, f"interrupted: {PUT_BACK}{_not_back(rolled_back)}", "warn")
        return Result(INTERRUPTED, outcomes, f"interrupted: {NOTHING_MORE}", "warn")
    overall, judged = _verdict(deployment, outcomes, skip_health_check)
    bad = [f"{o.service} ({o.state}{', critical' if sev is Overall.CRITICAL else ''})"
           for sev, o in judged if sev is not Overall.HEALTHY]
    if rolled_back:  # what failed decides, by the one rule: a critical service's failed start fails the restart
        again = [n for n, o in rolled_back.items() if o.state != rollback.NOT_ROLLED_BACK]
        text = f"the restart failed ({failure})" + (
            f" and was rolled back: {', '.join(again)} started again the way they last ran healthy" if again else
            ", and there was nothing to roll back to") + _not_back(rolled_back)
        if overall is Overall.CRITICAL or any(deployment.registry.service(n).critical for n in rolled_back):
            return Result(1, outcomes, text, "error")
        return Result(0, outcomes, f"warning: {text}", "warn")
    if overall is Overall.CRITICAL:
        return Result(1, outcomes, f"not healthy: {', '.join(bad)}", "error")
    up = sum(o.up for o in outcomes.values())
    if bad:
        return Result(0, outcomes, f"{up} of {len(outcomes)} service(s) running; warning: {', '.join(bad)}", "warn")
    jobs = sum(o.state == "done" for o in outcomes.values())
    return Result(0, outcomes, f"{up - jobs} service(s) running" + ("" if skip_health_check else " and healthy")
                  + (f", {jobs} job(s) done" if jobs else ""))


def _not_back(rolled_back: dict[str, Outcome]) -> str:
    """'; not running: x (why)' for what a rollback could not bring back."""
    down = [f"{o.service} ({o.state}: {o.detail})" if o.state == rollback.NOT_ROLLED_BACK else
            f"{o.service} ({o.detail or o.state})" for o in rolled_back.values() if not o.up]
    return f"; not running: {', '.join(down)}" if down else ""


def _survivors(deployment: Deployment, run: StopRun, force: bool) -> str:
    text = f"could not stop {', '.join(run.failed)}" + ("" if force else " (use --force to SIGKILL)")
    for name in (n for n in run.failed if n in run.prestopped):  # told to stop working first; see rollback.survivors
        text += f"; {name} still runs after its pre-stop {deployment.registry.service(name).pre_stop.describe()}"
    return text


def _put_back(deployment: Deployment, names: list[str], failed: set[str], interrupts: Interrupts, events: Events,
              why: str) -> dict[str, Outcome]:
    interrupts.then = "starting again what this run stopped (a second interrupt leaves things as they are)"
    return rollback.put_back(deployment, names, failed, events, why)


def _after_stop_half(deployment: Deployment, services: list[Service], stop: StopPlan, run: StopRun,
                     interrupts: Interrupts, events: Events) -> dict[str, Outcome]:
    """The stop half ended early (a survivor, an interrupt): start again what it stopped; every other selected
    service is shown as it was left."""
    rollback.survivors(deployment, run, events, undo=True)
    why = "a service would not stop" if run.failed else "the stop broke off" if run.broke_off else "interrupted"
    outcomes = _put_back(deployment, run.stopped, set(), interrupts, events, why) if run.stopped else {}
    planned = {step.service: step for step in stop.steps}
    for service in services:
        runs_as = planned[service.name].runs_as if service.name in planned else None
        if service.name in run.failed:
            outcomes[service.name] = Outcome(service.name, "not stopped", service.port, runs_as,
                                             detail=run.results[service.name].detail)
        elif service.name not in outcomes:
            outcomes[service.name] = Outcome(service.name, "untouched", service.port, runs_as,
                                             detail="left as it was: the stop halted before it"
                                             if runs_as else "was not running")
    return {s.name: outcomes[s.name] for s in services}


def _stop_half(deployment: Deployment, plan: StopPlan, events: Events, interrupts: Interrupts) -> StopRun:
    """The stop; an error that breaks it off is settled by asking each backend what runs now: a planned
    service that no longer runs counts as stopped (to be started again), one that runs was not stopped."""
    run = StopRun()
    try:
        execute_stop(deployment, plan, events, interrupts.requested.is_set, run)
    except Exception as exc:  # the system must still end as it began: what was stopped is started again
        run.broke_off = rollback.broke_off(events, "the stop", exc)
        unsettled = [deployment.registry.service(step.service) for step in plan.steps if step.service not in run.results]
        for backend, members in deployment.group(unsettled).items():
            try:
                statuses = deployment.backend(backend).statuses(members)
            except TmtError:
                continue  # cannot be asked: shown as untouched, and "now running" says what the backends can tell
            for name, status in statuses.items():
                if status.state not in (ServiceState.RUNNING, ServiceState.STARTING):
                    run.results[name] = StopResult(name, True, "down after the stop broke off")
    return run


def _start_half(deployment: Deployment, plan: StartPlan, events: Events,
                interrupts: Interrupts) -> tuple[dict[str, Outcome], bool]:
    """The start half; an error that breaks it off counts as the failed start of everything planned (a rollback
    then brings back what this run took down)."""
    try:
        return execute_start(deployment, plan, events, interrupts.requested)
    except Exception as exc:
        text = rollback.broke_off(events, "the start", exc)
        return {s.name: Outcome(s.name, "failed", s.port, detail=text) for s in (step.service for step in plan.steps)}, \
            interrupts.requested.is_set()


def _first_failure(outcomes: dict[str, Outcome], names: list[str]) -> str:
    for name in names:
        if outcomes[name].state == "failed":
            return f"{name}: {outcomes[name].detail}"
    return f"{names[0]}: {outcomes[names[0]].detail or outcomes[names[0]].state}"


def restart(deployment: Deployment, services: list[Service], options: Options, events: Events,
            interrupts: Interrupts | None = None) -> Result:
    interrupts = interrupts or Interrupts()
    starting = bring_up(deployment, services)
    # what a backend restarts in place (swarm: rolling, in the start waves) is not stopped first
    stopped_first = [s for s in services if not deployment.of(s).restarts_in_place]
    stop_plan = plan_stop(deployment, _graced(stopped_first, options), force=options.force)
    start_plan = plan_start(deployment, starting)
    if options.dry_run:
        return _dry_run(events, stop_plan, start_plan)
    check_and_prepare(deployment, starting, stop_plan, events, force=options.force, start=start_plan,
                      build=options.build)
    _clear_stopped(deployment, services, events)
    _about_to_run(events, stop_plan, start_plan)
    run = StopRun()
    if stop_plan.steps:
        events.info(f"stopping {', '.join(step.service for step in stop_plan.steps)}")
        interrupts.begin_changes("finishing the stops in flight, then starting again what this run stopped")
        run = _stop_half(deployment, stop_plan, events, interrupts)
        _tidy(deployment, services)
        if run.failed or run.broke_off or interrupts.requested.is_set():
            outcomes = _after_stop_half(deployment, services, stop_plan, run, interrupts, events)
            stopped = set(run.stopped)  # what this run took down; what it left untouched is not "not running"
            put_back = {name: outcome for name, outcome in outcomes.items() if name in stopped}
            if run.failed or run.broke_off:
                why = run.broke_off or _survivors(deployment, run, options.force)
                return Result(1, outcomes, f"{why}; nothing more was stopped, and {PUT_BACK}{_not_back(put_back)}",
                              "error")
            return Result(INTERRUPTED, outcomes, f"interrupted: {PUT_BACK}{_not_back(put_back)}", "warn")
    interrupts.begin_changes("ending the waits in flight, then starting again what this run stopped the way it "
                             "last ran healthy")
    outcomes, interrupted = _start_half(deployment, start_plan, events, interrupts)
    rollback.commit(deployment, start_plan, outcomes, events)
    taken_down = set(run.stopped) | {step.service.name for step in start_plan.steps  # rolled in place, if begun
                                     if step.replaces and outcomes[step.service.name].state != "not started"}
    missing = [n for n in start_plan.services if n in taken_down and not outcomes[n].up]
    if not missing:
        return _finish(deployment, outcomes, interrupted, options.skip_health_check, events)
    failure = "interrupted" if interrupted else _first_failure(outcomes, missing)
    rolled_back = _put_back(deployment, missing, {n for n in missing if outcomes[n].state == "failed"}, interrupts,
                            events, failure)
    outcomes.update(rolled_back)
    return _finish(deployment, outcomes, interrupted, options.skip_health_check, events, rolled_back, failure)


def start(deployment: Deployment, services: list[Service], options: Options, events: Events,
          interrupts: Interrupts | None = None, *, needs: bool = True) -> Result:
    """Start what is not running, and what it needs that does not run (`needs` False: only the infrastructure it
    needs); what runs is left as it is."""
    interrupts = interrupts or Interrupts()
    starting = bring_up(deployment, not_running(deployment, services), needs=needs)
    plan = plan_start(deployment, starting)
    if options.dry_run:
        return _dry_run(events, None, plan)
    check_and_prepare(deployment, starting, None, events, build=options.build)
    _clear_stopped(deployment, services, events)
    _about_to_run(events, None, plan)
    if not plan.steps:
        return Result(0, last=f"nothing to start: every selected service runs ({deployment.mode} mode)")
    interrupts.begin_changes(NOTHING_MORE)
    outcomes, interrupted = execute_start(deployment, plan, events, interrupts.requested)
    rollback.commit(deployment, plan, outcomes, events)
    return _finish(deployment, outcomes, interrupted, options.skip_health_check, events)


def stop(deployment: Deployment, services: list[Service], options: Options, events: Events,
         interrupts: Interrupts | None = None) -> Result:
    interrupts = interrupts or Interrupts()
    plan = plan_stop(deployment, _graced(services, options), force=options.force)
    if options.dry_run:
        return _dry_run(events, plan, None)
    for name, why in plan.blocked.items():
        events.warn(f"{name}: {why}")
    held = (f"; port still held (by what this stop does not touch): {', '.join(plan.held)}" if plan.held else "")
    marks = _StopMarks(deployment, events)
    if not plan.steps:
        _tidy(deployment, services)
        marks.mark(list(plan.idle))
        marks.settle(list(plan.idle))
        if held:
            return Result(1, last=f"nothing of this registry's services was stopped{held}", level="error")
        return Result(0, last=f"nothing to stop: no service of this registry runs ({deployment.mode} mode)")
    if not options.force:  # (no probe round: a stop of a hung service shows itself, named, after its grace)
        for name, why in unresponsive(plan.steps, {}).items():
            events.warn(f"{name}: {why}: it may not stop (--force kills what outlives its grace)")
    _about_to_run(events, plan, None)
    events.info(f"stopping {', '.join(step.service for step in plan.steps)}")
    interrupts.begin_changes("finishing the stops in flight; nothing more is stopped")
    run = StopRun()
    marks.mark(list(plan.idle))  # down already: marked first, as what is signalled is marked before its signal
    try:
        execute_stop(deployment, plan, events, interrupts.requested.is_set, run, before_signal=marks.mark)
    finally:  # (an error that broke the stop off: what it stopped stays marked all the same)
        marks.settle([*run.stopped, *plan.idle])
    _tidy(deployment, services)
    rollback.survivors(deployment, run, events, undo=False)
    left = [step.service for step in plan.steps if step.service not in run.results]
    if run.failed:
        return Result(1, last=_survivors(deployment, run, options.force)
                      + (f"; left running because they serve it: {', '.join(left)}" if left else ""), level="error")
    if interrupts.requested.is_set():
        return Result(INTERRUPTED, last=f"interrupted: stopped {', '.join(run.stopped) or 'nothing'}; "
                                        f"still running: {', '.join(left) or 'nothing'}", level="warn")
    if held:
        return Result(1, last=f"stopped {len(run.results)} service(s){held}", level="error")
    return Result(0, last=f"stopped {len(run.results)} service(s)")
