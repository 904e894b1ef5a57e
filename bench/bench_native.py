#!/usr/bin/env python3
"""Native-mode speed figures, measured in one run on free ports (never the shipped ones).

1. restart of the shipped stack: wall time of `restart-trading-system.py` against the services' readiness
   chain (each spawned by hand once the one it needs answers, polled every 5 ms, in the same run);
2. stop of one wave of services that each take 0.5 s to shut down, against the sum;
3. discovery with 1,000 unrelated sleeping processes on the machine, against without them.

    python bench/bench_native.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support import compile_sources, write_registry  # noqa: E402  (the shipped registry on free ports)

from tmt_ops.backends import Deployment  # noqa: E402
from tmt_ops.console import Printer  # noqa: E402
from tmt_ops.executor import execute_stop  # noqa: E402
from tmt_ops.native import records  # noqa: E402
from tmt_ops.native.discovery import discover  # noqa: E402
from tmt_ops.plan import plan_stop  # noqa: E402
from tmt_ops.probes import probe  # noqa: E402
from tmt_ops.registry import Registry, load_registry  # noqa: E402
from tmt_ops.states import Health  # noqa: E402

READY_LINE = re.compile(r"^(\S+): ready in ([0-9.]+)s", re.M)
QUIET = Printer(stream=open(os.devnull, "w"), colour=False)


def script(name: str, *args: str) -> tuple[float, str]:
    """(wall time, stderr) of one root script run, as an operator runs it."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO / name), *args], capture_output=True, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{name} {' '.join(args)} failed:\n{result.stderr}")
    return elapsed, result.stderr


