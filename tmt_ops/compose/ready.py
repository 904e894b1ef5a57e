"""Waiting for the containers `up` creates for one wave, bounded by the registry's startup timeouts.

Ready means: the engine's healthcheck is healthy where the compose file has one (the engine is the authority
on its containers: `status`, `depends_on` and `up --wait` say the same), else the registry's probe answers
from the host; for a oneshot job, its container has exited with code 0. Each service's clock starts when its container starts; a wait for the image does not count.
Compose is let finish its `up` once the wave is ready (stopping it half-way makes it stop what it started);
it is stopped only when the wave failed or was interrupted.
"""

from __future__ import annotations

import threading
import time

from ..data import dataclass, field
from ..probes import probe
from ..registry import Service
from ..states import SERVING
from .containers import Container
from .project import Project
from .runner import Background

POLL = 0.05
CREATE_SLACK = 30.0  # seconds `up` may take to create a wave's containers, besides their startup timeouts


@dataclass
class Outcome:
    ready: dict[str, Container] = field(default_factory=dict)  # registry service -> its container
    failed: dict[str, str] = field(default_factory=dict)  # registry service -> why
    pending: list[str] = field(default_factory=list)  # not decided when the wait ended (cancel)
    interrupted: bool = False


def _verdict(service: Service, c: Container | None, now: float, since: float, up_done: bool) -> str | None:
    """'' when ready, None while it may still become ready, else why it failed.

    Only a container this start started (`since`) is judged while `up` runs: an older one may be what compose
    is about to replace (a changed command or image: compose stops it, then makes a new one) or start again.
    Once `up` has ended, what runs is what compose left."""
    if c is None or c.status == "created":
        return None
    ours = c.started_at is not None and c.started_at >= since
    if c.status in ("exited", "dead"):
        if not (ours or up_done):
            return None
        if service.oneshot and c.exit_code == 0:
            return ""  # a job's container that exits 0 is done (where compose's own --wait calls it failed)
        return f"container {c.name} exited with code {c.exit_code}"
    if service.oneshot:  # still at work: wait for its end
        if c.started_at is not None and now - c.started_at > service.startup_timeout:
            return f"still running {service.startup_timeout:g}s after its start"
        return None
    if c.status == "running" and (ours or up_done):
        if c.health == "healthy" or c.health is None and probe(service).status in SERVING:
            return ""
    if c.started_at is not None and now - c.started_at > service.startup_timeout:
        return (f"not ready within {service.startup_timeout:g}s of its start (engine: {c.status}, "
                f"health: {c.health or 'no healthcheck'})")
    return None


def wait_ready(project: Project, services: list[Service], up: Background, since: float,
               cancel: threading.Event) -> Outcome:
    """Poll the engine until each service is ready or failed, `up` fails, or `cancel` is set (then `up` is
    stopped: nothing more is started). `since`: when `up` was launched."""
    end = time.monotonic() + max(s.startup_timeout for s in services) + CREATE_SLACK
    outcome = Outcome()
    while True:
        rc = up.poll()
        newest_last = sorted(project.containers(), key=lambda c: c.started_at or 0.0)
        by_service = {c.service: c for c in newest_last}  # while compose replaces one, the new one counts
        outcome = Outcome()
        for service in services:
            c = by_service.get(service.compose_service)
            verdict = _verdict(service, c, time.time(), since, rc is not None)
            if verdict == "":
                outcome.ready[service.name] = c
            elif verdict is not None:
                outcome.failed[service.name] = verdict
            else:
                outcome.pending.append(service.name)
        if rc and outcome.pending:
            why = f"compose up failed: {up.error_line() or f'exit {rc}'}"
            outcome.failed.update(dict.fromkeys(outcome.pending, why))
            outcome.pending = []
        if not outcome.pending:
            break
        if time.monotonic() > end:
            outcome.failed.update(dict.fromkeys(outcome.pending, "not ready when its wave's start limit passed"))
            outcome.pending = []
            break
        if cancel.wait(POLL):
            outcome.interrupted = True
            break
    if outcome.failed or outcome.interrupted:
        up.stop()
    else:
        up.finish(CREATE_SLACK)
    return outcome
