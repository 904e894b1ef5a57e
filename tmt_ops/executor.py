"""Carrying out plans. The executor decides nothing: every step says what to do, its backend does it; the
executor only keeps the order, calls the services' hooks (pre-stop before a stop, post-start once a service is
ready), and reports.

Both follow the dependency graph, not its waves: a step goes as soon as the steps it must come after have ended
(a stop: every service of the plan that depends on it has stopped; a start: what it depends on in the plan has
ended its start and made its post-start call), so a restart takes the graph's critical paths, not the sum of
each wave's slowest.
Stopping: a batch's pre-stop calls first; the batches in flight always finish; after a service would not stop,
or once an interrupt was requested, nothing more is signalled (the caller decides what to start again).
Starting: dependencies outside the plan are probed before the first service that needs them; a service whose
required dependency did not come up is not started; once `cancel` is set nothing more is launched and the
waits in flight end (what is not ready then is "starting").
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable

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
    results: dict[str, StopResult] = field(default_factory=dict)  # the services signalled, as they ended
    prestopped: dict[str, float] = field(default_factory=dict)  # their pre-stop call answered (when): told to stop working
    broke_off: str | None = None  # an unexpected error ended it (operations.py settles what it left)

    @property
    def stopped(self) -> list[str]:
        return [name for name, r in self.results.items() if r.stopped]

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if not r.stopped]


class _Graph:
    """Steps carried out by the dependency graph: a step is launched once the steps it must come after have ended
    (a stop: its dependents; a start: its dependencies); the steps that become ready together are one batch, run
    by its backend in a thread of its own; a backend whose batch is one operation (compose up, a stack deploy)
    runs one batch at a time. What ends is taken here, in the caller's thread, as it ends. An error (here or in
    a batch) launches nothing more; it is raised once nothing is in flight.

    Each step counts the steps it still waits for, and what ends counts down those after it: finding what may go
    (some 400 times in a restart of 100 services) is a look per pending step, not at each one's every dependency.

    A kind of plan calls `_end(name)` for what the steps after wait for (a start that has its outcome, a service
    that stopped) and says `_name(step)`, `_go_on()` (whether more may be launched), `_announce(steps)` (as a
    batch is launched), `_run_batch(backend, steps)` (in the batch's thread: what ends goes to `ended`, as it
    ends) and `_take(item)` (each such item, here)."""

    def __init__(self, deployment: "Deployment", steps: list, after: dict[str, Iterable[str]]) -> None:
        self.deployment = deployment
        self.pending = {self._name(step): step for step in steps}  # (in the plan's order)
        self._ended: set[str] = set()
        self.unmet = {name: len(set(before)) for name, before in after.items()}  # steps before, not yet ended
        self.then: dict[str, list[str]] = {}  # name -> the steps waiting for it
        for name, before in after.items():
            for first in set(before):
                self.then.setdefault(first, []).append(name)
        self.launched = False
        self.busy: dict[str, int] = {}  # backend -> its batches in flight
        self.ended: queue.Queue = queue.Queue()  # what a batch says as it goes, then ("batch", backend, error)
        self.error: BaseException | None = None

    def _carry_out(self) -> None:
        while True:
            try:
                if self.error is None and self._go_on():
                    self._launch(self._ready())
                if not any(self.busy.values()):
                    break
                item = self.ended.get()
                if item[0] == "batch":
                    _, backend, error = item
                    self.busy[backend] -= 1
                    self.error = self.error or error
                else:
                    self._take(item)
            except Exception as exc:  # noqa: BLE001
                self.error = self.error or exc
        if self.error is not None:
            raise self.error

    def _end(self, name: str) -> None:
        """`name` has ended, as the steps after it wait for (once; again changes nothing)."""
        if name not in self._ended:
            self._ended.add(name)
            for waiting in self.then.get(name, ()):
                self.unmet[waiting] -= 1

    def _ready(self) -> list:
        """The pending steps whose steps before have all ended."""
        return [step for name, step in self.pending.items() if not self.unmet[name]]

    def _launch(self, ready: list) -> None:
        for backend, steps in _by_backend(ready).items():
            if self.busy.get(backend) and not self.deployment.backend(backend).batches_overlap:
                continue  # after its batch in flight
            for step in steps:
                del self.pending[self._name(step)]
            self._announce(steps)
            self.launched = True
            self.busy[backend] = self.busy.get(backend, 0) + 1
            threading.Thread(target=self._batch, args=(backend, steps), name=f"batch-{backend}", daemon=True).start()

    def _batch(self, backend: str, steps: list) -> None:
        error = None
        try:
            self._run_batch(self.deployment.backend(backend), steps)
        except BaseException as exc:  # noqa: BLE001  (raised by _carry_out once nothing is in flight)
            error = exc
        self.ended.put(("batch", backend, error))


class _Stop(_Graph):
    """One stop plan carried out by its graph: each service signalled as soon as every service of the plan that
    depends on it (directly, or through services it does not stop) has stopped, not once its whole wave has.
    A batch's pre-stop calls ("stop taking orders") come first, all at once. After the first batch, once a
    service would not stop or an interrupt is requested, nothing more is signalled; the batches in flight
    finish."""

    def __init__(self, deployment: "Deployment", plan: StopPlan, events: Events, interrupted: Callable[[], bool],
                 run: StopRun, before_signal: Callable[[list[str]], None]) -> None:
        names = {step.service for step in plan.steps}
        after = {name: dependents & names for name, dependents in deployment.registry.dependents_each(names).items()}
        super().__init__(deployment, plan.steps, after)
        self.plan, self.events, self.interrupted, self.run = plan, events, interrupted, run
        self.before_signal = before_signal

    def _name(self, step) -> str:
        return step.service

    def _go_on(self) -> bool:
        """The first batch always goes (as a wave did); after it, nothing once one failed or on an interrupt."""
        return not self.launched or not (self.run.failed or self.interrupted())

    def _announce(self, steps: list) -> None:
        for step in steps:
            self.events.waiting(step.service, "stopping", step.grace)

    def _run_batch(self, backend, steps: list) -> None:
        self.before_signal([step.service for step in steps])
        calls = {step.service: (lambda h=step.pre_stop: hooks.call(h)) for step in steps if step.pre_stop}
        called = time.time()
        answered = {}
        for name, (ok, line) in run_parallel(calls).items():  # never blocks: each call has its timeout
            (self.events.info if ok else self.events.warn)(line)
            if ok:
                answered[name] = called
        self.ended.put(("prestopped", answered))
        if backend.batches_overlap:
            backend.execute_stop(steps, self.events, lambda name, result: self.ended.put(("done", result)))
        else:
            results = backend.execute_stop(steps, self.events)
            for step in steps:
                self.ended.put(("done", results[step.service]))

    def _take(self, item: tuple) -> None:
        if item[0] == "prestopped":
            self.run.prestopped.update(item[1])
            return
        result, events = item[1], self.events
        events.settled(result.service)
        self.run.results[result.service] = result
        for warning in result.warnings:
            events.warn(warning)
        if result.stopped:  # (what would not stop never ends: what it depends on is kept running, always)
            self._end(result.service)
            events.ok(f"{result.service}: {result.detail}")
        else:
            events.error(f"{result.service}: {result.detail}")
            for survivor in result.survivors:
                events.line(f"    {survivor}")

    def carry_out(self) -> StopRun:
        try:
            self._carry_out()
        finally:  # in the plan's order, whatever order they ended in
            order = {step.service: n for n, step in enumerate(self.plan.steps)}
            ended = sorted(self.run.results.items(), key=lambda item: order[item[0]])
            self.run.results.clear()
            self.run.results.update(ended)
        return self.run


def execute_stop(deployment: "Deployment", plan: StopPlan, events: Events,
                 interrupted: Callable[[], bool] = lambda: False, run: StopRun | None = None,
                 before_signal: Callable[[list[str]], None] = lambda names: None) -> StopRun:
    """`run`: filled as services stop (a caller that must know what was stopped when an error breaks this off
    passes its own). `before_signal(names)`: in each batch's thread, before its pre-stop calls and signals."""
    return _Stop(deployment, plan, events, interrupted, StopRun() if run is None else run, before_signal).carry_out()


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


