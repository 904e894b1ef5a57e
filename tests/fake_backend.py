"""A backend made of plain data, for pure units of what operations decide (no process, no engine): each service
runs a "definition" (a word) or nothing; a start of a definition listed as broken fails; a step listed to raise
raises, as an engine that goes away would. RowBackend is the same fake as a way of running of its own: one row
(ROW, modes.register) makes it a --mode, a registry's default_mode and a service's `backend:` everywhere."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from tmt_ops import hooks, modes, statusview
from tmt_ops.backends import Deployment, ServiceStatus
from tmt_ops.data import dataclass, field, replace
from tmt_ops.results import Outcome, StopResult
from tmt_ops.states import ServiceState


@dataclass(frozen=True)
class Stop:
    service: str
    pre_stop: object = None  # hooks.HookCall
    frozen: str | None = None
    grace: float = 1.0
    backend: str = "native"  # the backend that carries it out (executor.py groups a wave's steps by it)

    @property
    def runs_as(self) -> str:
        return "fake"

    def describe(self) -> str:
        return f"stop {self.service}"


@dataclass(frozen=True)
class Start:
    service: object  # the registry's Service
    definition: str
    restore: str | None = None
    retry: bool = False
    backend: str = "native"
    replaces: ClassVar[bool] = False

    def describe(self) -> str:
        return f"start {self.service.name} as {self.definition}"


@dataclass
class FakeBackend:
    """Stands in for the native backend of a deployment: `running` maps service -> definition."""

    registry: object
    running: dict = field(default_factory=dict)
    current: str = "new"  # what a plain start runs
    healthy: dict = field(default_factory=dict)  # service -> the definition it last ran healthy with
    broken: set = field(default_factory=set)  # (service, definition) that fail to start
    raises: set = field(default_factory=set)  # ("stop" | "start", service) that raise
    log: list = field(default_factory=list)
    answering: object = None
    name: ClassVar[str] = "native"
    restarts_in_place: ClassVar[bool] = False
    batches_overlap: ClassVar[bool] = False

    def claims(self, service) -> bool:
        return service.managed

    def statuses(self, services):
        return {s.name: ServiceStatus(s.name, ServiceState.RUNNING if s.name in self.running else ServiceState.STOPPED)
                for s in services}

    def plan_stop(self, services, *, force):
        return {s.name: Stop(s.name, hooks.pre_stop(self.address(s)), backend=self.name) if s.name in self.running
                else None for s in services}

    def plan_start(self, services):
        return {s.name: Start(s, self.current, backend=self.name) for s in services}

    def plan_restore(self, services):
        return {s.name: Start(s, self.healthy.get(s.name, self.current), restore="kept", backend=self.name,
                              retry=self.healthy.get(s.name, self.current) == self.current) for s in services}

    def commit(self, steps, events):
        for step in steps:
            self.healthy[step.service.name] = step.definition

    def preflight(self, starting):
        return []

    def prepare(self, starting, events, build=True):
        pass

    def execute_stop(self, steps, events):
        results = {}
        for step in steps:
            if ("stop", step.service) in self.raises:
                raise RuntimeError(f"the engine went away while stopping {step.service}")
            self.running.pop(step.service, None)
            self.log.append(("stopped", step.service))
            results[step.service] = StopResult(step.service, True, "stopped")
        return results

    def execute_start(self, steps, events, cancel: threading.Event):
        results = {}
        for step in steps:
            name = step.service.name
            if ("start", name) in self.raises:
                raise RuntimeError(f"the engine went away while starting {name}")
            self.log.append(("started", name, step.definition))
            if (name, step.definition) in self.broken:
                results[name] = Outcome(name, "failed", step.service.port, detail=f"{step.definition} exited at once")
            else:
                self.running[name] = step.definition
                results[name] = Outcome(name, "running", step.service.port, f"fake {step.definition}", 0.1)
        return results

    def logs(self, service, tail):
        return []

    def address(self, service):
        """Every service of the fake answers where a probe looks: a small server that says 200 to anything (only
        the ones the fake runs are ever asked: the executor probes what it needs outside a plan, hooks call what
        started)."""
        if self.answering is None:
            self.answering = _Answering()
        return replace(service, host="127.0.0.1", port=self.answering.port)

    def merge(self, result, status):
        return result.status, result.error

    def tidy(self):
        pass

    def extra_disk_paths(self):
        return []


class _Answering:
    def __init__(self) -> None:
        class Ok(BaseHTTPRequestHandler):
            def _ok(self):  # healthy in every shape the registry may ask of a body
                body = b'{"status": "healthy", "system_health": "healthy"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = _ok

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class RowBackend(FakeBackend):
    """The fake as a way of running of its own: what it runs outlives one command (in this test process), as a real
    backend's processes or containers do."""

    name: ClassVar[str] = "fake"
    ran: ClassVar[dict] = {}  # service -> definition, for every command of the test process

    def __init__(self, registry, **options):
        super().__init__(registry, running=RowBackend.ran)

    @classmethod
    def detect(cls, registry) -> bool:
        return any(name in cls.ran for name in registry.services)

    def statuses(self, services):
        return {s.name: replace(status, uptime_seconds=1.0 if s.name in self.running else None,
                                            detail=f"fake {self.running[s.name]}" if s.name in self.running else "")
                for s, status in zip(services, super().statuses(services).values())}

    def log_lines(self, services, tail, follow):
        for name in [s.name for s in services] or list(self.running):
            yield f"{name} | runs {self.running.get(name, 'nothing')}"

    def status_view(self):
        ours = [s for s in self.registry.services.values() if s.backend in (None, self.name)]
        return statusview.view(self.registry, self.name, self.statuses(ours),
                               dict.fromkeys((s.name for s in ours), self.name))


ROW = modes.Way("fake", "fake", "a fake for tests", modes.PROCESSES, engine=False, own=True, removable=False,
                path="fake_backend:RowBackend")


def fake_deployment(registry, kind: type = FakeBackend, **kw) -> tuple[Deployment, FakeBackend]:
    """A native deployment of `registry` whose backend is a FakeBackend, or `kind` of one (kw: its fields)."""
    deployment = Deployment(registry, "native")
    fake = kind(registry, **kw)
    deployment._backends["native"] = deployment.default = fake
    return deployment, fake
