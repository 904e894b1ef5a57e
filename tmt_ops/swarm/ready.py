"""Waiting for the tasks one wave's deploy made, bounded by the registry's startup timeouts.

Only tasks of this deploy count (they carry its rollout id): while a rolling restart replaces a service, its
old task is neither ready nor failed. (A rollback's tasks carry the run id of the spec it returns to, as do
the tasks that spec ran before: one of those that runs counts, one that ends (the update in flight stopping
it) says nothing about the rollback.) Ready means: the
service's healthcheck passed where it has one (a swarm task with a healthcheck is "starting" until its first
success, then "running"), else the registry's probe answers from this host at the task's own address; for a
oneshot job, its task completed with exit code 0. A task of this deploy that ends first has failed, and says why: the engine's error, its exit code,
and its healthcheck's last words where the container is on this node. So has one whose node is seen lost, or that
the swarm shut down before it ended (its node lost or drained): with restart policy none nothing will start it, and
the wait ends then, naming the node, instead of after its timeouts. Each task's clock starts when it
does; scheduling and image pulls have PLACE_SLACK besides.
"""

from __future__ import annotations

import threading
import time
from typing import Mapping

from ..data import dataclass, field
from ..probes import probe
from ..registry import Service
from ..states import SERVING
from .stack import Stack
from .state import ENDED, LOST, SwarmService, Task

POLL = 0.1
PLACE_SLACK = 30.0  # seconds a task may take to be scheduled and get its image, besides its startup timeout


@dataclass
class Waited:
    ready: dict[str, Task] = field(default_factory=dict)  # registry service -> a running (or done) task
    failed: dict[str, str] = field(default_factory=dict)  # registry service -> why
    seconds: dict[str, float] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # not decided when the wait ended (cancel)
    lost: set[str] = field(default_factory=set)  # of the failed: those whose task's node was lost, not its definition


def health_words(stack: Stack, task: Task) -> str:
    """The last healthcheck output of a task's container, where it is on this node ("" when there is none)."""
    if task.container is None or task.node_id != stack.local_node:
        return ""
    container = stack.engine.container(task.container) or {}
    log = ((container.get("State") or {}).get("Health") or {}).get("Log") or []
    if not log:
        return ""
    last = log[-1]
    lines = [line.strip() for line in str(last.get("Output", "")).splitlines() if line.strip()]
    words = lines[-1][:200] if lines else ""  # a traceback's last line says what went wrong
    return f"healthcheck: exit {last.get('ExitCode')}{', ' + words if words else ''}"


def _answers(stack: Stack, service: Service, task: Task, address) -> bool:
    target = address(service, task)
    return target is not None and probe(target).status in SERVING


def _verdict(stack: Stack, service: Service, svc: SwarmService | None, replicas: int, rollout: str | None,
             deployed: float, address, existing: frozenset[str]) -> tuple[str | None, Task | None]:
    """('', task) ready; (None, _) not yet; (why, _) failed."""
    ours = [t for t in (svc.tasks if svc else ()) if t.rollout == rollout]
    ended = [t for t in ours if t.state in ENDED and t.id not in existing]
    # the swarm gave up on a task of this deploy (its node was lost or drained), or its node is not ready: nothing
    # will bring it up (the restart policy is none), so waiting out the timeouts would only delay the verdict
    lost = [t for t in ours if t.id not in existing and t.state not in ENDED and (t.given_up or t.node_note in LOST)]
    if lost and not ended:
        return f"{lost[0].describe()}; nothing will start it", lost[0]
    if service.oneshot:
        done = [t for t in ended if t.state == "complete" and t.exit_code == 0]
        if done:
            return "", done[0]
    elif ended:
        task = ended[0]
        extra = health_words(stack, task)
        return f"{task.describe()}{'; ' + extra if extra else ''}", task
    if ended:  # a job that did not exit 0
        return ended[0].describe(), ended[0]
    running = [t for t in ours if t.live and t.state == "running"]
    if not service.oneshot and len(running) >= replicas and (
            svc.healthcheck or all(_answers(stack, service, t, address) for t in running)):
        return "", running[0]
    now = time.time()
    started = [t for t in ours if t.live and t.state in ("starting", "running") and t.since]
    if started and now - min(t.since for t in started) > service.startup_timeout:
        task = started[0]
        extra = health_words(stack, task)
        return (f"not ready within {service.startup_timeout:g}s of its start ({task.describe()}"
                f"{'; ' + extra if extra else ''})"), task
    if not started and now - deployed > service.startup_timeout + PLACE_SLACK:
        task = ours[0] if ours else None
        where = f"{task.describe()}{': ' + task.error if task.error else ''}" if task else "no task was made"
        return f"no task started within {service.startup_timeout + PLACE_SLACK:g}s of the deploy ({where})", task
    return None, None


def wait_ready(stack: Stack, services: list[Service], replicas: Mapping[str, int], rollouts: Mapping[str, str | None],
               deployed: float, cancel: threading.Event, address, existing: frozenset[str] = frozenset()) -> Waited:
    """Poll the stack until each service is ready or failed, or `cancel` is set. `rollouts`: the run id each
    service's tasks to await carry; `deployed`: time.time() of the deploy; `address(service, task)`: where to
    probe a task from here (None: it cannot be reached); `existing`: the tasks there before (ids), which may
    count as ready but never fail it."""
    waited = Waited()
    pending = list(services)
    began = time.monotonic()
    while pending:
        snap = stack.snapshot(max_age=0)
        for service in list(pending):
            why, task = _verdict(stack, service, snap.services.get(service.compose_service), replicas[service.name],
                                 rollouts[service.name], deployed, address, existing)
            if why is None:
                continue
            pending.remove(service)
            waited.seconds[service.name] = round(time.monotonic() - began, 2)
            if why == "":
                waited.ready[service.name] = task
            else:
                waited.failed[service.name] = why
                if task is not None and (task.given_up or task.node_note in LOST):
                    waited.lost.add(service.name)
        if pending and cancel.wait(POLL):
            waited.pending = [s.name for s in pending]
            break
    return waited
