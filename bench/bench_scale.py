#!/usr/bin/env python3
"""Scale figures (issue 17): generated registries of N simulated services (N = 4, 20, 100; the real system has 17)
in a dependency graph of 5 levels, measured in one run on free ports.

1. restart of the running N-service stack (`restart-trading-system.py`, final health round included) against the
   graph's own floor: the critical path of readiness (by hand: each level's services spawned one right after
   another once the level above answers, every service's time from its own spawn to its first 200; the longest
   path of those through the graph) plus the
   critical path of shutdowns (by hand: the levels in reverse, SIGTERM to a level's processes at once, each
   service's time from the signal until its last process exited; the longest path of those through the graph
   reversed); target <= 1.10x. The shutdowns summed over the levels' slowest are printed too (what a stop wave by
   wave reaches at best). Also against the released floor: the same critical path with each level's
   services forked by hand and held until all of them exist, then released at one instant (floors.start_released),
   every service counted from the release: a level spawned at once, literally (the first floor counts each service
   from its own spawn, one Popen after another). And the launched path: each level spawned one Popen after another,
   done when its last is ready counted from its first spawn (what a starter that spawns one service after another
   reaches at best). And against the restart's own path: the same two critical paths of the services' start and
   stop times as the toolkit timed them in that very run (its "ready in" and "stopped in" lines): what is left is
   the toolkit's own share (its fixed costs and the lags between one service's end and the next one's begin), free
   of the services' speed, which differs by up to 15% between the floor's run and the toolkit's. The stop is
   printed against the shutdowns' path;
2. `system-health.py --json` of the running 100-service stack: wall time (interpreter start included; its exit code
   does not matter) against the registry's health.deadline + 10%;
3. its cold start against the same for 4 services (the ratio; target <= 2x).

Rounds interleave the floor and the toolkit (floor, restart, stop, floor, ...; health 100, health 4, ...); figures
are medians, printed with the load averages. Every generated service runs `python -m tmt_sim KIND` with one start
delay for all (--start-delay, printed; 0.5 s by default: the order of the real execution engine and market analysis,
short enough for 100 services in one run; `--start-delay real` keeps each kind's own, 0.6-2.5 s).

    python bench/bench_scale.py [--sizes 4,20,100] [--rounds N] [--large-rounds N] [--health-runs N]
                                [--start-delay S|real]
    python bench/bench_scale.py --write-registry N DIR      (only write the registry of N services into DIR)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.pop("TMT_SIM_START_DELAY", None)  # each generated command says its own delay

import floors  # noqa: E402  (the floors taken by hand: bench/floors.py)
from support import compile_sources, free_ports, write_registry  # noqa: E402

from tmt_ops.registry import Registry, load_registry  # noqa: E402
from tmt_sim import HEALTH_PATHS, SERVICES as KINDS  # noqa: E402

LEVELS = 5
HOOKED = ("orchestrator", "execution-engine")  # the kinds with the shipped pre_stop / post_start calls
ENV = {**os.environ, "NO_COLOR": "1"}


# -- the generator ------------------------------------------------------------------------------------------------
def level_sizes(n: int) -> list[int]:
    """n services over min(5, n) levels, as even as can be (20 -> 4 per level, 100 -> 20)."""
    levels = min(LEVELS, n)
    return [n // levels + (1 if i < n % levels else 0) for i in range(levels)]


def generated_services(n: int, start_delay: float | None) -> dict[str, dict]:
    """The registry entries of n services: level 1 needs only infrastructure (optional, as the shipped orchestrator);
    service i of every later level requires service i of the level above, and every other one also service i+1
    of it (one or two dependencies each). Kinds rotate through the simulator's four (level 1 starts with the
    orchestrator, so n = 4 is the shipped chain: orchestrator, market analysis, execution engine, dashboard)."""
    sizes = level_sizes(n)
    names = [[f"l{level + 1}-{i + 1:02d}-{KINDS[(level + i) % len(KINDS)]}" for i in range(size)]
             for level, size in enumerate(sizes)]
    services: dict[str, dict] = {}
    for level, row in enumerate(names):
        for i, name in enumerate(row):
            kind = KINDS[(level + i) % len(KINDS)]
            if level == 0:
                deps, depends_on = [], {"postgres": "optional", "redis": "optional", "kafka": "optional"}
            else:
                above = names[level - 1]
                deps = [above[i % len(above)]]
                if i % 2 and len(above) > 1 and above[(i + 1) % len(above)] not in deps:
                    deps.append(above[(i + 1) % len(above)])
                depends_on = {dep: "required" for dep in deps}
            command = ["python", "-m", "tmt_sim", kind, "--port", "{port}", "--host", "{host}"]
            for dep in deps:
                command += ["--requires", f"{{health_url:{dep}}}"]
            if start_delay is not None:
                command += ["--start-delay", f"{start_delay:g}"]
            spec = {"display_name": f"{kind} {level + 1}.{i + 1}", "group": "core", "port": 0,
                    "critical": kind != "dashboard", "command": command,
                    "health": {"type": "http", "path": HEALTH_PATHS[kind]}, "depends_on": depends_on}
            if kind in HOOKED:
                spec["pre_stop"] = {"method": "POST", "path": "/api/trading/disable", "timeout": 3}
                spec["post_start"] = {"method": "POST", "path": "/api/trading/enable", "timeout": 3}
            services[name] = spec
    return services


def scale_registry(folder: Path, n: int, start_delay: float | None) -> Path:
    """The shipped registry (its infrastructure entries, not running here) with its core services replaced by n
    generated ones, every port a free one, state and logs in `folder`."""
    def edit(data: dict) -> None:
        infra = {k: v for k, v in data["services"].items() if v.get("group") == "infrastructure"}
        services = {**infra, **generated_services(n, start_delay)}
        for spec, port in zip(services.values(), free_ports(len(services))):  # all at once: none twice
            spec["port"] = port
        data["services"] = services

    folder.mkdir(parents=True, exist_ok=True)
    return write_registry(folder, edit=edit, name=f"services-{n}.yaml")


# -- running things -----------------------------------------------------------------------------------------------
def script(name: str, *args: str, check: bool = True) -> tuple[float, str, int]:
    """(wall time, stderr, exit code) of one root script run, as an operator runs it."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / name), *args], capture_output=True, text=True, env=ENV,
                          stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        sys.exit(f"{name} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return elapsed, done.stderr, done.returncode


def stop_quietly(cfg: Path) -> None:
    script("stop-trading-system.py", "--config", str(cfg), "--force", "-q", check=False)


def restart_round(cfg: Path, registry: Registry, logs: Path) -> dict:
    hand = floors.start_by_hand(registry, logs, led=len(registry.managed) > 4)
    own_down = floors.own_shutdowns(registry, hand)
    down = floors.critical_path_down(registry, own_down)
    down_waves = sum(floors.wave_shutdowns(registry, own_down))
    ready_path = floors.critical_path(registry, hand.ready)
    levels = registry.start_waves(registry.managed)
    wave_sum = sum(max(hand.ready[s.name] for s in level) for level in levels)
    launched = floors.launched_waves(registry, hand)
    held = floors.start_released(registry, logs)
    held.kill()
    released = floors.critical_path(registry, held.ready)
    try:
        bring_up = script("restart-trading-system.py", "--config", str(cfg), "--mode", "native",
                          "--skip-health-check")[0]
        restart, said, _ = script("restart-trading-system.py", "--config", str(cfg), "--mode", "native")
        ready = floors.said_ready(said)
        own_path = floors.critical_path(registry, ready) + floors.critical_path_down(registry,
                                                                                      floors.said_stopped(said))
        probes = {s.name: floors.probe_requests(s, registry.log_file(s))[0] for s in registry.managed}
        stop = script("stop-trading-system.py", "--config", str(cfg), "--mode", "native")[0]
    except BaseException:
        stop_quietly(cfg)
        raise
    rates = [probes[name] / ready[name] for name in ready if ready[name] > 0]
    return {"ready path": ready_path, "down path": down, "down waves": down_waves, "floor": ready_path + down,
            "restart": restart, "own path": own_path,
            "stop": stop, "bring-up": bring_up, "wave sum": wave_sum, "released": released,
            "released floor": released + down, "launched": launched, "max rate": max(rates),
            "median rate": statistics.median(rates)}


def bench_restart(n: int, cfg: Path, rounds: int, logs: Path) -> None:
    registry = load_registry(cfg)
    levels = registry.start_waves(registry.managed)
    edges = sum(len(s.required_deps) for s in registry.managed)
    print(f"{n} services in {len(levels)} levels ({'/'.join(str(len(w)) for w in levels)} per level, {edges} "
          f"required dependencies); {rounds} rounds; {floors.loads()} before")
    rows = []
    for k in range(1, rounds + 1):
        row = restart_round(cfg, registry, logs)
        rows.append(row)
        print(f"  round {k}: restart {row['restart']:.3f} s / floor {row['floor']:.3f} s (readiness path "
              f"{row['ready path']:.3f} + shutdowns path {row['down path']:.3f}) = {row['restart'] / row['floor']:.3f}; "
              f"stop {row['stop']:.3f} s; against the released floor {row['restart'] / row['released floor']:.3f}; "
              f"against this run's own path {row['restart'] / row['own path']:.3f}; {floors.loads()}")
    med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    ratio = statistics.median(r["restart"] / r["floor"] for r in rows)
    print(f"  medians: floor {med('floor'):.3f} s (critical path of readiness {med('ready path'):.3f} s, by hand, each "
          f"service from its own spawn; of shutdowns {med('down path'):.3f} s); restart {med('restart'):.3f} s; "
          f"ratio {med('restart') / med('floor'):.3f} (median of the rounds' ratios {ratio:.3f}; target <= 1.10)")
    print(f"    readiness summed over the levels' slowest {med('wave sum'):.3f} s (what waiting wave by wave can reach "
          f"at best); the critical path of readiness with each level released at one instant {med('released'):.3f} s "
          f"({med('released') / med('ready path'):.3f}x the one counted from each service's own spawn): the released "
          f"floor {med('released floor'):.3f} s (with the shutdowns), restart / it "
          f"{med('restart') / med('released floor'):.3f} (median of the rounds' ratios "
          f"{statistics.median(r['restart'] / r['released floor'] for r in rows):.3f}; target <= 1.10); each level "
          f"spawned one Popen after another, counted from its first spawn, {med('launched'):.3f} s "
          f"({med('launched') / med('released'):.3f}x the released)")
    print(f"    this restart's own path {med('own path'):.3f} s (the same critical paths of the services' start and "
          f"stop times as the toolkit timed them in that very run, spawn to ready seen and signal to port free: "
          f"what the services' speed in that run allowed; the floor by hand is measured minutes apart, and the "
          f"services' own speed differs by up to 15% between runs), restart / it "
          f"{statistics.median(r['restart'] / r['own path'] for r in rows):.3f} (median of the rounds' ratios)")
    print(f"    start of the stopped stack {med('bring-up'):.3f} s; stop {med('stop'):.3f} s = "
          f"{med('stop') / med('down path'):.2f}x its shutdowns' critical path (summed over the levels' slowest "
          f"{med('down waves'):.3f} s: {med('stop') / med('down waves'):.2f}x); probes during a start: median "
          f"{med('median rate'):.1f} req/s per service, highest {med('max rate'):.1f} (target <= 10)")


def bench_health(big: Path, small: Path, runs: int, n_big: int, n_small: int) -> None:
    """system-health.py --json of the two running stacks, alternately (cold: a new interpreter every time)."""
    deadline = load_registry(big).health.deadline
    times: dict[Path, list[float]] = {big: [], small: []}
    codes: dict[Path, set[int]] = {big: set(), small: set()}
    print(f"system-health.py --json, {n_big} running services against {n_small}, alternately, {runs} runs each; "
          f"{floors.loads()} before")
    for _ in range(runs):
        for cfg in (big, small):
            took, _, code = script("system-health.py", "--config", str(cfg), "--json", check=False)
            times[cfg].append(took)
            codes[cfg].add(code)
    b, s = statistics.median(times[big]), statistics.median(times[small])
    print(f"  {n_big} services: median {b:.3f} s (min {min(times[big]):.3f}, max {max(times[big]):.3f}; exit codes "
          f"{sorted(codes[big])}) against health.deadline {deadline:g} s + 10% = {deadline * 1.1:.2f} s: "
          f"{b / deadline:.2f} of the deadline (target <= 1.10)")
    print(f"  {n_small} services: median {s:.3f} s (min {min(times[small]):.3f}, max {max(times[small]):.3f}; exit "
          f"codes {sorted(codes[small])}); cold start {n_big} / {n_small}: {b / s:.2f}x (median of the pairs' ratios "
          f"{statistics.median(x / y for x, y in zip(times[big], times[small])):.2f}; target <= 2); "
          f"{floors.loads()} after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,20,100", help="numbers of services (comma-separated)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-rounds", type=int, default=2, help="rounds for more than 20 services (a run stays "
                                                                      "under 5 minutes)")
    parser.add_argument("--health-runs", type=int, default=7)
    parser.add_argument("--start-delay", default="0.5", help="seconds for every generated service, or 'real'")
    parser.add_argument("--write-registry", nargs=2, metavar=("N", "DIR"), help="write a registry and exit")
    args = parser.parse_args()
    delay = None if args.start_delay == "real" else float(args.start_delay)
    if args.write_registry:
        print(scale_registry(Path(args.write_registry[1]), int(args.write_registry[0]), delay))
        return 0
    compile_sources()
    sizes = [int(x) for x in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="tmt-bench-scale-"))
    configs = {n: scale_registry(tmp / f"n{n}", n, delay) for n in sizes}
    print(f"machine: {os.cpu_count()} cpus, {floors.loads()}, python {sys.version.split()[0]}; generated services "
          f"start in {'their kinds own time (0.6-2.5 s)' if delay is None else f'{delay:g} s (--start-delay)'}, "
          f"plus their interpreter's start")
    started = time.perf_counter()
    try:
        for n in sizes:
            bench_restart(n, configs[n], args.rounds if n <= 20 else args.large_rounds, tmp / f"n{n}" / "by-hand")
        big, small = max(sizes), min(sizes)
        if big != small and args.health_runs:
            for n in (big, small):
                script("restart-trading-system.py", "--config", str(configs[n]), "--mode", "native",
                       "--skip-health-check")
            bench_health(configs[big], configs[small], args.health_runs, big, small)
    finally:
        for cfg in configs.values():
            stop_quietly(cfg)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"whole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
