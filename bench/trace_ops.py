#!/usr/bin/env python3
"""Run one root script with its phases timed: where a restart's or a stop's wall time goes (for profile_ops.py).

    python bench/trace_ops.py OUT.json SCRIPT.py ARGS...        spans of every phase, as JSON
    python bench/trace_ops.py --cprofile OUT.prof SCRIPT.py ARGS...   cProfile of every thread (CPU), merged

Nothing of tmt_ops is changed on disk: the functions that make up the phases are wrapped in this process only
(module attributes replaced before the script's main runs), each call recorded as a span (label, key, thread,
start, end; time.time(), so the parent can place them against its own clock). A stop step also gets a pidfd
watch on its processes, which records the moment the last of them exited: the service's own shutdown, told
apart from what the toolkit does before the signal and after the exit.
"""

from __future__ import annotations

import time

STARTED = time.time()  # the interpreter and site are done by now; the toolkit's imports follow

import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LATER = ("tmt_ops.native.backend", "tmt_ops.health.report", "logging.handlers", "tempfile",
         "tmt_ops.rollback", "tmt_ops.native.definitions", "traceback")
SPANS: list[tuple] = []  # (label, key, thread, start, end, note)
MARKS: dict[str, float] = {"started": STARTED}
UNTRACED: list[str] = []  # what install() was asked to trace and no longer exists


def record(label: str, key: str, start: float, end: float, note: str = "") -> None:
    SPANS.append((label, key, threading.current_thread().name, start, end, note))


def wrap(owner, attr: str, label: str, key=None, note=None) -> None:
    """Replace owner.attr by a wrapper that records a span per call; key(*args, **kw) names what it was for,
    note(result) adds what it found."""
    original = getattr(owner, attr, None)
    if original is None:  # the code moved on: say so, trace the rest
        UNTRACED.append(f"{getattr(owner, '__name__', owner)}.{attr} ({label})")
        return

    def said(what, *args, **kwargs) -> str:  # a key or note that no longer fits the call: the span says so
        try:
            return what(*args, **kwargs) if what else ""
        except Exception as exc:
            return f"? ({type(exc).__name__})"

    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.time()
        try:
            result = original(*args, **kwargs)
        except BaseException:
            record(label, said(key, *args, **kwargs), start, time.time(), "raised")
            raise
        record(label, said(key, *args, **kwargs), start, time.time(), said(note, result))
        return result

    setattr(owner, attr, timed)


def _exit_watch(step) -> None:
    """Record when the last process of a stop step exits (the service's own shutdown ends there)."""
    from tmt_ops.native import proof
    pids = {p.pid for p in step.procs} | (set(proof.cgroup_pids(step.cgroup)) if step.cgroup else set())
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except OSError:
            pass

    def watch() -> None:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        left = set(fds)
        while left:
            for fd, _ in poller.poll(30_000):
                poller.unregister(fd)
                left.discard(fd)
        MARKS[f"exited {step.service}"] = time.time()
        for fd in fds:
            os.close(fd)

    threading.Thread(target=watch, daemon=True, name=f"exit-watch-{step.service}").start()


WATCHED: dict[str, list] = {}  # service -> [log, offset]: logs the ready-line watcher reads
_watcher: list[threading.Thread] = []


def _ready_line_watch(name: str, log: Path, offset: int) -> None:
    """Record when the service writes its "ready" line (the sim: "NAME[PID]: ready", just as it starts answering
    200). One thread for every service: a stat of each log every 2 ms, a read only when it grew; nothing is asked
    of the service."""
    WATCHED[name] = [log, offset]
    if _watcher:
        return

    def watch() -> None:
        while True:
            for name, entry in list(WATCHED.items()):
                log, seen = entry
                try:
                    if os.stat(log).st_size <= seen:
                        continue
                    with open(log, "rb") as f:
                        f.seek(seen)
                        data = f.read()
                except OSError:
                    continue
                cut = data.rfind(b"\n") + 1
                entry[1] = seen + cut
                if any(line.endswith(b"]: ready") for line in data[:cut].split(b"\n")):
                    MARKS[f"ready line {name}"] = time.time()
                    WATCHED.pop(name, None)
            time.sleep(0.002)

    _watcher.append(threading.Thread(target=watch, daemon=True, name="ready-watch"))
    _watcher[0].start()


