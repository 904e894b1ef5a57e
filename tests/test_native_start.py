"""Native waves, in-process on real processes. A start wave: its services prepared, launched one right after
another, then settled and waited for by one watcher (not a loop per service); an interrupt or a launch that
fails in between leaves nothing half done. A stop wave: every service signalled before any is watched."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from support import wait_for

from tmt_ops.data import replace
from tmt_ops.native import records, spawn, start, stop
from tmt_ops.native.backend import NativeBackend
from tmt_ops.native.discovery import discover
from tmt_ops.native.steps import StartStep, stop_steps
from tmt_ops.registry import load_registry
from tmt_ops.results import Outcome

CORE = ("orchestrator", "market-analysis", "execution-engine", "dashboard")


class Said:
    """Events that keep what they are told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.lines.append(" ".join(str(a) for a in args))


def one_wave(data: dict) -> None:
    """The four core services, needing nothing (one wave), each ready 0.3 s after it starts."""
    for name in CORE:
        svc = data["services"][name]
        command, keep = list(svc["command"]), []
        while command:
            word = command.pop(0)
            if word == "--requires":
                command.pop(0)
            else:
                keep.append(word)
        svc["command"] = keep + ["--start-delay", "0.3"]
        svc["depends_on"] = {}


@pytest.fixture
def registry(registry_file):
    return load_registry(registry_file(edit=one_wave))


def watchers() -> int:
    return sum(t.name == "readiness-watcher" for t in threading.enumerate())


