"""One interface for every way of running the services, and the one place that chooses it.

A backend runs services one way: native processes on this host (native/backend.py), containers of a
docker compose project (compose/backend.py) or the services of a Docker Swarm stack (swarm/backend.py).
Each answers the same operations: detect (does anything of this registry run this way now?), claims (does
it run a service in its own mode?), statuses, plan_stop and plan_start (steps for a selection, decided
from what runs now: plain data that --dry-run prints and the executor carries out as written),
execute_stop and execute_start (a batch of steps each), plan_restore and commit (a restart's
rollback), its status and logs as data (status_view, log_lines; the CLI renders them), and the address to probe
a service at. A way of running that has a stack of its own to remove (modes.Way.removable) also answers
teardown and remove.

The mode (--mode native|docker|swarm|auto) is chosen once, here: it names the backend of every service that
does not name one of its own in the registry; a service that does (infrastructure `backend: compose` in a
native deployment) is run by that one; anything else is outside the deployment, probed but never started
or stopped. No other module compares mode names.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator, Protocol

from . import modes
from .data import dataclass
from .errors import ConfigError
from .registry import Registry, Service
from .states import ServiceState

if TYPE_CHECKING:
    from .events import Events
    from .preflight import Problem
    from .results import Outcome, StatusView, StopResult



@dataclass(frozen=True)
class ServiceStatus:
    """What a backend says about one service, in one vocabulary."""

    service: str  # the registry's name
    state: ServiceState
    pids: tuple[int, ...] = ()  # native: the service's root process first
    container: str | None = None  # docker: container name
    engine_health: str | None = None  # docker: the engine's healthcheck (healthy / unhealthy / starting)
    uptime_seconds: float | None = None
    restart_count: int | None = None
    exit_code: int | None = None
    detail: str = ""
    # Is the service's port answered by the service itself: native, the listening socket is held by one of
    # its processes; docker, its running container publishes the port. None: nothing to say (not running,
    # or nothing listens).
    holds_port: bool | None = None
    # Why no probe from here reaches the instance its address is given for (swarm: a task on another node, with
    # no probe relay): the probe then goes nowhere, and the engine's own view is the only evidence. None: it does.
    unprobed: str | None = None
    # Its other instances (a swarm service's replicas) that do not serve or do not run, each said with where it is:
    # a service that serves is then degraded. None: there are none.
    instances: str | None = None


@dataclass(frozen=True)
class Teardown:
    """What a container backend's `clean` or `--remove-stack` removes (clean.py): exactly this, nothing else."""

    owner: str  # "project tmt", "stack tmt"
    containers: int
    volumes: tuple[str, ...]
    networks: tuple[str, ...]


