"""Carry out one native start step: spawn the service, then wait until it serves, its startup timeout ends, or
its process exits (a failure at once).

Waiting costs the service as few requests as it can: a real service writes an access-log line per request, and
polling its health path every few milliseconds (as this did) made the real orchestrator answer 150 requests a
second and fill its log while it boots. So:
- until the port is listening (the kernel's listening sockets), nothing is asked of the service at all: it
  cannot answer yet;
- then it is probed at once, and again every PROBE_EVERY, and at once when it writes a line of its own (a
  server says "Application startup complete" as it becomes ready; the probes' own access-log lines do not count),
  as long as its budget allows: a token bucket of PROBE_BURST probes, refilled at PROBE_RATE a second, so never
  more than that on average, and readiness is seen within PROBE_EVERY of the moment it would first answer,
  usually within a tick of its "ready" line.

What costs the service nothing (its process, its port, its log) is looked at every TICK by one watcher for every
service that waits (a wave of 20 is one loop, not 20: the toolkit's CPU is taken from the services that boot),
which wakes a service's own thread only when something changed; the thread probes and decides. The kernel's
listening sockets are the dearest of the three (a dump of every listener on the host): they are read when a
service not yet seen listening writes a line (a server says so as it begins to listen: uvicorn's "Uvicorn running
on ...") and at least every PORTS_EVERY, not at every tick.

An answer counts only when the service gives it (the rule health uses): once a probe says it serves, the
port's listening socket must be held by one of the service's own processes. A stranger that answers there
while the service boots fails the start at once (its dependents must not start against it), named.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ..data import dataclass
from ..errors import OperationFailed
from ..events import Events
from ..files import FileProblem, read_part
from ..loglines import is_probe_request
from ..ports import held_by, listening_sockets, port_holders, port_open
from ..probes import ProbeResult, probe
from ..redact import command_line
from ..registry import Registry, Service
from ..results import Outcome
from ..states import SERVING, Health
from . import proof, records, spawn, stop
from .discovery import describe_holders, discover
from .spawn import Launched, Prepared, Spawned
from .procs import Proc
from .steps import StartStep, StopStep, frozen, stop_steps

TICK = 0.005  # seconds between looks at what costs the service nothing: its process, its log ...
PORTS_EVERY = 0.025  # ... and at most these between two reads of the listening sockets (at once on a line written)
PROBE_RATE = 10.0  # probes a second at most, on average, of one service ...
PROBE_BURST = 2.0  # ... with this many at once (a probe led by its "ready" line need not wait)
PROBE_EVERY = 0.2  # seconds at most between two probes once it listens


class _Output:
    """What the service writes from `offset` on: whether, since the last look, it wrote a line of its own (not an
    access-log line of a probe of its health path)."""

    def __init__(self, service: Service, path: Path, offset: int) -> None:
        self.service, self.path, self.offset = service, path, offset
        self.partial = b""

    def news(self) -> bool:
        try:
            if os.stat(self.path).st_size <= self.offset:
                return False
            data, self.offset = read_part(self.path, self.offset, 1 << 20)
        except (OSError, FileProblem):  # rotated, removed or replaced meanwhile: the timer probes it anyway
            return False
        *lines, self.partial = (self.partial + data).split(b"\n")
        return any(line.strip() and not is_probe_request(self.service, line.decode("utf-8", "replace"))
                   for line in lines)


def _own_pids(registry: Registry, service: Service, spawned: Spawned) -> set[int]:
    """The service's processes as discovery finds them: those of its cgroup (the kernel's own list, which
    discovery asks first) where it has one, else by its run record."""
    if spawned.record.cgroup:
        return set(proof.cgroup_pids(spawned.record.cgroup))
    found = discover(registry, [service]).ours.get(service.name)
    return {p.pid for p in found.members} if found else set()


def _answered_by_itself(registry: Registry, service: Service, spawned: Spawned) -> tuple[bool | None, str]:
    """(whether the service's own processes hold its listening socket: None while none is seen; if another
    process does, who). Asked only once a probe says it serves: a poll itself stays a probe."""
    pids = _own_pids(registry, service, spawned)
    held = held_by(service.port, pids, listening_sockets())
    if held is not False:
        return held, ""
    strangers = [h for h in port_holders(service.port) if h.pid not in pids]
    return False, describe_holders(service, strangers) + f": it answered in {service.name}'s place; stop it"


class _Waiting:
    """One service waiting to be ready, as the watcher sees it: set by the watcher (listening once, news each
    time it wrote a line of its own, error if the watcher failed), then `wake` set; its thread clears `wake`
    before it reads them, so nothing set after is missed."""

    def __init__(self, service: Service, spawned: Spawned, cancel: threading.Event) -> None:
        self.service, self.process, self.cancel = service, spawned.process, cancel
        self.output = _Output(service, spawned.log, spawned.log_offset)
        self.listening = self.news = False
        self.error: BaseException | None = None
        self.wake = threading.Event()

    def look(self, wrote: bool, listening: dict[int, set[int]] | None) -> None:
        """One tick's look (the watcher's thread only): `wrote` a line of its own since the last; `listening` the
        kernel's listening sockets when they were read this tick."""
        changed = self.cancel.is_set() or self.process.poll() is not None
        if not self.listening:
            if listening is not None and self.service.port in listening:
                self.listening = changed = True
        elif wrote:
            self.news = changed = True
        if changed:
            self.wake.set()