def _post_start(deployment: "Deployment", step, outcome: Outcome) -> tuple[bool, str] | None:
    """A started service's post-start call ("take orders again"), made where it answers: (answered, the line that
    says how it went), or None (it has none, or it is not up)."""
    if not (outcome.up and step.service.post_start and not step.service.oneshot):
        return None
    return hooks.call(hooks.post_start(deployment.backend(step.backend).address(step.service)))


class _Start(_Graph):
    """One start plan carried out by its graph: each service launched as soon as what it depends on in the plan
    has ended its start (and made its post-start call), not once its whole wave has: a start takes the graph's
    critical path, not the sum of its waves' slowest. Once `cancel` is set nothing more is launched. The plan's
    waves still name the lines and the probes of the dependencies outside it."""

    def __init__(self, deployment: "Deployment", plan: StartPlan, events: Events, cancel: threading.Event) -> None:
        wave_of = {step.service.name: n for n, wave in enumerate(plan.waves, 1) for step in wave.steps}
        super().__init__(deployment, plan.steps, {
            step.service.name: [d.name for d in step.service.depends_on if d.name in wave_of] for step in plan.steps})
        self.plan, self.events, self.cancel, self.wave_of = plan, events, cancel, wave_of
        self.needed = {dep for step in plan.steps for dep in step.service.required_deps}
        self.outcomes: dict[str, Outcome] = {}  # (what ends is what has its outcome: self._outcome)
        self.outside: dict[str, ProbeResult] = {}
        self.probed = 0  # the waves whose outside dependencies were probed

    def carry_out(self) -> tuple[dict[str, Outcome], bool]:
        self._carry_out()
        registry = self.deployment.registry
        outcomes = {name: self.outcomes.get(name) or Outcome(name, "not started", registry.service(name).port,
                                                             detail="interrupted")
                    for name in self.plan.services}  # in the plan's order, whatever order they ended in
        return outcomes, self.cancel.is_set()

    def _name(self, step) -> str:
        return step.service.name

    def _go_on(self) -> bool:
        return not self.cancel.is_set()

    def _ready(self) -> list:
        """The steps whose dependencies in the plan have ended, less those found blocked now (a required one is
        not up: said, and their outcomes kept), once the dependencies outside the plan they need are probed."""
        while True:
            ready = super()._ready()
            if not ready:
                return []
            self._probe_outside(max(self.wave_of[step.service.name] for step in ready))
            batch = [step for step in ready if not self._blocked(step)]
            if len(batch) == len(ready):  # none newly blocked, whose dependents would be decided now too
                return batch

    def _announce(self, steps: list) -> None:
        waves: dict[int, list[str]] = {}
        for step in steps:
            waves.setdefault(self.wave_of[step.service.name], []).append(step.service.name)
        for n, names in waves.items():
            self.events.info(f"wave {n}: starting {', '.join(names)}")
        for step in steps:
            self.events.waiting(step.service.name, "starting", step.service.startup_timeout)

    def _outcome(self, name: str, outcome: Outcome) -> None:
        self.outcomes[name] = outcome
        self._end(name)

    def _blocked(self, step) -> bool:
        """Whether it is not started (said, and its outcome kept): a required dependency is not up."""
        blocked = _blocked_by(step.service, self.outcomes, self.outside, self.deployment)
        if blocked is not None:
            del self.pending[step.service.name]
            self._outcome(step.service.name, Outcome(step.service.name, "not started", step.service.port,
                                                     detail=blocked))
            self.events.error(f"{step.service.name}: not started: {blocked}")
        return blocked is not None

    def _probe_outside(self, upto: int) -> None:
        """The dependencies outside the plan of the waves up to `upto`, each probed once, before a step needs it."""
        while self.probed < upto:
            wave = self.plan.waves[self.probed]
            self.probed += 1
            if not wave.probe_first:
                continue
            self.outside.update(_probe_outside(self.deployment, wave.probe_first))
            silent = [d for d in wave.probe_first if d.name in self.outside and d.name not in self.needed
                      and self.outside[d.name].status not in SERVING]
            if silent:  # one line for the wave, however many: a fresh machine has none of its infrastructure
                self.events.warn("optional dependencies that do not answer (starting anyway): " + ", ".join(
                    f"{d.display_name} ({self.outside[d.name].error or self.outside[d.name].status.value})"
                    for d in silent))

    def _run_batch(self, backend, steps: list) -> None:
        """Each outcome goes to the queue with its post-start call made, as it ends, or, where the backend says
        them all at once, when it returns."""
        told: set[str] = set()
        step_of = {step.service.name: step for step in steps}

        def done(name: str, outcome: Outcome) -> None:
            self.ended.put(("done", step_of[name], outcome, _post_start(self.deployment, step_of[name], outcome)))
            told.add(name)
        results = backend.execute_start(steps, self.events, self.cancel, done) if backend.batches_overlap else \
            backend.execute_start(steps, self.events, self.cancel)
        run_parallel({name: (lambda n=name: done(n, results[n])) for name in results if name not in told})

    def _take(self, item: tuple) -> None:
        _, step, outcome, post_start = item
        name = step.service.name
        self._outcome(name, outcome)
        events = self.events
        if outcome.state == "done":
            events.ok(f"{name}: done in {outcome.ready_seconds:.2f}s ({outcome.runs_as}, {outcome.detail})")
        elif outcome.up:
            extra = f" ({outcome.detail})" if outcome.detail else ""
            say = events.ok if outcome.state == "running" else events.warn
            say(f"{name}: ready in {outcome.ready_seconds:.2f}s ({outcome.runs_as}){extra}")
        elif outcome.state == "failed":
            lines = loglines.telling(step.service, self.deployment.backend(step.backend).logs(step.service, SCANNED),
                                     FAILED_LOG_LINES)
            events.error(f"{name}: {outcome.detail}" + ("; its output (this run's, errors first):" if lines else ""))
            for line in lines:
                events.line(f"    | {line}")
        if post_start is not None:
            answered, line = post_start
            (events.info if answered else events.warn)(line)


def execute_start(deployment: "Deployment", plan: StartPlan, events: Events,
                  cancel: threading.Event) -> tuple[dict[str, Outcome], bool]:
    """(outcomes by service, in the plan's order; interrupted): once `cancel` is set, nothing more is launched and
    the waits in flight end."""
    return _Start(deployment, plan, events, cancel).carry_out()