def install() -> None:
    import tmt_ops.cli.common as common
    import tmt_ops.executor as executor
    import tmt_ops.health.report as report
    import tmt_ops.hooks as hooks
    import tmt_ops.interrupts as interrupts
    import tmt_ops.operations as operations
    import tmt_ops.rollback as rollback
    from tmt_ops.native import backend, discovery, proof, records, spawn, start, stop
    import tmt_ops.native.procs as procs

    svc = lambda s, *a, **k: s.name  # noqa: E731
    first_svc = lambda _, s, *a, **k: s.name  # noqa: E731
    wrap(common, "load_registry", "registry load")
    import tmt_ops.toolkitlog as toolkitlog
    wrap(toolkitlog, "open_toolkit_log", "toolkit log open")
    import tmt_ops.cli.restart as cli_restart
    import tmt_ops.cli.stop as cli_stop
    for cli in (cli_restart, cli_stop):  # each imported it by name
        wrap(cli, "deployment_from", "mode and deployment")
    wrap(interrupts.Interrupts, "install", "signal handlers")
    for name, label in (("select", "select services"), ("bring_up", "bring_up (infra statuses)"),
                        ("plan_stop", "plan stop"), ("plan_start", "plan start"),
                        ("check_and_prepare", "preflight"), ("probe_round", "preflight probe round"),
                        ("_clear_stopped", "clear stopped markers"), ("_stop_half", "stop half"),
                        ("_tidy", "tidy (drop stale records)"), ("_start_half", "start half"),
                        ("_finish", "finish"), ("_verdict", "final health round"),
                        ("execute_stop", "stop (plain stop)")):
        wrap(operations, name, label)
    wrap(operations._StopMarks, "mark", "stopped markers", key=lambda self, names: ",".join(names))
    wrap(operations._StopMarks, "settle", "stopped markers taken back")
    wrap(rollback, "commit", "commit definitions")
    wrap(hooks, "call", "hook call", key=lambda h: f"{h.kind} {h.service}")
    wrap(executor, "_post_start", "post-start calls", key=lambda d, step, outcome: step.service.name)
    wrap(executor, "_probe_outside", "probe outside deps", key=lambda d, deps: ",".join(s.name for s in deps))
    wrap(backend.NativeBackend, "preflight", "backend preflight")
    wrap(backend.NativeBackend, "statuses", "statuses")
    wrap(backend.NativeBackend, "execute_stop", "stop batch", key=lambda self, steps, *_: ",".join(s.service for s in steps))
    wrap(backend.NativeBackend, "execute_start", "start batch",
         key=lambda self, steps, *_: ",".join(s.service.name for s in steps))
    wrap(report, "check_services", "check services")
    import tmt_ops.preflight as preflight
    for module in (executor, preflight, report):  # each imported probe_all by name
        wrap(module, "probe_all", "probe_all",
             key=lambda services, deadline: str(len(services)) if hasattr(services, "__len__") else "")
    for module in (discovery, backend, start):
        wrap(module, "discover", "discover",
             key=lambda registry, services=None: "all" if services is None else ",".join(s.name for s in services))
    wrap(records, "read_all", "records read")
    wrap(records, "remove", "record remove", key=lambda d, name: name)
    wrap(records, "write", "record write", key=lambda d, r: r.service)

    # stop: one service's step, its signal, watch, port check, cgroup removal (and when it really exited)
    original_signal_first, original_finish = stop.signal_first, stop.finish
    began: dict[str, float] = {}

    def signal_first(step):
        _exit_watch(step)
        began[step.service] = time.time()
        signalled = original_signal_first(step)
        record("signal first", step.service, began[step.service], time.time())
        return signalled

    def finish(signalled):
        result = original_finish(signalled)
        record("stop service", result.service, began[result.service], time.time(), result.detail)
        return result

    stop.signal_first, stop.finish = signal_first, finish
    wrap(stop, "signal_procs", "signal", key=lambda ps, sig: f"{sig.name} {len(ps)}")
    wrap(stop, "signal_group", "signal", key=lambda g, sig: f"{sig.name} group")
    wrap(stop, "_watch", "watch")
    wrap(stop, "_port_released", "port release check", key=lambda step: step.service)
    wrap(proof, "remove_cgroup", "cgroup removal", key=lambda path: Path(path).name)
    wrap(procs, "_own_lineage", "own lineage")

    # start: spawn (prepare, launch, settle), waiting to listen, probes, the own-socket check, post-start
    wrap(spawn, "prepare", "prepare", key=first_svc)
    wrap(start, "wait_ready", "wait ready", key=first_svc)
    original_launch = spawn.launch

    def launch_and_watch(prepared):
        start_ = time.time()
        launched = original_launch(prepared)
        record("popen", prepared.service.name, start_, time.time())
        _ready_line_watch(prepared.service.name, prepared.log, prepared.offset)
        return launched

    spawn.launch = launch_and_watch
    wrap(spawn, "settle", "settle", key=lambda registry, launched: launched.prepared.service.name)
    wrap(start, "probe", "readiness probe", key=svc, note=lambda r: r.status.value)
    wrap(start, "_answered_by_itself", "answered by itself", key=first_svc)
    wrap(proof, "make_cgroup", "cgroup make", key=lambda d, name: name)
    wrap(proof, "join", "cgroup join", key=lambda path, pid: Path(path).name)
    listening_seen: dict[int, float] = {}
    original_look = start._Waiting.look

    def look(self, wrote, listening):
        original_look(self, wrote, listening)
        port = self.service.port
        if self.listening and port not in listening_seen:
            listening_seen[port] = time.time()
            MARKS[f"listening {port}"] = listening_seen[port]

    start._Waiting.look = look



