"""What the benches measure the toolkit against: the services' own times, taken by hand in the same run.

- readiness: each service spawned by hand (its own session, its output to a file, as the toolkit spawns it) once
  what it needs answers, and its time from spawn to its first HTTP 200;
- released: the same, but each level's services forked and held at a gate until all of them exist, then let go
  at one instant (each execs its command then): a level spawned at once, literally; its readiness counted from
  the release;
- shutdowns: SIGTERM to every process of a wave's services at once (each one's process group, as the toolkit
  signals a cgroup), and the time until the last of them has exited (a pidfd wakes at the exit itself);
- critical paths over the dependency graph, and the toolkit's own probe requests counted in a service's log.

Shared by bench_native.py and bench_scale.py (the bench directory is on sys.path when either runs).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tmt_ops.loglines import MARKER
from tmt_ops.probes import probe
from tmt_ops.registry import Registry, Service
from tmt_ops.states import Health

TIGHT = 0.005  # seconds between two probes of the tight poll
LED_FALLBACK = 0.25  # the output-led poll: seconds between probes when the service writes nothing


def loads() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


@dataclass
class ByHand:
    """Services started by hand; `ready` their start-to-first-200 seconds (from their own spawn, or from their
    level's release); `launched` when each was spawned, in seconds after the first spawn of its level (one Popen
    after another: on 2 cores the later ones of a level of 20 wait for CPU behind those already booting)."""
    procs: dict[str, "subprocess.Popen | Held"] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    launched: dict[str, float] = field(default_factory=dict)

    def kill(self) -> None:
        """Every process of them gone (a wrapper's children too: a port they held is free when this returns)."""
        members = []
        for proc in self.procs.values():
            if proc.poll() is None:
                for pid in _members(proc)[1:]:
                    try:
                        members.append(psutil.Process(pid))
                    except psutil.NoSuchProcess:
                        pass
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        psutil.wait_procs(members, timeout=10)


def spawn(service: Service, log: Path) -> subprocess.Popen:
    """As the toolkit spawns it (spawn.py): its own session, stdin closed, output appended to a file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(list(service.command), cwd=service.cwd, env={**os.environ, **service.env},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)


class Held:
    """A service's process forked by hand and held at its level's gate (a pipe it reads until every writer has
    closed it) before it execs its command: what Popen cannot do, since Popen waits for the exec. The child does
    what spawn() asks of Popen (its own session, stdin closed, output appended to its log, its cwd)."""

    def __init__(self, service: Service, log: Path, gate: tuple[int, int]) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        command, env = list(service.command), {**os.environ, **service.env}
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:  # the child: nothing here may return
            try:
                os.close(gate[1])
                os.setsid()
                out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.chdir(service.cwd)
                os.read(gate[0], 1)  # held until the level is released
                os.close(gate[0])
                os.execvpe(command[0], command, env)
            finally:
                os._exit(127)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def start_released(registry: Registry, logs: Path) -> ByHand:
    """Every managed service started by hand, level by level, each level's services held at a gate until all of
    them are forked and then released at one instant (each level once the one above answers); their readiness
    counted from the release (probed as ready_led probes). The caller kills them (kill())."""
    hand = ByHand()
    try:
        for wave in registry.start_waves(registry.managed):
            gate = os.pipe()
            try:
                for service in wave:
                    hand.procs[service.name] = Held(service, logs / f"{service.name}.log", gate)
            finally:
                os.close(gate[0])
                released = time.perf_counter()
                os.close(gate[1])  # every child reads end-of-file: all of them exec now
            hand.ready.update(ready_led({s.name: (s, hand.procs[s.name], released, logs / f"{s.name}.log")
                                         for s in wave}))
    except BaseException:
        hand.kill()
        raise
    return hand


def _answers(service: Service) -> bool:
    return probe(service, 1).status is Health.HEALTHY


def ready_tight(service: Service, proc: subprocess.Popen, started: float) -> float:
    """Seconds from `started` (its spawn) to its first 200, probed every TIGHT seconds."""
    while not _answers(service):
        if proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {proc.returncode} before it was ready")
        time.sleep(TIGHT)
    return time.perf_counter() - started


def ready_led(pending: dict[str, tuple[Service, "subprocess.Popen | Held", float, Path]]) -> dict[str, float]:
    """Seconds from spawn to first 200 of several services booting at once, each probed within a tick of every
    line it writes (other than the access-log line of a probe) and every LED_FALLBACK seconds otherwise. A 5 ms
    poll of 20 booting services would be 4,000 requests a second on this machine's 2 cores, slowing the very
    floor it measures; a service writes its "ready" (uvicorn: "Application startup complete") as it becomes ready.
    `pending`: name -> (service, process, perf_counter at spawn, its output file)."""
    offsets = {name: 0 for name in pending}
    probed = {name: float("-inf") for name in pending}
    ready: dict[str, float] = {}
    while len(ready) < len(pending):
        for name, (service, proc, started, log) in pending.items():
            if name in ready:
                continue
            news = False
            try:
                size = os.stat(log).st_size
            except OSError:
                size = 0
            if size > offsets[name]:
                with open(log, "rb") as f:
                    f.seek(offsets[name])
                    data = f.read()
                cut = data.rfind(b"\n") + 1
                offsets[name] += cut
                news = any(line.strip() and f'"GET {service.probe.path} '.encode() not in line
                           for line in data[:cut].split(b"\n"))
            now = time.perf_counter()
            if news or now - probed[name] >= LED_FALLBACK:
                probed[name] = now
                if _answers(service):
                    ready[name] = time.perf_counter() - started
                elif proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready")
        time.sleep(TIGHT)
    return ready


def start_by_hand(registry: Registry, logs: Path, led: bool = False) -> ByHand:
    """Every managed service spawned by hand, wave by wave (each wave once the one before answers), each wave's
    services at once; their start-to-first-200 times in .ready. The caller stops them (shutdowns(), else kill())."""
    hand = ByHand()
    try:
        for wave in registry.start_waves(registry.managed):
            pending, first = {}, time.perf_counter()
            for service in wave:
                log = logs / f"{service.name}.log"
                started = time.perf_counter()
                hand.launched[service.name] = started - first
                hand.procs[service.name] = spawn(service, log)
                pending[service.name] = (service, hand.procs[service.name], started, log)
            if led:
                hand.ready.update(ready_led(pending))
            else:  # one service after another: the tight poll
                for name, (service, proc, started, _) in pending.items():
                    hand.ready[name] = ready_tight(service, proc, started)
    except BaseException:
        hand.kill()
        raise
    return hand


def _members(proc: subprocess.Popen) -> list[int]:
    try:
        root = psutil.Process(proc.pid)
        return [root.pid] + [c.pid for c in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def shutdown_wave(procs: dict[str, subprocess.Popen]) -> dict[str, float]:
    """SIGTERM to each process group at once; for each, seconds until every process of it has exited."""
    fds: dict[int, str] = {}
    for name, proc in procs.items():
        for pid in _members(proc):
            try:
                fds[os.pidfd_open(pid)] = name
            except ProcessLookupError:
                pass
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    started = time.perf_counter()
    for proc in procs.values():
        os.killpg(proc.pid, signal.SIGTERM)
    took = dict.fromkeys(procs, 0.0)
    left = set(fds)
    while left:
        for fd, _ in poller.poll(10_000):
            poller.unregister(fd)
            left.discard(fd)
            took[fds[fd]] = time.perf_counter() - started
    for fd in fds:
        os.close(fd)
    for proc in procs.values():
        proc.wait()
    return took


def own_shutdowns(registry: Registry, hand: ByHand) -> dict[str, float]:
    """The stack started by hand stopped wave by wave in reverse order: each service's own time to exit from its
    wave's signal."""
    try:
        own: dict[str, float] = {}
        for wave in registry.stop_waves(registry.managed):
            own.update(shutdown_wave({s.name: hand.procs[s.name] for s in wave}))
        return own
    finally:
        hand.kill()


def shutdowns(registry: Registry, hand: ByHand) -> list[float]:
    """The same: each wave's time to exit."""
    return wave_shutdowns(registry, own_shutdowns(registry, hand))


def wave_shutdowns(registry: Registry, own: dict[str, float]) -> list[float]:
    """Each reverse wave's time to exit: its slowest service's own."""
    return [max(own[s.name] for s in wave) for wave in registry.stop_waves(registry.managed)]


def launched_waves(registry: Registry, hand: ByHand) -> float:
    """Readiness level by level as a starter that spawns one service right after another gets it at best (by
    hand, the cheapest way: Popen alone): each level done when its last is ready, counted from the level's first
    spawn; summed over the levels."""
    return sum(max(hand.launched[s.name] + hand.ready[s.name] for s in level)
               for level in registry.start_waves(registry.managed))


_READY_LINE = re.compile(r"^(\S+): ready in ([0-9.]+)s", re.M)
_STOPPED_LINE = re.compile(r"^(\S+): stopped \(\w+\) in ([0-9.]+)s", re.M)


def said_ready(said: str) -> dict[str, float]:
    """Each service's start time as a toolkit run said it ("NAME: ready in Xs", spawn to ready seen)."""
    return {name: float(s) for name, s in _READY_LINE.findall(said)}


def said_stopped(said: str) -> dict[str, float]:
    """Each service's stop time as a toolkit run said it ("NAME: stopped (SIGTERM) in Xs", signal to port free)."""
    return {name: float(s) for name, s in _STOPPED_LINE.findall(said)}


def critical_path(registry: Registry, own: dict[str, float]) -> float:
    """The longest path of own times through the dependency graph (dependencies outside `own` count as met)."""
    finish: dict[str, float] = {}
    for wave in registry.start_waves(registry.managed):
        for s in wave:
            finish[s.name] = own[s.name] + max((finish[d.name] for d in s.depends_on if d.name in finish), default=0)
    return max(finish.values())


def critical_path_down(registry: Registry, own: dict[str, float]) -> float:
    """The longest path of own shutdown times through the graph reversed: a service's shutdown after its
    dependents' (what a stop that follows the graph reaches at best)."""
    finish: dict[str, float] = {}
    for wave in registry.stop_waves(registry.managed):
        for s in wave:
            after = [d.name for d in registry.managed if s.name in {x.name for x in d.depends_on} and d.name in finish]
            finish[s.name] = own[s.name] + max((finish[d] for d in after), default=0)
    return max(finish.values())


def probe_requests(service: Service, log: Path) -> tuple[int, int]:
    """(requests for its health path in this run's part of its log (after the last start marker) up to and
    including the first answered 200: the readiness probes; all of them in this run's part)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 0, 0
    for n in range(len(lines) - 1, -1, -1):
        if lines[n].startswith(MARKER):
            lines = lines[n + 1:]
            break
    asked = f'"GET {service.probe.path} '
    requests = [line for line in lines if asked in line]
    until_ready = next((n + 1 for n, line in enumerate(requests) if line.rstrip().endswith(" 200")), len(requests))
    return until_ready, len(requests)