def open_logs(registry) -> list[str]:
    """This process's open files in the registry's log directory."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(registry.log_dir)):
            found.append(target)
    return found


def test_a_wave_starts_together_and_waits_in_one_watcher(registry):
    """All four launched before any is settled (no run record yet), then all ready, on record, with one
    watcher thread for the four while they boot, and none left after."""
    steps = [StartStep(registry.services[name]) for name in CORE]
    seen, done = set(), threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.add(watchers())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        outcomes = NativeBackend(registry).execute_start(steps, Said(), threading.Event())
    finally:
        done.set()
        sampler.join()
    assert {name: o.state for name, o in outcomes.items()} == dict.fromkeys(CORE, "running"), outcomes
    assert max(seen) == 1, seen  # one loop for the wave, however many wait
    assert wait_for(lambda: watchers() == 0, 2)  # it ends once nobody waits
    assert sorted(records.read_all(registry.state_dir)) == sorted(CORE)
    assert not open_logs(registry)


def test_the_listening_sockets_are_read_when_a_line_comes_or_every_ports_every_not_every_tick(registry,
                                                                                            monkeypatch):
    """A service silent for 1.5 s before it listens: the kernel's listening sockets (a dump of every listener)
    are read about every PORTS_EVERY meanwhile, not at every TICK (300 reads), and its "listening on" line
    still has it seen listening at once (ready, and probed few times)."""
    reads = []
    real = start.listening_sockets
    monkeypatch.setattr(start, "listening_sockets", lambda: reads.append(time.monotonic()) or real())
    service = registry.services["orchestrator"]
    quiet = replace(service, command=("/bin/sh", "-c", 'sleep 1.5; exec "$0" "$@"', *service.command))
    outcomes = NativeBackend(replace(registry, services={**registry.services, "orchestrator": quiet})).execute_start(
        [StartStep(quiet)], Said(), threading.Event())
    assert outcomes["orchestrator"].state == "running", outcomes
    silent = [t for t in reads if t - reads[0] < 1.5]
    assert len(silent) <= 1.5 / start.PORTS_EVERY + 10, len(silent)  # every TICK would be 300
    assert len(reads) >= 1.5 / start.PORTS_EVERY / 3, len(reads)  # and it does look meanwhile


def test_launch_starts_processes_only_and_leaves_the_record_to_settle(registry):
    cancel = threading.Event()
    prepared = {name: spawn.prepare(registry, registry.services[name]) for name in CORE[:2]}
    launched = start.launch(prepared, cancel)
    try:
        assert all(isinstance(entry, spawn.Launched) for entry in launched.values()), launched
        assert all(entry.process.poll() is None for entry in launched.values())
        assert records.read_all(registry.state_dir) == {}  # nothing settled yet: the next launch comes first
        assert not open_logs(registry)
        for entry in launched.values():
            spawned = spawn.settle(registry, entry)
            assert spawned.record.pid == entry.process.pid and spawned.record.run_tag == entry.prepared.tag
        assert sorted(records.read_all(registry.state_dir)) == sorted(CORE[:2])
    finally:
        for entry in launched.values():
            os.killpg(entry.process.pid, 9)
            entry.process.wait()


def test_an_interrupt_before_the_launch_starts_nothing_and_closes_every_log(registry):
    cancel = threading.Event()
    prepared = {name: spawn.prepare(registry, registry.services[name]) for name in CORE[:2]}
    cancel.set()
    launched = start.launch(prepared, cancel)
    assert launched == {name: Outcome(name, "not started", registry.services[name].port, detail="interrupted")
                        for name in CORE[:2]}
    assert not open_logs(registry)
    assert records.read_all(registry.state_dir) == {}


def test_a_launch_that_cannot_run_fails_alone_and_closes_every_log(registry, tmp_path):
    prepared = {name: spawn.prepare(registry, registry.services[name]) for name in CORE[:2]}
    gone = prepared["orchestrator"]
    prepared["orchestrator"] = replace(gone, service=replace(gone.service, command=(str(tmp_path / "gone"),)))
    launched = start.launch(prepared, threading.Event())
    try:
        failed = launched["orchestrator"]
        assert isinstance(failed, Outcome) and failed.state == "failed", failed
        assert failed.detail == f"cannot run {tmp_path / 'gone'}: No such file or directory"  # its name once
        assert isinstance(launched["market-analysis"], spawn.Launched)
        assert not open_logs(registry)
    finally:
        entry = launched["market-analysis"]
        os.killpg(entry.process.pid, 9)
        entry.process.wait()


def test_a_watcher_that_fails_fails_the_wait_at_once_not_at_its_deadline(registry, monkeypatch):
    """What goes wrong in the one loop reaches every service waiting on it (raised in its own thread), instead
    of leaving them asleep until their startup timeouts."""
    def broken():
        raise OSError("sock_diag and /proc/net/tcp both unreadable")

    monkeypatch.setattr(start, "listening_sockets", broken)
    service = replace(registry.services["orchestrator"], startup_timeout=60.0)
    prepared = spawn.prepare(registry, service)
    entry = spawn.launch(prepared)
    spawned = spawn.settle(registry, entry)
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            start.wait_ready(registry, service, spawned, threading.Event())
        except OSError as exc:
            raised.append(exc)

    waiter = threading.Thread(target=wait)
    began = time.monotonic()
    waiter.start()
    waiter.join(10)
    try:
        assert not waiter.is_alive() and time.monotonic() - began < 5
        assert [str(exc) for exc in raised] == ["sock_diag and /proc/net/tcp both unreadable"]
        assert wait_for(lambda: watchers() == 0, 2)
    finally:
        os.killpg(entry.process.pid, 9)
        entry.process.wait()
        records.remove(registry.state_dir, service.name)


def test_a_stop_wave_signals_every_service_before_it_watches_any(registry, monkeypatch):
    backend = NativeBackend(registry)
    steps = [StartStep(registry.services[name]) for name in CORE]
    assert all(o.up for o in backend.execute_start(steps, Said(), threading.Event()).values())
    order: list[str] = []
    signal_first, watch = stop.signal_first, stop._watch

    def signalled(step):  # a look at the targets that takes its time (a loaded host): the later, the slower
        time.sleep(0.05 * CORE.index(step.service))
        result = signal_first(step)
        order.append(f"signal {step.service}")
        return result

    def watched(current, seconds):
        order.append("watch")
        return watch(current, seconds)

    monkeypatch.setattr(stop, "signal_first", signalled)
    monkeypatch.setattr(stop, "_watch", watched)
    services = [registry.services[name] for name in CORE]
    plan = stop_steps(discover(registry, services), services, force=False)
    results = backend.execute_stop([plan[name] for name in CORE], Said())
    assert all(r.stopped for r in results.values()), results
    assert order[:4] == [f"signal {name}" for name in CORE] and set(order[4:]) == {"watch"}, order
    assert records.read_all(registry.state_dir) == {}


def _interrupted(backend: NativeBackend, service, after: float) -> Outcome:
    """`service` started, its wait interrupted `after` seconds in."""
    cancel = threading.Event()
    threading.Timer(after, cancel.set).start()
    return backend.execute_start([StartStep(service)], Said(), cancel)[service.name]


@pytest.mark.parametrize("kind", ["service", "job"])
def test_a_restore_keeps_the_start_an_interrupt_left_in_flight_of_the_very_same_definition(registry, registry_file,
                                                                                          kind):
    """A rollback after Ctrl-C would start exactly what is still starting: it waits for that process (a service
    until it is ready, a job until it ends) instead of stopping it and spawning the same thing again."""
    if kind == "job":
        def with_job(data):
            data["services"]["db-migrate"] = {"group": "core", "type": "oneshot",
                                              "command": ["python", "-m", "tmt_sim.job", "--seconds", "1.5"]}
        registry = load_registry(registry_file(edit=with_job))
        service = registry.services["db-migrate"]
    else:
        service = registry.services["orchestrator"]
        service = replace(service, command=(*service.command, "--start-delay", "1.5"))
    backend = NativeBackend(registry)
    left = _interrupted(backend, service, 0.5)
    assert left.state == "starting", left
    said = Said()
    again = backend.execute_start([StartStep(service, restore="its last healthy definition", retry=True)], said,
                                  threading.Event())[service.name]
    assert again.state == ("done" if kind == "job" else "running"), (again, said.lines)
    assert again.runs_as == left.runs_as, (again, left)  # the very process the interrupt left
    assert f"{service.name}: still starting as {left.runs_as} with this very definition" in " ".join(said.lines)
    assert again.ready_seconds >= 1.5  # counted from its own start, not from the restore
    assert backend.booting == {}


@pytest.mark.parametrize("why", ["another definition", "frozen"])
def test_a_restore_stops_a_start_in_flight_of_another_definition_or_frozen_and_spawns_its_own(registry, why):
    """What is still starting runs a new definition (the one the restart brought; the restore is the last healthy
    one), or it is frozen (SIGSTOP: nothing to wait for): it is stopped first, as what is left of a failed
    start, and the restore spawns its own."""
    backend = NativeBackend(registry)
    old = registry.services["orchestrator"]
    new = replace(old, command=(*old.command, "--start-delay", "5"), definition=(
        {**old.definition, "env": {"NEW": "1"}} if why == "another definition" else old.definition))
    left = _interrupted(backend, new, 0.5)
    assert left.state == "starting", left
    if why == "frozen":
        os.kill(int(left.runs_as.split()[1]), signal.SIGSTOP)
    said = Said()
    again = backend.execute_start([StartStep(old, restore="its last healthy definition")], said,
                                  threading.Event())["orchestrator"]
    assert again.state == "running" and again.runs_as != left.runs_as, (again, left, said.lines)
    assert "stopped what was left of its failed start" in " ".join(said.lines)
    assert not psutil.pid_exists(int(left.runs_as.split()[1])) or \
        psutil.Process(int(left.runs_as.split()[1])).status() == psutil.STATUS_ZOMBIE