def _cprofile_threads(profiles: list) -> None:
    """Every thread profiled too (cProfile sees only the thread that enables it)."""
    import cProfile
    original_run = threading.Thread.run

    def run(self):
        profile = cProfile.Profile(time.thread_time)  # CPU of this thread: waits cost nothing
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()
            # only finished threads: a daemon thread still blocked at exit would be closed from the main thread,
            # whose clock it would then read
            profiles.append(profile)

    threading.Thread.run = run


def main() -> int:
    args = sys.argv[1:]
    cprofile = args[0] == "--cprofile"
    if cprofile:
        args = args[1:]
    out, script, argv = Path(args[0]), args[1], args[2:]
    module = {"restart-trading-system.py": "restart", "stop-trading-system.py": "stop",
              "system-health.py": "health"}[Path(script).name]
    if cprofile:
        import cProfile
        import pstats
        profiles: list = []
        _cprofile_threads(profiles)
        main_profile = cProfile.Profile(time.thread_time)
        main_profile.enable()
        entry = __import__(f"tmt_ops.cli.{module}", fromlist=["main"]).main
        code = entry(argv)
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in profiles:
            stats.add(profile)
        stats.dump_stats(str(out))
        return code
    entry = __import__(f"tmt_ops.cli.{module}", fromlist=["main"]).main
    MARKS["imported"] = time.time()
    # what the toolkit imports later, where first needed (the native backend, the health check, ...): imported
    # here, before the wrapping, and timed apart
    for module in LATER:
        __import__(module)
    MARKS["imported later"] = time.time()
    install()
    if UNTRACED:
        print(f"trace_ops: not traced (no longer in the code): {', '.join(UNTRACED)}", file=sys.stderr)
    MARKS["main"] = time.time()
    try:
        code = entry(argv)
    finally:
        MARKS["main done"] = time.time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.write_text(json.dumps({"marks": MARKS, "spans": SPANS, "cpu": usage.ru_utime + usage.ru_stime,
                                   "argv": [script, *argv]}))
    return code


if __name__ == "__main__":
    sys.exit(main())
