#!/usr/bin/env python3
"""Figures for system-health.py (issue 4); prints them, asserts nothing.

1. `system-health.py --json` end to end (interpreter start included) against the simulated stack on free
   ports, with real Redis and PostgreSQL where installed and the Kafka stand-in: median of several runs.
2. Five targets that accept a connection and never answer: all probes at once vs one after another.
3. The monitor: CPU and resident memory over many rounds (a short interval, scaled to 5 s).

Usage: python bench/bench_health.py [--runs N] [--rounds N] [--round-interval S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import psutil  # noqa: E402

import realservers as rs  # noqa: E402
from health_stack import running_stack  # noqa: E402
from support import compile_sources, free_ports, write_registry  # noqa: E402
from tmt_ops.probes import probe, probe_all  # noqa: E402
from tmt_ops.registry import load_registry  # noqa: E402
from tmt_ops.states import Health  # noqa: E402

SCRIPT = [sys.executable, str(REPO / "system-health.py")]


def timed(argv: list[str], env: dict) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - started, proc.returncode


def bench_one_shot(registry_path: Path, runs: int) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    baseline = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(runs))
    print(f"interpreter start alone (python -c pass): median {baseline * 1000:.0f} ms")
    for label, extra in (("--json (mode auto)", []), ("--json --mode native", ["--mode", "native"])):
        samples, codes = [], set()
        for _ in range(runs):
            seconds, code = timed([*SCRIPT, "--config", str(registry_path), "--json", *extra], env)
            samples.append(seconds)
            codes.add(code)
        print(f"system-health.py {label}: median {statistics.median(samples) * 1000:.0f} ms, "
              f"min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f} over {runs} runs "
              f"(target <= 500 ms; exit codes {sorted(codes)})")


def bench_hanging(tmp: Path) -> None:
    ports = free_ports(5)
    peers = [rs.Silent(p) for p in ports]

    def edit(data):
        names = list(data["services"])[:5]
        data["services"] = {n: data["services"][n] for n in names}
        for name, port in zip(names, ports):
            svc = data["services"][name]
            svc.update(port=port, group="infrastructure", managed=False, depends_on={},
                       health={"type": "http", "path": "/health"})
            svc.pop("command", None), svc.pop("env", None), svc.pop("pre_stop", None)

    path = write_registry(tmp, edit=edit, name="hanging.yaml")
    registry = load_registry(path)
    timeout = next(iter(registry.services.values())).probe.timeout
    try:
        started = time.perf_counter()
        results = probe_all(registry.services.values(), registry.health.deadline)
        concurrent = time.perf_counter() - started
        assert all(r.status is Health.TIMEOUT for r in results.values())
        started = time.perf_counter()
        for service in registry.services.values():
            probe(service)
        sequential = time.perf_counter() - started
        env = {**os.environ, "NO_COLOR": "1"}
        script, code = timed([*SCRIPT, "--config", str(path), "--json", "--mode", "native"], env)
    finally:
        for peer in peers:
            peer.stop()
    print(f"five never-answering targets, probe timeout {timeout:g} s: all at once {concurrent:.2f} s, "
          f"one after another {sequential:.2f} s (ratio {sequential / concurrent:.1f}x); "
          f"system-health.py --json end to end {script:.2f} s, exit {code} "
          f"(target <= timeout + 0.5 = {timeout + 0.5:g} s)")


def bench_monitor(registry_path: Path, rounds: int, interval: float) -> None:
    argv = [*SCRIPT, "--config", str(registry_path), "--mode", "native", "--monitor", "--interval", str(interval),
            "--count", str(rounds)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "NO_COLOR": "1"}, cwd=REPO)
    monitor = psutil.Process(proc.pid)
    samples: dict[int, tuple[float, float]] = {}  # round -> (rss MiB, cpu seconds)
    marks = {10, rounds // 4, rounds // 2, 3 * rounds // 4, rounds - 1}
    started = time.perf_counter()
    for line in proc.stdout:
        if not line.startswith("round "):
            continue  # a state change line
        n = int(line.split(":", 1)[0].split()[1])
        if n in marks:
            with monitor.oneshot():
                cpu = monitor.cpu_times()
                samples[n] = (monitor.memory_info().rss / 2 ** 20, cpu.user + cpu.system)
    proc.wait()
    wall = time.perf_counter() - started
    first, last = min(samples), max(samples)
    cpu_per_round = (samples[last][1] - samples[first][1]) / (last - first)
    print(f"monitor, {rounds} rounds at --interval {interval:g} s ({wall:.0f} s wall): "
          f"{cpu_per_round * 1000:.1f} ms CPU per round -> at --interval 5: {cpu_per_round / 5 * 100:.2f}% of one core "
          f"(target < 1%)")
    print("  resident memory by round: " + ", ".join(f"#{n}: {samples[n][0]:.1f} MiB" for n in sorted(samples)))


def bench_monitor_real_interval(registry_path: Path, rounds: int) -> None:
    argv = [*SCRIPT, "--config", str(registry_path), "--mode", "native", "--monitor", "--interval", "5",
            "--count", str(rounds)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                            env={**os.environ, "NO_COLOR": "1"})
    monitor = psutil.Process(proc.pid)
    marks = []  # (wall, cpu seconds) after each round's line; the first excludes interpreter start-up
    for _ in proc.stdout:
        try:
            marks.append((time.perf_counter(), sum(monitor.cpu_times()[:2])))
        except psutil.NoSuchProcess:
            break
    proc.wait()
    (t0, c0), (t1, c1) = marks[0], marks[-1]
    print(f"monitor at --interval 5 for {rounds} rounds (measured, not scaled): "
          f"{(c1 - c0) / (t1 - t0) * 100:.2f}% of one core over {t1 - t0:.0f} s")


def main() -> int:
    compile_sources()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--round-interval", type=float, default=0.1,
                        help="monitor interval for the many-rounds run (CPU is scaled to 5 s)")
    parser.add_argument("--real-rounds", type=int, default=7, help="rounds at a real 5 s interval (0: skip)")
    args = parser.parse_args()
    with running_stack("tmt-bench-health-") as (path, infra, tmp):
        print(f"stack: 4 simulated services started by restart-trading-system.py; infrastructure: PostgreSQL "
              f"{'real' if 'postgres' not in infra.missing else 'absent'}, Redis "
              f"{'real' if 'redis' not in infra.missing else 'absent'}, Kafka stand-in; Prometheus, Grafana, "
              f"Jaeger, Vault not running (refused at once); machine: {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f} (shared with other jobs)")
        bench_one_shot(path, args.runs)
        bench_hanging(tmp)
        bench_monitor(path, args.rounds, args.round_interval)
        if args.real_rounds:
            bench_monitor_real_interval(path, args.real_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
