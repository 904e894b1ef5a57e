"""The compose backend: services as containers of one docker compose project (v2, else v1), changed with the
compose CLI (always -p and -f: no other project is touched) and read and stopped through the engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

from .. import hooks
from ..backends import ServiceStatus, Teardown
from ..engine import Engine, cli, endpoint
from ..errors import ConfigError, OperationFailed, TmtError
from ..events import Events
from ..parallel import run_parallel
from ..preflight import Problem, ports_taken
from ..registry import Registry, Service
from ..results import Outcome, StatusView, StopResult
from .containers import CONFIG_HASH_LABEL, PROJECT_LABEL, container_labels, project_label
from .project import Project
from .ready import wait_ready
from . import previous, status as status_view
from .steps import BACKEND, StartStep, StopStep

class ComposeBackend:
    name = BACKEND
    restarts_in_place = False
    batches_overlap = False  # one `docker compose up` per batch (a stop's batch: its containers together)

    def __init__(self, registry: Registry, *, compose_file: Path | None = None, project_name: str | None = None,
                 **_options) -> None:
        self.registry = registry
        self.project = Project(registry, project_name, compose_file)

    @classmethod
    def detect(cls, registry: Registry) -> bool:
        """A container of this registry's compose project runs (False when no engine answers)."""
        try:
            if not endpoint.possible(endpoint.current()):
                return False
            containers = Engine(timeout=2).listed(*container_labels(registry.compose_project))
            return any(c["State"] == "running" for c in containers)
        except ConfigError:
            return False

    def claims(self, service: Service) -> bool:
        """A service of the active profiles, or one the project has a container of (infrastructure started under
        the profile "infra" is the project's, whatever COMPOSE_PROFILES says now)."""
        return service.compose_service in self.project.services or service.compose_service in self.project.present

    def statuses(self, services: list[Service]) -> dict[str, ServiceStatus]:
        return status_view.service_statuses(self.project, services)

    def plan_stop(self, services: list[Service], *, force: bool) -> dict[str, object]:
        """Every container of each service, running or not, is stopped and removed (the next start makes a new
        one from the current image and file). `force` changes nothing: the engine kills after the grace. A paused
        container is `frozen`: it answers nothing, not even its pre-stop call (the engine's stop resumes it, so
        that its stop signal reaches it)."""
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
            paused = [c.name for c in containers if c.status == "paused"]
            reason = ", ".join(f"{c.name} is {c.status}" for c in containers)
            plan[s.name] = StopStep(s.name, tuple((c.id, c.name) for c in containers), s.stop_grace,
                                    hooks.pre_stop(s) if running else None, reason,
                                    f"container {paused[0]} is paused (docker pause)" if paused else None)
        return plan

    def plan_start(self, services: list[Service]) -> dict[str, object]:
        return {s.name: StartStep(s, s.compose_service) for s in services}

    def plan_restore(self, services: list[Service]) -> dict[str, object]:
        """Each service on the image it ran before this restart (previous.py: the image only, under the compose
        file as it is now), after what is left of its failed start; the compose file's own image when none is
        kept (it did not run before). `retry`: that image runs the same as the one its failed container was made
        from (nothing was rebuilt, or rebuilt the same), so it would fail the same way."""
        failed_on = {c.service: c.image_id for c in self.project.containers()}
        plan: dict[str, object] = {}
        for s in services:
            kept = previous.kept(self.project, s.compose_service)
            if kept is None:
                plan[s.name] = StartStep(s, s.compose_service, retry=True,
                                         restore="its compose file's image (none kept: it did not run before)")
                continue
            failed = self.project.engine.image(failed_on[s.compose_service]) if s.compose_service in failed_on else None
            same = failed is not None and previous.runs(failed) == kept.runs
            note = kept.describe() + (", which runs the same as the new one" if same else "")
            plan[s.name] = StartStep(s, s.compose_service, note, same, kept.reference)
        return plan

    def commit(self, steps: list[StartStep], events: Events) -> None:
        """These came up ready and healthy: the images they ran before are no longer kept (previous.py)."""
        for step in steps:
            try:
                previous.release(self.project, step.compose_service)
            except TmtError as exc:
                tag = previous.reference(self.project.name, step.compose_service)
                events.warn(f"{step.service.name}: cannot drop {tag}, the tag of its previous image ({exc}): "
                            "`docker rmi` it")

    def preflight(self, starting: list[Service]) -> list[Problem]:
        """An engine answers (ConfigError, exit 2, when none does), compose accepts the compose file, and no
        port of a service to start is held by anything but this project's own container."""
        self.project.engine.ping()
        try:
            self.project.compose.run("config", "--quiet")
        except OperationFailed as exc:
            return [Problem(f"compose file {self.project.file} is not valid: {exc}", 2)]
        project = self.project.name
        return ports_taken(starting, self.project.engine, f"compose project {project}",
                           lambda labels: labels.get(PROJECT_LABEL) == project and CONFIG_HASH_LABEL in labels)

    def prepare(self, starting: list[Service], events: Events, build: bool = True) -> None:
        """Keep the image each of these runs now (a rollback's way back, previous.py), then pull and build."""
        names = [s.compose_service for s in starting]
        for warning in previous.keep(self.project, names):
            events.warn(warning)
        self.project.prepare_images(names, events, build)

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
        """One `up` for the wave; a rollback's steps run on their kept images (an override file: compose
        recreates what their failed start left)."""
        from .runner import overridden  # here: `status` never runs compose (project.py)
        services = [step.service for step in steps]
        kept = {step.compose_service: {"image": step.image, "pull_policy": "never"} for step in steps if step.image}
        with overridden(self.project.compose, kept) as compose:
            since, began = time.time(), time.monotonic()
            up = compose.start("up", "-d", "--no-deps", "--no-build", *(s.compose_service for s in services))
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



    # -- docker-restart.py's own commands ---------------------------------------------------------------------
    def status_view(self) -> StatusView:
        return status_view.view(self.project)

    def log_lines(self, services: list[Service], tail: int | None, follow: bool) -> Iterator[str]:
        """The engine's logs of these services' containers (every one's when none is named), as compose shows
        them; with `follow`, until the generator is closed."""
        args = ["logs", "--no-color", *(["--tail", str(tail)] if tail is not None else []),
                *(["--follow"] if follow else []), *(s.compose_service for s in services)]
        self.project.engine.ping()
        return cli.lines([self.project.compose.argv(*args)], self.project.compose.env)

    def teardown(self) -> Teardown:
        """Everything of the project, whatever profile started it: its containers, volumes and networks, found
        by their labels."""
        self.project.engine.ping()
        label = project_label(self.project.name)
        return Teardown(f"project {self.project.name}", len(self.project.containers()),
                        tuple(self.project.engine.volumes(label)), tuple(self.project.engine.networks(label)))

    def in_the_way(self, teardown: Teardown) -> list[str]:
        """What would make `remove(teardown)` fail half-way: a volume or network of the project that someone
        else's container uses (engine/in_use.py)."""
        from ..engine.in_use import foreign_users
        name = self.project.name
        return foreign_users(self.project.engine, teardown.owner, teardown.volumes, teardown.networks,
                             lambda labels: labels.get(PROJECT_LABEL) == name and CONFIG_HASH_LABEL in labels)

    def remove(self, teardown: Teardown | None, events: Events) -> None:
        """Every container of the project, whatever profile started it (stopped with its service's grace, then
        removed: `down` would see only the services of the active profiles), then the volumes `teardown` listed
        that are still there (None: every volume stays) and its networks; and the images it keeps for
        rollbacks. A failure (TmtError) leaves the rest in place."""
        engine = self.project.engine
        label = project_label(self.project.name)
        left = self.project.containers()
        longest = max(s.stop_grace for s in self.registry.services.values())
        for c in left:
            service = self.project.registry_service(c.service)
            engine.stop(c.id, service.stop_grace if service else longest)
            engine.remove("containers", c.id)
        unnamed = sorted({c.service for c in left if self.project.registry_service(c.service) is None})
        if unnamed:
            events.warn(f"removed the containers of {', '.join(unnamed)}, which the registry does not name: nothing "
                        "starts them again")
        volumes = sorted(set(teardown.volumes) & set(engine.volumes(label))) if teardown else []
        for volume in volumes:
            engine.remove("volumes", volume)
        networks = engine.networks(label)
        for network in sorted(set(teardown.networks) & set(networks) if teardown else networks):
            engine.remove("networks", network)
        previous.drop_all(self.project)
        events.ok(f"removed project {self.project.name} (its containers and networks"
                  f"{', volumes ' + ', '.join(volumes) if volumes else ''})")

    def extra_disk_paths(self) -> list:
        return [Engine(timeout=2).root_dir()]
