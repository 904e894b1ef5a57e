"""Carry out one native start step: spawn the service, then poll its probe until it serves, its startup
timeout ends, or its process exits (a failure at once).

An answer counts only when the service gives it (the rule health uses): once a probe says it serves, the
port's listening socket must be held by one of the service's own processes. A stranger that answers there
while the service boots fails the start at once (its dependents must not start against it), named.
"""

from __future__ import annotations

import threading
import time

from ..errors import OperationFailed
from ..events import Events
from ..ports import held_by, listening_sockets, port_holders, port_open
from ..probes import ProbeResult, probe
from ..registry import Registry, Service
from ..results import Outcome
from ..states import SERVING, Health
from . import records, stop
from .discovery import describe_holders, discover
from .spawn import Spawned, spawn
from .steps import StartStep, StopStep

POLL = 0.005  # seconds between readiness probes (a probe of a local port costs about a millisecond)


def _answered_by_itself(registry: Registry, service: Service) -> tuple[bool | None, str]:
    """(whether the service's own processes hold its listening socket: None while none is seen; if another
    process does, who). Asked only once a probe says it serves: a poll itself stays a probe."""
    found = discover(registry, [service]).ours.get(service.name)
    pids = {p.pid for p in found.members} if found else set()
    held = held_by(service.port, pids, listening_sockets())
    if held is not False:
        return held, ""
    strangers = [h for h in port_holders(service.port) if h.pid not in pids]
    return False, describe_holders(service, strangers) + f": it answered in {service.name}'s place; stop it"


def wait_ready(registry: Registry, service: Service, spawned: Spawned,
               cancel: threading.Event) -> tuple[Health | None, str]:
    """(the probe's verdict once the service itself serves, else None; why not)."""
    deadline = spawned.started + service.startup_timeout
    last: ProbeResult | None = None
    while not cancel.is_set():
        code = spawned.process.poll()
        if code is not None:
            return None, f"exited with code {code} before it was ready"
        left = deadline - time.monotonic()
        if left <= 0:
            why = last.error if last and last.error else (last.status.value if last else "no answer")
            return None, f"not ready after {service.startup_timeout:g}s (last probe: {why})"
        last = probe(service, timeout=max(left, 0.05))
        if last.status in SERVING:
            itself, stranger = _answered_by_itself(registry, service)
            if itself is False:
                return None, stranger
            if itself:
                return last.status, "" if last.status is Health.HEALTHY else f"{last.status.value}: {last.error}"
        time.sleep(POLL)
    return None, "interrupted before it was ready"


def run_to_end(service: Service, spawned: Spawned, cancel: threading.Event) -> tuple[int | None, str]:
    """A oneshot job: (its exit code, why not) once it ends within its startup timeout."""
    deadline = spawned.started + service.startup_timeout
    while not cancel.is_set():
        code = spawned.process.poll()
        if code is not None:
            return code, "" if code == 0 else f"exited with code {code}"
        if time.monotonic() >= deadline:
            return None, f"still running after {service.startup_timeout:g}s"
        time.sleep(POLL)
    return None, "interrupted before it ended"


def _forget(registry: Registry, service: Service, events: Events) -> None:
    warning = records.remove(registry.state_dir, service.name)
    if warning:
        events.warn(warning)


def _clear_leftovers(registry: Registry, service: Service, events: Events) -> str | None:
    """Before a restore: stop what is left of the service's failed start (its processes, proven ours; killed
    after its grace). Why it could not be, else None."""
    from .backend import stop_steps  # the backend imports this module
    step = stop_steps(discover(registry, [service]), [service], force=True).get(service.name)
    if not isinstance(step, StopStep):
        return None  # nothing of it runs (a foreign holder of its port is found below)
    result = stop.execute(step)
    if not result.stopped:
        return f"what is left of its failed start would not stop: {result.detail}"
    events.line(f"  {service.name}: stopped what was left of its failed start ({result.detail})")
    _forget(registry, service, events)
    return None


def execute(registry: Registry, step: StartStep, events: Events, cancel: threading.Event) -> Outcome:
    service = step.service
    if step.restore:
        blocked = _clear_leftovers(registry, service, events)
        if blocked:
            return Outcome(service.name, "failed", service.port, detail=blocked)
    if service.port is not None and port_open(service.host, service.port, 0.2):  # taken since the preflight looked
        found = discover(registry, [service])
        return Outcome(service.name, "failed", service.port, detail=found.in_the_way(service) or (
            f"port {service.port} is held by its own earlier run, which discovery names: stop it first "
            f"(stop-trading-system.py --only {service.name})"))
    try:
        spawned = spawn(registry, service)
    except OperationFailed as exc:
        return Outcome(service.name, "failed", service.port, detail=str(exc))
    pid = spawned.process.pid
    events.line(f"  {service.name}: started pid {pid}: {' '.join(service.command)}")
    if spawned.warning:
        events.warn(spawned.warning)
    if service.oneshot:
        code, why = run_to_end(service, spawned, cancel)
        took = round(time.monotonic() - spawned.started, 2)
        if code == 0:
            _forget(registry, service, events)
            return Outcome(service.name, "done", service.port, f"pid {pid}", took, "exit 0")
        if code is not None:
            _forget(registry, service, events)
            return Outcome(service.name, "failed", service.port, detail=why)
        return Outcome(service.name, "starting" if cancel.is_set() else "failed", service.port, f"pid {pid}",
                       detail=why + ("" if cancel.is_set() else "; left running (stop-trading-system.py stops it)"))
    serving, why = wait_ready(registry, service, spawned, cancel)
    if serving is not None:
        return Outcome(service.name, "running" if serving is Health.HEALTHY else "degraded", service.port,
                       f"pid {pid}", round(time.monotonic() - spawned.started, 2), why)
    if cancel.is_set():
        return Outcome(service.name, "starting", service.port, f"pid {pid}", detail=why)
    if spawned.process.poll() is not None:
        _forget(registry, service, events)
        return Outcome(service.name, "failed", service.port, detail=why)
    return Outcome(service.name, "failed", service.port, f"pid {pid}",
                   detail=why + "; left running for inspection (stop-trading-system.py stops it)")