class Backend(Protocol):
    name: ClassVar[str]  # "native", "compose", "swarm": its row in modes.py
    # A restart replaces each running service in its start wave (swarm's rolling update) instead of stopping
    # everything first, dependents first, and starting it all again.
    restarts_in_place: ClassVar[bool]
    # execute_stop and execute_start may run for several batches at once, and say each service's result as it
    # ends (native: a process each); else one batch at a time, its results said when it returns (one compose up,
    # one deploy).
    batches_overlap: ClassVar[bool]
    registry: Registry

    @classmethod
    def detect(cls, registry: Registry) -> bool:
        """Something of this registry runs this way now (for --mode auto)."""

    def claims(self, service: Service) -> bool:
        """In its own mode, whether this backend runs `service` (else it is outside the deployment)."""

    def statuses(self, services: list[Service]) -> dict[str, ServiceStatus]: ...

    def plan_stop(self, services: list[Service], *, force: bool) -> dict[str, object]:
        """service -> its stop step, or a Blocked (something foreign is in the way), or None (nothing runs). A stop
        step says its `service`, `grace`, `pre_stop` call, `runs_as` and `frozen` (what keeps it from acting on a
        stop now, or None)."""

    def plan_start(self, services: list[Service]) -> dict[str, object]:
        """service -> its start step. A start step says whether it replaces a running service in place
        (`replaces`: swarm's roll) and, for a restore, which definition it brings back (`restore`, `retry`)."""

    def plan_restore(self, services: list[Service]) -> dict[str, object]:
        """service -> a start step that brings it back the way it last ran healthy (native: its kept definition;
        compose: its previous image; swarm: the service's previous spec), after what is left of its failed start:
        a restart's rollback (operations.py)."""

    def commit(self, steps: list, events: "Events") -> None:
        """These start steps ended ready and healthy: what they ran is what a rollback comes back to from now on."""

    def preflight(self, starting: list[Service]) -> list["Problem"]:
        """What must hold before anything is stopped for these services to start."""

    def prepare(self, starting: list[Service], events: "Events", build: bool = True) -> None:
        """Work that may fail and must come before any change (docker: pull and build images; native: the
        registry's build steps); `build` False: --no-build, nothing is built."""

    def execute_stop(self, steps: list, events: "Events") -> dict[str, "StopResult"]:
        """Carry out a batch of stop steps as they are written (services whose dependents have stopped). Where
        batches_overlap, it also takes `done(name, result)`, called as each one ends."""

    def execute_start(self, steps: list, events: "Events", cancel: threading.Event) -> dict[str, "Outcome"]:
        """Carry out a batch of start steps (services whose dependencies are up); each ends ready, failed, or
        (cancel) starting. Where batches_overlap, it also takes `done(name, outcome)`, called as each one ends."""

    def logs(self, service: Service, tail: int) -> list[str]:
        """The last lines of a service's own output (what a failed start shows)."""

    def log_lines(self, services: list[Service], tail: int | None, follow: bool) -> Iterator[str]:
        """These services' output (all the backend runs when none is named), the last `tail` lines of each; with
        `follow`, what comes next, until the generator is closed."""

    def status_view(self) -> "StatusView":
        """Its status as data: a --json document and a table (results.StatusView)."""

    def address(self, service: Service) -> Service:
        """The service as a probe reaches it from here (its host and port)."""

    def tidy(self) -> None:
        """After a stop: drop what the backend knows to be stale (native: records of processes gone)."""

    def extra_disk_paths(self) -> list:
        """Disks whose fill level matters to this backend (docker: the engine's data directory)."""


def default_backend(mode: str) -> type:
    """The backend class of a --mode (modes.py: the table of ways of running)."""
    way = modes.of_mode(mode)
    if way is None:
        raise ConfigError(f"unknown mode '{mode}': use one of {', '.join(modes.modes())} or auto")
    return way.backend_class()


def resolve_mode(requested: str, registry: Registry, among: tuple[str, ...] | None = None) -> tuple[str, bool]:
    """(mode, detected). --mode auto: the first mode (of `among`, by default every mode) whose backend finds
    something of this registry running, else the registry's default_mode if it is one of them, else the first."""
    among = among or modes.modes()
    if requested != "auto":
        return requested, False
    for mode in among:
        if default_backend(mode).detect(registry):
            return mode, True
    return (registry.default_mode if registry.default_mode in among else among[0]), False


class Deployment:
    """Which backend runs each service of the registry, in one mode."""

    def __init__(self, registry: Registry, mode: str, **options) -> None:
        self.registry, self.mode = registry, mode
        self._options = options  # passed to every backend (docker: compose file and project name)
        self._backends: dict[str, Backend] = {}
        self.default = self.backend(default_backend(mode).name)  # the backend of every service without its own
        self.assignment: dict[str, str | None] = {
            s.name: s.backend or (self.default.name if self.default.claims(s) else None)
            for s in registry.services.values()}

    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = modes.of_backend(name).backend_class()(self.registry, **self._options)
        return self._backends[name]

    def of(self, service: Service) -> Backend | None:
        name = self.assignment[service.name]
        return None if name is None else self.backend(name)

    @property
    def managed(self) -> list[Service]:
        """The services some backend of this deployment starts and stops, in registry order."""
        return [s for s in self.registry.services.values() if self.assignment[s.name]]

    def group(self, services: Iterable[Service]) -> dict[str, list[Service]]:
        """backend name -> its services among these (those outside the deployment are left out)."""
        grouped: dict[str, list[Service]] = {}
        for service in services:
            name = self.assignment[service.name]
            if name:
                grouped.setdefault(name, []).append(service)
        return grouped
