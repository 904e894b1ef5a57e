"""Waiting for `up` to give ready containers, bounded by the registry's startup timeouts.

Ready means: the engine's healthcheck says healthy where the compose file has one, else the registry's
probe answers on the published port, else (a service the registry does not know) the container runs.
Each service's clock starts when its container starts; a build or a wait for a dependency does not count.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..probes import probe
from .containers import Container
from .project import Project
from .runner import Background

POLL = 0.25
DEFAULT_STARTUP_TIMEOUT = 60.0  # for a compose service the registry does not know


@dataclass
class Outcome:
    ready: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # compose service -> why
    pending: list[str] = field(default_factory=list)  # not ready when the wait ended (another failed, or cancel)
    interrupted: bool = False


def startup_timeout(project: Project, service: str) -> float:
    known = project.registry_service(service)
    return known.startup_timeout if known else DEFAULT_STARTUP_TIMEOUT


def _verdict(project: Project, c: Container | None, now: float, since: float) -> str | None:
    """'' when ready, None while it may still become ready, else why it failed. A container that stopped
    before this start (`since`) is one compose is about to start again, not a failure."""
    if c is None or c.status == "created":
        return None
    if c.status in ("exited", "dead"):
        if c.finished_at is None or c.finished_at < since:
            return None
        return f"container {c.name} exited with code {c.exit_code}"
    if c.status == "running":
        if c.health == "healthy":
            return ""
        known = project.registry_service(c.service)
        if c.health is None and (known is None or probe(known).status.ok):
            return ""
    limit = startup_timeout(project, c.service)
    if c.started_at is not None and now - c.started_at > limit:
        return f"not ready within {limit:g}s of its start (engine: {c.status}, health: {c.health or 'no healthcheck'})"
    return None


def overall_limit(project: Project, services: list[str]) -> float:
    """Longest the whole start may take: each dependency wave's slowest startup timeout, added up."""
    known = [project.registry_service(s) for s in services]
    waves = project.registry.start_waves([k for k in known if k])
    unknown = sum(1 for k in known if k is None) * DEFAULT_STARTUP_TIMEOUT
    return sum(max(s.startup_timeout for s in wave) for wave in waves) + unknown


def wait_ready(project: Project, services: list[str], up: Background, since: float,
               cancel: threading.Event) -> Outcome:
    """Poll the engine until every service is ready, one fails, `up` fails, the overall limit passes, or
    `cancel` is set (then `up` is stopped: nothing more is started). `since`: when `up` was launched."""
    end = time.monotonic() + overall_limit(project, services)
    while True:
        rc = up.poll()
        now = time.time()
        by_service = {c.service: c for c in project.containers()}
        outcome = Outcome()
        for service in services:
            verdict = _verdict(project, by_service.get(service), now, since)
            if verdict == "":
                outcome.ready.append(service)
            elif verdict is not None:
                outcome.failed[service] = verdict
            else:
                outcome.pending.append(service)
        waiting = outcome.pending
        if rc and not outcome.failed and waiting:
            why = f"compose up failed: {up.error_line() or f'exit {rc}'}"
            outcome.failed, outcome.pending = dict.fromkeys(waiting, why), []
        if outcome.failed or not waiting and rc is not None or time.monotonic() > end:
            break
        if cancel.wait(POLL):
            outcome.interrupted = True
            break
    up.stop()
    if outcome.pending and not outcome.failed and not outcome.interrupted:
        outcome.failed = dict.fromkeys(outcome.pending, "not ready when the overall start limit passed")
        outcome.pending = []
    return outcome
