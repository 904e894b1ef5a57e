#!/usr/bin/env python3
"""Native-mode speed figures, measured in one run on free ports (never the shipped ones).

1. restart of the running shipped stack: wall time of `restart-trading-system.py` (its stop waves included)
   against the services' readiness chain (each spawned by hand once the one it needs answers, polled every
   5 ms, in the same run); then `stop-trading-system.py` of it against the services' own shutdowns;
2. stop of one wave of services that each take 0.5 s to shut down, against the sum;
3. discovery with 1,000 unrelated sleeping processes on the machine, against without them.

    python bench/bench_native.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
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
from tmt_ops.ports import port_open  # noqa: E402
from tmt_ops.probes import probe  # noqa: E402
from tmt_ops.registry import Registry, load_registry  # noqa: E402
from tmt_ops.states import Health  # noqa: E402

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


def own_shutdowns(registry: Registry) -> dict[str, float]:
    """Each managed service spawned by hand, then SIGTERMed alone: its own time to exit and free its port."""
    procs, took = {}, {}
    try:
        for wave in registry.start_waves(registry.managed):
            for s in wave:
                procs[s.name] = subprocess.Popen(list(s.command), cwd=s.cwd, env={**os.environ, **s.env},
                                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL, start_new_session=True)
                while probe(s, 1).status is not Health.HEALTHY:
                    time.sleep(0.005)
        for wave in registry.stop_waves(registry.managed):
            for s in wave:
                started = time.perf_counter()
                os.killpg(procs[s.name].pid, signal.SIGTERM)
                procs[s.name].wait()
                while port_open(s.host, s.port, 0.2):
                    time.sleep(0.002)
                took[s.name] = time.perf_counter() - started
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return took


def bench_restart(tmp: Path, rounds: int) -> None:
    """A restart of the RUNNING shipped stack (its stop waves included), measured from outside, against the
    readiness chain started by hand in the same run; then stop-trading-system.py of that stack against the
    services' own shutdowns."""
    cfg = write_registry(tmp / "restart")
    registry = load_registry(cfg)
    chains, walls, stops, shutdowns = [], [], [], []
    for _ in range(rounds):  # alternate, so drift and noise hit both sides alike
        chains.append(critical_path(registry, own_readiness(registry)))
        script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", "--skip-health-check")
        walls.append(script("restart-trading-system.py", "--config", str(cfg), "--mode", "native")[0])
        stops.append(script("stop-trading-system.py", "--config", str(cfg), "--mode", "native")[0])
        shutdowns.append(own_shutdowns(registry))
    chain, wall, stop = statistics.median(chains), statistics.median(walls), statistics.median(stops)
    bare = statistics.median(python_start("pass") for _ in range(rounds))
    imports = statistics.median(python_start("import tmt_ops.cli.restart") for _ in range(rounds))
    waves = registry.stop_waves(registry.managed)
    slowest = statistics.median(max(d.values()) for d in shutdowns)
    wave_sum = statistics.median(sum(max(d[s.name] for s in wave) for wave in waves) for d in shutdowns)
    print(f"restart of the running shipped stack ({len(registry.managed)} services in {len(waves)} waves, "
          f"median of {rounds}):")
    print(f"  readiness chain, services launched by hand {chain:6.3f} s  (each once the one it needs answers, "
          "probed every 5 ms)")
    print(f"  restart-trading-system.py wall time        {wall:6.3f} s  (start-up, stop waves, start waves, final "
          "health)")
    print(f"  ratio                                      {wall / chain:6.3f}    (target <= 1.10)")
    print(f"  of the {wall - chain:.3f} s over the chain: interpreter {bare:.3f} s, the toolkit's imports "
          f"{imports - bare:.3f} s, the stop waves and the rest {wall - chain - imports:.3f} s")
    print(f"stop-trading-system.py of that stack: {stop:.3f} s; the services' own shutdowns (SIGTERM to exit and "
          f"port free): slowest {slowest:.3f} s, summed over the {len(waves)} reverse waves {wave_sum:.3f} s")
    print(f"  ratio to the slowest own shutdown {stop / slowest:.2f} (target <= 1.5: reachable only by stopping all "
          f"at once); to the waves' sum {stop / wave_sum:.2f}")


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
    times = []
    for _ in range(rounds):
        script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", "--skip-health-check")
        _, stopped_in, count = timed_stop(registry)
        times.append(stopped_in)
    took = statistics.median(times)
    print(f"stop of {count} independent services (one wave), each draining 0.5 s (median of {rounds}):")
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