def python_start(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return time.perf_counter() - started


def own_readiness(registry: Registry) -> dict[str, float]:
    """Each managed service spawned directly (deps first) and probed every 5 ms: its own time to ready."""
    ready, procs = {}, []
    try:
        for wave in registry.start_waves(registry.managed):
            for service in wave:
                started = time.perf_counter()
                procs.append(subprocess.Popen(list(service.command), cwd=service.cwd, env={**os.environ, **service.env},
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True))
                while probe(service, 1).status is not Health.HEALTHY:
                    time.sleep(0.005)
                ready[service.name] = time.perf_counter() - started
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return ready


def critical_path(registry: Registry, own: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    for wave in registry.start_waves(registry.managed):
        for s in wave:
            finish[s.name] = own[s.name] + max((finish[d.name] for d in s.depends_on if d.name in finish), default=0)
    return max(finish.values())


def bench_restart(tmp: Path, rounds: int) -> None:
    cfg = write_registry(tmp / "restart")
    registry = load_registry(cfg)
    same_run, apart, walls = [], [], []
    for _ in range(rounds):
        apart.append(critical_path(registry, own_readiness(registry)))
        wall, log = script("restart-trading-system.py", "--config", str(cfg), "--mode", "native")
        walls.append(wall)
        seen = {m.group(1): float(m.group(2)) for m in READY_LINE.finditer(log)}
        same_run.append(critical_path(registry, seen))
        script("stop-trading-system.py", "--config", str(cfg))
    path, wall, alone = statistics.median(same_run), statistics.median(walls), statistics.median(apart)
    bare = statistics.median(python_start("pass") for _ in range(rounds))
    imports = statistics.median(python_start("import tmt_ops.cli.restart") for _ in range(rounds))
    waves = len(registry.start_waves(registry.managed))
    print(f"restart of the shipped stack ({len(registry.managed)} services in {waves} waves, median of {rounds}):")
    print(f"  critical path of the services' readiness {path:6.3f} s  (spawn to probe passing, in the same run)")
    print(f"  the same, services launched by hand      {alone:6.3f} s  (each once the one it needs answers, probed every"
          f" 5 ms; same run)")
    print(f"  restart-trading-system.py wall time      {wall:6.3f} s  (process start, stop check, start, final health)")
    print(f"  toolkit overhead                         {wall - alone:6.3f} s  (against the chain launched by hand)")
    print(f"  ratio to the chain launched by hand      {wall / alone:6.3f}    (target <= 1.10)")
    print(f"  ratio to the critical path it reported   {wall / path:6.3f}")
    print(f"  of the overhead: bare interpreter start  {bare:6.3f} s, the toolkit's imports {imports - bare:.3f} s,"
          f" the rest {wall - alone - imports:.3f} s")


def one_wave(data: dict) -> None:
    """Every core service independent of the others, each draining 0.5 s on SIGTERM."""
    for svc in data["services"].values():
        if svc.get("command"):
            argv = list(svc["command"])
            while "--requires" in argv:
                i = argv.index("--requires")
                del argv[i:i + 2]
            svc["command"] = argv + ["--stop-delay", "0.5"]
            svc["depends_on"] = {}


def timed_stop(registry: Registry) -> tuple[float, float, int]:
    """(planning seconds: discovery included, stop seconds, services stopped) for one in-process stop of all."""
    started = time.perf_counter()
    deployment = Deployment(registry, "native")
    plan = plan_stop(deployment, registry.managed, force=False)
    planned_at = time.perf_counter()
    run = execute_stop(deployment, plan, QUIET)
    if run.failed:
        sys.exit(f"stop failed: {run.results}")
    return planned_at - started, time.perf_counter() - planned_at, len(run.results)


def bench_stop(tmp: Path, rounds: int) -> None:
    cfg = write_registry(tmp / "stop", edit=one_wave)
    registry = load_registry(cfg)
    waves = len(registry.stop_waves(registry.managed))
    times = []
    for _ in range(rounds):
        script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", "--skip-health-check")
        _, stopped_in, count = timed_stop(registry)
        times.append(stopped_in)
    took = statistics.median(times)
    print(f"stop of {count} services in {waves} wave, each draining 0.5 s (median of {rounds}):")
    print(f"  stop time {took:.3f} s against a sum of {0.5 * count:.1f} s; ratio to the slowest service's own "
          f"shutdown {took / 0.5:.2f} (target <= 1.5)")


def discovery_times(registry: Registry, rounds: int) -> tuple[float, float]:
    """Median seconds of discover(): with run records, and with the state directory lost (identity scan)."""
    with_records, without = [], []
    saved = records.read_all(registry.state_dir)
    for _ in range(rounds):
        t = time.perf_counter()
        assert len(discover(registry).ours) == len(registry.managed)
        with_records.append(time.perf_counter() - t)
    for name in saved:
        records.remove(registry.state_dir, name)
    for _ in range(rounds):
        t = time.perf_counter()
        assert len(discover(registry).ours) == len(registry.managed)
        without.append(time.perf_counter() - t)
    for record in saved.values():
        records.write(registry.state_dir, record)
    return statistics.median(with_records), statistics.median(without)


def bench_discovery(tmp: Path, rounds: int, crowd: int) -> None:
    cfg = write_registry(tmp / "crowd")
    registry = load_registry(cfg)
    script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", "--skip-health-check")
    sleepers: list[subprocess.Popen] = []
    try:
        quiet = discovery_times(registry, rounds)
        for _ in range(crowd):
            sleepers.append(subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL))
        busy = discovery_times(registry, rounds)
        stop_found, stop_took, _ = timed_stop(registry)
    finally:
        for proc in sleepers:
            proc.kill()
        for proc in sleepers:
            proc.wait()
        script("stop-trading-system.py", "--config", str(cfg), "--force")
    print(f"discovery of {len(registry.managed)} running services (median of {rounds}), "
          f"without / with {crowd} unrelated processes:")
    print(f"  with run records       {quiet[0] * 1000:7.1f} ms / {busy[0] * 1000:7.1f} ms  "
          f"(adds {(busy[0] - quiet[0]) * 1000:.1f} ms; target <= 300 ms)")
    print(f"  state directory lost   {quiet[1] * 1000:7.1f} ms / {busy[1] * 1000:7.1f} ms  "
          f"(adds {(busy[1] - quiet[1]) * 1000:.1f} ms; target <= 300 ms)")
    print(f"  a whole stop among them: planning {stop_found * 1000:.1f} ms, stopping {stop_took:.3f} s")


def main() -> None:
    compile_sources()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--crowd", type=int, default=1000, help="unrelated processes for the discovery figure")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tmt-bench-"))
    for part in ("restart", "stop", "crowd"):
        (tmp / part).mkdir()
    try:
        print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
        bench_restart(tmp, args.rounds)
        bench_stop(tmp, args.rounds)
        bench_discovery(tmp, args.rounds, args.crowd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
