"""The compose backend: services as containers of one docker compose project (v2, else v1), changed with the
compose CLI (always -p and -f: no other project is touched) and read and stopped through the engine."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .. import prestop
from ..backends import ServiceStatus
from ..errors import ConfigError, OperationFailed, TmtError
from ..events import Events
from ..executor import run_parallel
from ..preflight import Problem
from ..registry import Registry, Service
from ..results import Outcome, StopResult
from .engine import Engine
from .project import Project
from .ready import wait_ready
from .stackfile import built, pulled
from .status import service_statuses
from .steps import BACKEND, StartStep, StopStep

DEFAULT_DOCKER_ROOT = Path("/var/lib/docker")


def engine_possible() -> bool:
    """A Docker engine could be here at all (asking one that cannot be costs a connection timeout)."""
    return bool(os.environ.get("DOCKER_HOST")) or os.path.exists("/var/run/docker.sock")


class ComposeBackend:
    name = BACKEND
    mode = "docker"

    def __init__(self, registry: Registry, *, compose_file: Path | None = None, project_name: str | None = None,
                 **_options) -> None:
        self.registry = registry
        self.project = Project(registry, project_name, compose_file)

    @classmethod
    def detect(cls, registry: Registry) -> bool:
        """A container of this registry's compose project runs (False when no engine answers)."""
        if not engine_possible():
            return False
        try:
            return any(c["State"] == "running" for c in Engine(timeout=2).listed(registry.compose_project))
        except ConfigError:
            return False

    def claims(self, service: Service) -> bool:
        return service.compose_service in self.project.services

    def statuses(self, services: list[Service]) -> dict[str, ServiceStatus]:
        return service_statuses(self.project, services)

    def plan_stop(self, services: list[Service], *, force: bool) -> dict[str, object]:
        """Every container of each service, running or not, is stopped and removed (the next start makes a new
        one from the current image and file). `force` changes nothing: the engine kills after the grace."""
        by_service: dict[str, list] = {}
        for c in self.project.containers():
            by_service.setdefault(c.service, []).append(c)
        plan: dict[str, object] = {}
        for s in services:
            containers = by_service.get(s.compose_service, [])
            if not containers:
                plan[s.name] = None
                continue
            running = [c for c in containers if c.status == "running"]
            reason = ", ".join(f"{c.name} is {c.status}" for c in containers)
            plan[s.name] = StopStep(s.name, tuple((c.id, c.name) for c in containers), s.stop_grace,
                                    prestop.planned(s) if running else None, reason)
        return plan

    def plan_start(self, services: list[Service]) -> dict[str, object]:
        return {s.name: StartStep(s, s.compose_service) for s in services}

    def preflight(self, starting: list[Service]) -> list[Problem]:
        """An engine answers (ConfigError, exit 2, when none does) and compose accepts the compose file."""
        self.project.engine.ping()
        try:
            self.project.compose.run("config", "--quiet")
        except OperationFailed as exc:
            return [Problem(f"compose file {self.project.file} is not valid: {exc}", 2)]
        return []

    def prepare(self, starting: list[Service], events: Events) -> None:
        """Pull what is pulled (offline: a warning, local images are used), then build what is built: before
        anything stops, so a failed build leaves the running stack alone."""
        names = {s.compose_service for s in starting}
        services = {name: spec for name, spec in self.project.declared.items() if name in names}
        to_pull = pulled(services)
        if to_pull:
            try:
                self.project.compose.run("pull", *to_pull)
            except OperationFailed as exc:
                events.warn(f"pull failed, using local images: {exc}")
        to_build = built(services)
        if to_build:
            events.info(f"building images of project {self.project.name} (minutes the first time, seconds when cached)")
            self.project.compose.run("build", *to_build)

    def execute_stop(self, steps: list[StopStep], events: Events) -> dict[str, StopResult]:
        return run_parallel({step.service: (lambda s=step: self._stop(s)) for step in steps})

    def _stop(self, step: StopStep) -> StopResult:
        started = time.monotonic()
        try:
            for cid, _ in step.containers:
                self.project.engine.stop(cid, step.grace)
                self.project.engine.remove("containers", cid)
        except TmtError as exc:
            left = tuple(name for _, name in step.containers)
            return StopResult(step.service, False, f"the engine could not stop it: {exc}", left,
                              time.monotonic() - started)
        took = time.monotonic() - started
        return StopResult(step.service, True, f"stopped and removed in {took:.2f}s", (), took)

    def execute_start(self, steps: list[StartStep], events: Events, cancel: threading.Event) -> dict[str, Outcome]:
        services = [step.service for step in steps]
        since, began = time.time(), time.monotonic()
        up = self.project.compose.start("up", "-d", "--no-deps", "--no-build", *(s.compose_service for s in services))
        outcome = wait_ready(self.project, services, up, since, cancel)
        took = round(time.monotonic() - began, 2)
        results = {}
        for s in services:
            if s.name in outcome.ready:
                c = outcome.ready[s.name]
                results[s.name] = Outcome(s.name, "done" if s.oneshot else "running", s.port, f"container {c.name}",
                                          took, "exit 0" if s.oneshot else "")
            elif s.name in outcome.failed:
                results[s.name] = Outcome(s.name, "failed", s.port, detail=outcome.failed[s.name])
            else:
                results[s.name] = Outcome(s.name, "starting", s.port, detail="interrupted before it was ready")
        return results

    def tidy(self) -> None:
        """Nothing outlives a stop here: the engine keeps no record the next run could be misled by."""

    def logs(self, service: Service, tail: int) -> list[str]:
        try:
            done = self.project.compose.run("logs", "--no-color", "--tail", str(tail), service.compose_service)
        except TmtError:
            return []
        return done.stdout.splitlines()

    def address(self, service: Service) -> Service:
        return service  # published on the registry's host and port (TMT_PORT_<SERVICE>, TMT_PUBLISH_ADDRESS)

    def merge(self, result, status):
        from ..health.merge import merge_docker
        return merge_docker(result, status)

    def next_steps(self, service: Service, status: ServiceStatus | None, commands) -> list[tuple[str, str]]:
        gone = status is None or status.state.value in ("stopped", "failed")
        name = service.compose_service
        return [("read its container log", commands.script("docker-restart.py", f"logs {name} --tail 100")),
                ("start its container" if gone else "restart it (and its dependents)",
                 commands.script("docker-restart.py", f"{'start' if gone else 'restart'} {name}"))]

    def extra_disk_paths(self) -> list:
        try:
            return [Path(Engine(timeout=2).info().get("DockerRootDir") or DEFAULT_DOCKER_ROOT)]
        except TmtError:  # the engine's own answer is a nicety; the default location is right almost always
            return [DEFAULT_DOCKER_ROOT]
