"""Carrying out plans. The executor decides nothing: every step says what to do, its backend does it; the
executor only keeps the order, calls the services' hooks (pre-stop before a stop, post-start once a service is
ready), and reports.

Stopping, wave by wave, each wave's steps at once: a wave in flight always finishes; after a wave in which a
service would not stop, or once an interrupt was requested, no further wave starts (the caller decides what to
start again).
Starting, by the graph: each service as soon as what it depends on in the plan has ended its start and made its
post-start call (not once its whole wave has); dependencies outside the plan are probed before the first
service that needs them; a service whose required dependency did not come up is not started; once `cancel` is
set nothing more is launched and the waits in flight end (what is not ready then is "starting").
"""

from __future__ import annotations

import queue
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


def _post_start(deployment: "Deployment", step, outcome: Outcome) -> tuple[bool, str] | None:
    """A started service's post-start call ("take orders again"), made where it answers: (answered, the line that
    says how it went), or None (it has none, or it is not up)."""
    if not (outcome.up and step.service.post_start and not step.service.oneshot):
        return None
    return hooks.call(hooks.post_start(deployment.backend(step.backend).address(step.service)))


class _Start:
    """One start plan carried out by its graph: each service launched as soon as what it depends on in the plan
    has ended its start (and made its post-start call), not once its whole wave has: a start takes the graph's
    critical path, not the sum of its waves' slowest. The services that become startable together are one
    batch; a backend whose batch is one operation (compose up, a stack deploy) runs one batch at a time. What
    ends is reported here, in this thread, as it ends; the plan's waves still name the lines and the probes of
    the dependencies outside it."""

    def __init__(self, deployment: "Deployment", plan: StartPlan, events: Events, cancel: threading.Event) -> None:
        self.deployment, self.plan, self.events, self.cancel = deployment, plan, events, cancel
        self.wave_of = {step.service.name: n for n, wave in enumerate(plan.waves, 1) for step in wave.steps}
        self.after = {step.service.name: [d.name for d in step.service.depends_on if d.name in self.wave_of]
                      for step in plan.steps}
        self.needed = {dep for step in plan.steps for dep in step.service.required_deps}
        self.pending = list(plan.steps)
        self.outcomes: dict[str, Outcome] = {}
        self.outside: dict[str, ProbeResult] = {}
        self.probed = 0  # the waves whose outside dependencies were probed
        self.busy: dict[str, int] = {}  # backend -> its batches in flight
        self.ended: queue.Queue = queue.Queue()  # ("done", step, outcome, its post-start) | ("batch", backend, error)
        self.error: BaseException | None = None

    def run(self) -> tuple[dict[str, Outcome], bool]:
        """An error (here or in a batch) launches nothing more; it is raised once nothing is in flight."""
        while True:
            try:
                if self.error is None and not self.cancel.is_set():
                    self._launch()
                if not any(self.busy.values()):
                    break
                self._take(self.ended.get())
            except Exception as exc:  # noqa: BLE001
                self.error = self.error or exc
        if self.error is not None:
            raise self.error
        registry = self.deployment.registry
        outcomes = {name: self.outcomes.get(name) or Outcome(name, "not started", registry.service(name).port,
                                                             detail="interrupted")
                    for name in self.plan.services}  # in the plan's order, whatever order they ended in
        return outcomes, self.cancel.is_set()

    def _launch(self) -> None:
        """Every step whose dependencies in the plan have ended: blocked (a required one is not up), or launched
        where its backend takes a batch now."""
        while True:
            ready = [step for step in self.pending if all(d in self.outcomes for d in self.after[step.service.name])]
            if not ready:
                return
            self._probe_outside(max(self.wave_of[step.service.name] for step in ready))
            batch = [step for step in ready if not self._blocked(step)]
            if len(batch) == len(ready):  # none newly blocked, whose dependents would be decided now too
                break
        for backend, steps in _by_backend(batch).items():
            if self.busy.get(backend) and not self.deployment.backend(backend).starts_overlap:
                continue  # after its batch in flight
            for step in steps:
                self.pending.remove(step)
            waves: dict[int, list[str]] = {}
            for step in steps:
                waves.setdefault(self.wave_of[step.service.name], []).append(step.service.name)
            for n, names in waves.items():
                self.events.info(f"wave {n}: starting {', '.join(names)}")
            for step in steps:
                self.events.waiting(step.service.name, "starting", step.service.startup_timeout)
            self.busy[backend] = self.busy.get(backend, 0) + 1
            threading.Thread(target=self._batch, args=(backend, steps), name=f"start-{backend}", daemon=True).start()

    def _blocked(self, step) -> bool:
        """Whether it is not started (said, and its outcome kept): a required dependency is not up."""
        blocked = _blocked_by(step.service, self.outcomes, self.outside, self.deployment)
        if blocked is not None:
            self.pending.remove(step)
            self.outcomes[step.service.name] = Outcome(step.service.name, "not started", step.service.port,
                                                       detail=blocked)
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

    def _batch(self, backend: str, steps: list) -> None:
        """A batch's thread: its backend starts it; each outcome (with its post-start call made) goes to the
        queue as it ends, or, where the backend says them all at once, when it returns."""
        told: set[str] = set()
        step_of = {step.service.name: step for step in steps}

        def done(name: str, outcome: Outcome) -> None:
            self.ended.put(("done", step_of[name], outcome, _post_start(self.deployment, step_of[name], outcome)))
            told.add(name)
        error = None
        try:
            b = self.deployment.backend(backend)
            results = b.execute_start(steps, self.events, self.cancel, done) if b.starts_overlap else \
                b.execute_start(steps, self.events, self.cancel)
            run_parallel({name: (lambda n=name: done(n, results[n])) for name in results if name not in told})
        except BaseException as exc:  # noqa: BLE001  (raised by run() once nothing is in flight)
            error = exc
        self.ended.put(("batch", backend, error))

    def _take(self, item: tuple) -> None:
        if item[0] == "batch":
            _, backend, error = item
            self.busy[backend] -= 1
            if error is not None and self.error is None:
                self.error = error
            return
        _, step, outcome, post_start = item
        name = step.service.name
        self.outcomes[name] = outcome
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
    return _Start(deployment, plan, events, cancel).run()
