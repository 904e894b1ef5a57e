"""The native backend: services as processes on this host, started detached with run records, stopped by
proven identity (see discovery.py and proof.py)."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from ..errors import ConfigError
from ..files import FileProblem, read_part
from ..backends import ServiceStatus
from ..events import Events
from ..parallel import run_parallel
from .. import statusview
from ..ports import held_by, listening_sockets
from ..preflight import Problem, runnable, writable
from ..registry import Registry, Service
from ..results import Outcome, StatusView, StopResult
from ..states import ServiceState
from . import build as builds, definitions, logs as native_logs, records, start, stop
from .spawn import environment_of
from .discovery import describe_holders, discover
from .steps import BACKEND, StartStep, StopStep, stop_steps


LOG_TAIL_BYTES = 256 * 1024  # what is read of a service's log for its last lines


class NativeBackend:
    name = BACKEND
    restarts_in_place = False
    batches_overlap = True  # a process each: a batch is launched while others still boot or shut down

    def __init__(self, registry: Registry, **_options) -> None:
        self.registry = registry
        self.booting: dict[str, start.Booting] = {}  # left starting by an interrupt: a restore may keep them

    @classmethod
    def detect(cls, registry: Registry) -> bool:
        """Whether anything of the registry runs here as processes. A system that runs answers at the first
        recorded service it finds running (one look, not one per service: system-health of 100 services asks
        this before it looks at them all); only when that one does not run is every service looked at."""
        recorded = records.read_all(registry.state_dir)
        first = next((s for s in registry.managed if s.name in recorded), None)
        return first is not None and bool(discover(registry, [first]).ours) or bool(discover(registry).ours)

    def claims(self, service: Service) -> bool:
        return service.managed

    def statuses(self, services: list[Service]) -> dict[str, ServiceStatus]:
        found = discover(self.registry, services)
        listening = listening_sockets()
        result = {}
        for service in services:
            ours = found.ours.get(service.name)
            if ours is not None:
                began = ours.root.create_time if ours.root else min(p.create_time for p in ours.members)
                pids = tuple(p.pid for p in ours.members)
                result[service.name] = ServiceStatus(service.name, ServiceState.RUNNING, pids,
                                                     uptime_seconds=round(time.time() - began, 1), detail=ours.how,
                                                     holds_port=held_by(service.port, pids, listening))
            elif service.name in found.others:
                result[service.name] = ServiceStatus(service.name, ServiceState.STOPPED, detail=found.others[service.name])
            elif service.name in found.foreign:
                result[service.name] = ServiceStatus(service.name, ServiceState.STOPPED,
                                                     detail=describe_holders(service, found.foreign[service.name]))
            elif service.name in found.distrusted:
                result[service.name] = ServiceStatus(service.name, ServiceState.STOPPED,
                                                     detail=found.distrusted[service.name])
            elif service.name in found.stale:
                pid = found.stale[service.name].pid
                result[service.name] = ServiceStatus(service.name, ServiceState.FAILED,
                                                     detail=f"exited without a stop (recorded pid {pid} is gone)")
            else:
                result[service.name] = ServiceStatus(service.name, ServiceState.STOPPED)
        return result

    def plan_stop(self, services: list[Service], *, force: bool) -> dict[str, object]:
        return stop_steps(discover(self.registry, services), services, force=force)

    def plan_start(self, services: list[Service]) -> dict[str, object]:
        return {s.name: StartStep(s) for s in services}

    def plan_restore(self, services: list[Service]) -> dict[str, object]:
        """Each service the way it last ran healthy (its kept definition), after what is left of its failed start."""
        return {name: StartStep(service, restore=note, retry=same)
                for name, (service, note, same) in definitions.restorable(self.registry, services).items()}

    def commit(self, steps: list[StartStep], events: Events) -> None:
        """These started and passed their probe: their definitions are the ones to come back to."""
        for step in steps:
            warning = definitions.keep(self.registry, step.service)
            if warning:
                events.warn(warning)

    def preflight(self, starting: list[Service]) -> list[Problem]:
        problems = [p for p in (writable(self.registry.state_dir, "state", "state_dir"),
                                writable(self.registry.log_dir, "log", "log_dir",
                                         [self.registry.log_file(s) for s in starting])) if p]
        for service in starting:
            try:
                environment = environment_of(service)
            except ConfigError as exc:
                problems.append(Problem(f"{service.name}: {exc}", 2))
                continue
            problems += [p for p in (runnable(service, environment), service.build and runnable(
                service, environment, service.build.command, "build.command")) if p]
        return problems

    def prepare(self, starting: list[Service], events: Events, build: bool = True) -> None:
        """The registry's build steps of the services to start (native/build.py), unless --no-build."""
        for service in starting:
            if build and service.build is not None:
                builds.run(self.registry, service, events)

    def execute_stop(self, steps: list[StopStep], events: Events,
                     done: Callable[[str, StopResult], None] = lambda name, result: None) -> dict[str, StopResult]:
        """A batch: every service signalled, one right after another, then each watched in a thread of its own,
        which says its result to `done` as soon as it has one."""
        signalled = {step.service: stop.signal_first(step) for step in steps}

        def one(name: str) -> StopResult:
            result = _settled(events, name, stop.finish(signalled[name]))
            if result.stopped:
                warning = records.remove(self.registry.state_dir, name)
                if warning:
                    events.warn(warning)
            done(name, result)
            return result
        return run_parallel({name: (lambda n=name: one(n)) for name in signalled})

    def execute_start(self, steps: list[StartStep], events: Events, cancel: threading.Event,
                      done: Callable[[str, Outcome], None] = lambda name, outcome: None) -> dict[str, Outcome]:
        """A batch: each service prepared (a thread each: a restore may first stop what is left of a failed start),
        then all launched from here one right after another, then each settled and waited for in a thread of
        its own, which says its outcome to `done` as soon as it has one."""
        prepared = run_parallel({step.service.name: (lambda s=step: start.prepare(self.registry, s, events,
                                                                                 self.booting))
                                 for step in steps})
        launched = start.launch(prepared, cancel)

        def one(name: str) -> Outcome:
            outcome = _settled(events, name, start.execute(self.registry, launched[name], events, cancel,
                                                           self.booting))
            done(name, outcome)
            return outcome
        return run_parallel({name: (lambda n=name: one(n)) for name in launched})

    def tidy(self) -> None:
        """Drop run records whose processes are all gone, or that are not trusted: they only mislead the next run."""
        for name in discover(self.registry).stale:
            records.remove(self.registry.state_dir, name)  # a record that cannot go is checked again next time

    def status_view(self) -> StatusView:
        """docker-restart.py --mode native status: what status shows in every mode."""
        services = self.registry.managed
        return statusview.view(self.registry, "native", self.statuses(services), dict.fromkeys(
            (s.name for s in services), self.name))

    def log_lines(self, services: list[Service], tail: int | None, follow: bool) -> Iterator[str]:
        """This run's lines of these services' logs (every managed service's when none is named)."""
        chosen = services or self.registry.managed
        return native_logs.lines({s.name: self.registry.log_file(s) for s in chosen}, tail, follow)

    def logs(self, service: Service, tail: int) -> list[str]:
        """Its log's last `tail` lines (read from a bounded tail of the file: a log of gigabytes, or a FIFO or
        device put in its place, costs no more than that)."""
        try:
            data, _ = read_part(self.registry.log_file(service), None, LOG_TAIL_BYTES)
        except (OSError, FileProblem):
            return []
        return data.decode("utf-8", "replace").splitlines()[-tail:]

    def address(self, service: Service) -> Service:
        return service



    def extra_disk_paths(self) -> list:
        return []


def _settled(events: Events, service: str, result):
    """A service's wait is over as soon as its own is (not when its batch's slowest is): said, then its result."""
    events.settled(service)
    return result