class _Watcher:
    """The one loop, every TICK, over every service of this process that waits to be ready (a thread that runs
    while any does). What fails in it is handed to every waiting thread, which raises it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._running = False

    def add(self, waiting: _Waiting) -> None:
        with self._lock:
            self._waiting.append(waiting)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="readiness-watcher", daemon=True).start()

    def remove(self, waiting: _Waiting) -> None:
        with self._lock:
            self._waiting.remove(waiting)

    def _run(self) -> None:
        ports_due = 0.0  # when the listening sockets are read again, if no line comes first
        while True:
            with self._lock:
                waiting = list(self._waiting)
                if not waiting:
                    self._running = False
                    return
            try:
                wrote = [w.output.news() for w in waiting]
                ports = None
                if any(not w.listening and (line or time.monotonic() >= ports_due) for w, line in zip(waiting, wrote)):
                    ports, ports_due = listening_sockets(), time.monotonic() + PORTS_EVERY
                for w, line in zip(waiting, wrote):
                    w.look(line, ports)
            except BaseException as exc:  # noqa: BLE001  (handed on: each waiting thread raises it)
                for w in waiting:
                    w.error = exc
                    w.wake.set()
            time.sleep(TICK)


WATCHER = _Watcher()


def wait_ready(registry: Registry, service: Service, spawned: Spawned,
               cancel: threading.Event) -> tuple[Health | None, str]:
    """(the probe's verdict once the service itself serves, else None; why not)."""
    waiting = _Waiting(service, spawned, cancel)
    WATCHER.add(waiting)
    try:
        return _wait(registry, service, spawned, waiting)
    finally:
        WATCHER.remove(waiting)


def _wait(registry: Registry, service: Service, spawned: Spawned, waiting: _Waiting) -> tuple[Health | None, str]:
    deadline = spawned.started + service.startup_timeout
    last: ProbeResult | None = None
    due = float("inf")  # the next probe, once it listens
    tokens, filled = PROBE_BURST, time.monotonic()
    while not waiting.cancel.is_set():
        waiting.wake.clear()
        if waiting.error is not None:
            raise waiting.error
        code = spawned.process.poll()
        if code is not None:
            return None, f"exited with code {code} before it was ready"
        now = time.monotonic()
        if now >= deadline:
            why = f"last probe: {last.error or last.status.value}" if last else \
                f"it never listened on port {service.port}"
            return None, f"not ready after {service.startup_timeout:g}s ({why})"
        tokens, filled = min(PROBE_BURST, tokens + (now - filled) * PROBE_RATE), now
        if waiting.listening and (due == float("inf") or waiting.news):
            waiting.news, due = False, now
        if now >= due and tokens >= 1:
            tokens, due = tokens - 1, now + PROBE_EVERY
            last = probe(service, timeout=max(deadline - now, 0.05))
            if last.status in SERVING:
                itself, stranger = _answered_by_itself(registry, service, spawned)
                if itself is False:
                    return None, stranger
                if itself:
                    return last.status, "" if last.status is Health.HEALTHY else f"{last.status.value}: {last.error}"
            continue
        # asleep until the watcher sees something, the next probe is due and affordable, or the deadline
        wake_at = min(deadline, max(due, now + (1 - tokens) / PROBE_RATE))
        waiting.wake.wait(max(wake_at - time.monotonic(), 0))
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
        cancel.wait(TICK)
    return None, "interrupted before it ended"


def _forget(registry: Registry, service: Service, events: Events) -> None:
    warning = records.remove(registry.state_dir, service.name)
    if warning:
        events.warn(warning)


def _clear_leftovers(registry: Registry, service: Service, events: Events) -> str | None:
    """Before a restore: stop what is left of the service's failed start (its processes, proven ours; killed
    after its grace). Why it could not be, else None."""
    step = stop_steps(discover(registry, [service]), [service], force=True).get(service.name)
    if not isinstance(step, StopStep):
        return None  # nothing of it runs (a foreign holder of its port is found below)
    result = stop.execute(step)
    if not result.stopped:
        return f"what is left of its failed start would not stop: {result.detail}"
    events.line(f"  {service.name}: stopped what was left of its failed start ({result.detail})")
    _forget(registry, service, events)
    return None


@dataclass
class Booting:
    """A service an interrupt left starting: as it was spawned, and its process (a restore may wait for it)."""
    service: Service
    spawned: Spawned


def _kept_booting(registry: Registry, step: StartStep, booting: dict[str, Booting]) -> Booting | None:
    """The service's start that an interrupt left in flight, when a restore would start exactly it again: the same
    definition (command, directory, environment), its process still running and not frozen (SIGSTOP: that one is
    stopped and started again). Its boot is kept and waited for: killing it to spawn the same thing again would
    only bring the system back later (and cut off a trading service's initialization midway)."""
    left = booting.pop(step.service.name, None)
    if left is None or not step.restore or left.spawned.process.poll() is not None or \
            dict(left.service.definition) != dict(step.service.definition):
        return None
    procs = [p for p in map(Proc.at, _own_pids(registry, step.service, left.spawned)) if p is not None]
    return None if frozen(procs) else left


def _left_starting(booting: dict[str, Booting], service: Service, spawned: Spawned) -> None:
    """An interrupt ended the wait for it: kept in `booting` while its process runs (a job still running too)."""
    if spawned.process.poll() is None:
        booting[service.name] = Booting(service, spawned)


def prepare(registry: Registry, step: StartStep, events: Events,
            booting: dict[str, Booting]) -> Prepared | Booting | Outcome:
    """Everything before the service's process (a restore clears what is left of its failed start, or keeps its
    start in flight of the very same definition, from `booting`; its port must still be free; its spawn
    prepared), or why it fails."""
    service = step.service
    kept = _kept_booting(registry, step, booting)
    if kept is not None:
        return kept
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
        return spawn.prepare(registry, service)
    except OperationFailed as exc:
        return _failed(service, exc)


def launch(prepared: dict[str, Prepared | Booting | Outcome],
           cancel: threading.Event) -> dict[str, Launched | Booting | Outcome]:
    """The prepared services' processes, one right after another (an interrupt launches no more: those are
    not started); every prepared log is closed, whatever happens."""
    launched: dict[str, Launched | Booting | Outcome] = {}
    try:
        for name, ready in prepared.items():
            if not isinstance(ready, Prepared):
                launched[name] = ready
            elif cancel.is_set():
                launched[name] = Outcome(name, "not started", ready.service.port, detail="interrupted")
            else:
                try:
                    launched[name] = spawn.launch(ready)
                except OperationFailed as exc:
                    launched[name] = _failed(ready.service, exc)
    finally:
        for ready in prepared.values():
            if isinstance(ready, Prepared):
                ready.out.close()
    return launched


def _failed(service: Service, exc: OperationFailed) -> Outcome:
    """Its spawn's failure as its outcome, whose row and line name the service already (not twice)."""
    return Outcome(service.name, "failed", service.port, detail=str(exc).removeprefix(f"{service.name}: "))


def execute(registry: Registry, launched: Launched | Booting | Outcome, events: Events, cancel: threading.Event,
            booting: dict[str, Booting]) -> Outcome:
    """A launched service settled (cgroup, run record), or a kept start in flight, then waited for: ready (a job:
    ended), failed, or interrupted (then kept in `booting`, still starting)."""
    if isinstance(launched, Outcome):
        return launched
    if isinstance(launched, Booting):
        service, spawned = launched.service, launched.spawned
        events.line(f"  {service.name}: still starting as pid {spawned.process.pid} with this very definition: "
                    "waited for, not started again")
    else:
        service = launched.prepared.service
        spawned = spawn.settle(registry, launched)
        events.line(f"  {service.name}: started pid {spawned.process.pid}: "
                    f"{command_line(service.command, service.secret_args)}")
        if spawned.warning:
            events.warn(spawned.warning)
    pid = spawned.process.pid
    if service.oneshot:
        code, why = run_to_end(service, spawned, cancel)
        took = round(time.monotonic() - spawned.started, 2)
        if code == 0:
            _forget(registry, service, events)
            return Outcome(service.name, "done", service.port, f"pid {pid}", took, "exit 0")
        if code is not None:
            _forget(registry, service, events)
            return Outcome(service.name, "failed", service.port, detail=why)
        if cancel.is_set():
            _left_starting(booting, service, spawned)
            return Outcome(service.name, "starting", service.port, f"pid {pid}", detail=why)
        return Outcome(service.name, "failed", service.port, f"pid {pid}",
                       detail=why + "; left running (stop-trading-system.py stops it)")
    serving, why = wait_ready(registry, service, spawned, cancel)
    if serving is not None:
        return Outcome(service.name, "running" if serving is Health.HEALTHY else "degraded", service.port,
                       f"pid {pid}", round(time.monotonic() - spawned.started, 2), why)
    if cancel.is_set():
        _left_starting(booting, service, spawned)
        return Outcome(service.name, "starting", service.port, f"pid {pid}", detail=why)
    if spawned.process.poll() is not None:
        _forget(registry, service, events)
        return Outcome(service.name, "failed", service.port, detail=why)
    return Outcome(service.name, "failed", service.port, f"pid {pid}",
                   detail=why + "; left running for inspection (stop-trading-system.py stops it)")
