"""The executor's order as properties, over random dependency graphs: pure units over a backend of plain data whose
batches overlap (as native processes do) and whose services end after random delays, each in a thread of its own.

- A stop signals a service only once every service of the plan that depends on it, directly or through services
  the plan does not stop, has stopped; what depends on a service that would not stop keeps it: it is never
  signalled, whatever else ends meanwhile.
- A start launches a service only once what it depends on in the plan has its outcome; a service whose required
  dependency did not come up is not started.
"""

from __future__ import annotations

import random
import threading
import time
from typing import ClassVar

import pytest

from fake_backend import FakeBackend, fake_deployment
from support import write_registry
from tmt_ops import plan as plans
from tmt_ops.executor import execute_start, execute_stop
from tmt_ops.parallel import run_parallel
from tmt_ops.registry import load_registry
from tmt_ops.results import Outcome, StopResult

SEEDS = range(32)


class Events:
    def __getattr__(self, level):
        return lambda *args, **kwargs: None


class Overlapping(FakeBackend):
    """A batch's services each end after a random delay, in a thread of their own, said to `done` as they end (the
    native backend's way); `refuse`: services that would not stop; `broken`, as the fake's: starts that fail."""

    batches_overlap: ClassVar[bool] = True

    def __init__(self, registry, seed: int = 0, **kw) -> None:
        super().__init__(registry, **kw)
        self.random, self.lock, self.refuse = random.Random(seed), threading.Lock(), set()

    def _note(self, *entry) -> None:
        with self.lock:
            self.log.append(entry)

    def _after_a_while(self) -> None:
        with self.lock:
            pause = self.random.uniform(0, 0.02)
        time.sleep(pause)

    def execute_stop(self, steps, events, done=lambda name, result: None):
        for step in steps:
            self._note("signalled", step.service)

        def one(name: str) -> StopResult:
            self._after_a_while()
            stopped = name not in self.refuse
            if stopped:
                self.running.pop(name, None)
            self._note("stopped" if stopped else "survived", name)
            result = StopResult(name, stopped, "stopped" if stopped else "still running")
            done(name, result)
            return result
        return run_parallel({step.service: (lambda n=step.service: one(n)) for step in steps})

    def execute_start(self, steps, events, cancel, done=lambda name, outcome: None):
        for step in steps:
            self._note("launched", step.service.name)

        def one(step) -> Outcome:
            self._after_a_while()
            name = step.service.name
            if (name, step.definition) in self.broken:
                outcome = Outcome(name, "failed", step.service.port, detail="exited at once")
            else:
                self.running[name] = step.definition
                outcome = Outcome(name, "running", step.service.port, "fake", 0.01)
            self._note("ended", name)
            done(name, outcome)
            return outcome
        return run_parallel({step.service.name: (lambda s=step: one(s)) for step in steps})


def random_graph(seed: int):
    """An edit of the registry: its services replaced by 6-14, each depending on some of those before it (required
    or optional), at random."""
    rng = random.Random(seed)

    def edit(data: dict) -> None:
        services = {}
        names = [f"s{i:02d}" for i in range(rng.randint(6, 14))]
        for i, name in enumerate(names):
            deps = rng.sample(names[:i], k=min(i, rng.choice([0, 1, 1, 2, 3])))
            services[name] = {"group": "core", "port": 20000 + i, "command": ["true"], "health": {"type": "tcp"},
                              "depends_on": {d: rng.choice(["required", "optional"]) for d in deps}}
        data["services"] = services
    return edit


@pytest.fixture
def graphs(tmp_path):
    def make(seed: int):
        registry = load_registry(write_registry(tmp_path, edit=random_graph(seed)))
        names = [s.name for s in registry.managed]
        deployment, backend = fake_deployment(registry, Overlapping, seed=seed, running=dict.fromkeys(names, "old"),
                                              healthy=dict.fromkeys(names, "old"))
        return registry, deployment, backend
    return make


def order(log: list, kind: str) -> dict[str, int]:
    return {name: n for n, (what, name) in enumerate(log) if what == kind}


@pytest.mark.parametrize("seed", SEEDS)
def test_a_service_is_signalled_only_once_everything_that_depends_on_it_has_stopped(graphs, seed):
    """Some services run nothing (the order goes through them), some would not stop."""
    registry, deployment, backend = graphs(seed)
    rng = random.Random(seed)
    names = [s.name for s in registry.managed]
    for idle in rng.sample(names, k=rng.choice([0, 1, 2, 3, 3])):
        del backend.running[idle]
    running = set(backend.running)
    backend.refuse = set(rng.sample(sorted(running), k=rng.choice([0, 0, 1, 2])))
    plan = plans.plan_stop(deployment, registry.managed, force=False)
    run = execute_stop(deployment, plan, Events())
    signalled, stopped = order(backend.log, "signalled"), order(backend.log, "stopped")
    assert len(signalled) == len([e for e in backend.log if e[0] == "signalled"])  # each at most once
    for name in signalled:
        for dependent in registry.dependents([name]):
            if dependent.name in running:
                assert dependent.name in stopped and stopped[dependent.name] < signalled[name], (seed, name, backend.log)
    assert set(run.failed) == backend.refuse & set(signalled)
    if not backend.refuse:
        assert set(stopped) == running and backend.running == {}
    assert list(run.results) == [step.service for step in plan.steps if step.service in run.results]  # plan order


@pytest.mark.parametrize("seed", SEEDS)
def test_a_service_is_launched_only_once_what_it_depends_on_has_its_outcome(graphs, seed):
    """Some starts fail: what requires them is not started, what only wants them is."""
    registry, deployment, backend = graphs(seed)
    rng = random.Random(seed)
    names = [s.name for s in registry.managed]
    backend.running.clear()
    backend.broken = {(name, "new") for name in rng.sample(names, k=rng.choice([0, 1, 2]))}
    plan = plans.plan_start(deployment, registry.managed)
    outcomes, interrupted = execute_start(deployment, plan, Events(), threading.Event())
    assert not interrupted and list(outcomes) == plan.services  # every one, in the plan's order
    launched, ended = order(backend.log, "launched"), order(backend.log, "ended")
    for name in launched:
        for dep in registry.service(name).depends_on:  # ended first, or never started (its outcome said so)
            assert ended.get(dep.name, -1) < launched[name], (seed, name, backend.log)
            assert dep.name in ended or outcomes[dep.name].state == "not started", (seed, name, backend.log)
    up = {name for name, outcome in outcomes.items() if outcome.up}
    for name in names:
        if any(dep not in up for dep in registry.service(name).required_deps):
            assert name not in launched and outcomes[name].state == "not started", (seed, name, outcomes[name])
        else:
            assert name in launched, (seed, name)
    assert up == set(names) - {name for name, _ in backend.broken} - {
        name for name, outcome in outcomes.items() if outcome.state == "not started"}
