#!/usr/bin/env python3
"""Native-mode speed figures (issue 17), measured in one run on free ports (never the shipped ones), with the
services' own start-up times (TMT_SIM_START_DELAY is unset for everything this starts).

1. restart of the running shipped stack: wall time of `restart-trading-system.py` (stop waves, start waves, final
   health round) against its floor: the readiness chain (each service spawned by hand once what it needs answers,
   its first HTTP 200 by a 5 ms poll) plus the services' own shutdowns summed over the reverse waves (SIGTERM to
   each wave's processes by hand, until they exited), both taken in the same round; then `stop-trading-system.py`
   of that stack against the sum of the waves' own shutdowns; and per service, the toolkit's probe requests
   during its start (its log's access-log lines) per second of its start;
2. stop of one wave of services that each take 0.5 s to shut down, against the sum;
3. discovery with 1,000 unrelated sleeping processes on the machine, against without them.

Rounds interleave the measured thing and its floor; figures are medians, printed with the load averages.

    python bench/bench_native.py [--rounds N]
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
os.environ.pop("TMT_SIM_START_DELAY", None)  # the real start-up times, for the services this starts and the scripts

import floors  # noqa: E402  (the floors taken by hand: bench/floors.py)
from support import compile_sources, write_registry  # noqa: E402  (the shipped registry on free ports)

from tmt_ops.backends import Deployment  # noqa: E402
from tmt_ops.console import Printer  # noqa: E402
from tmt_ops.executor import execute_stop  # noqa: E402
from tmt_ops.native import records  # noqa: E402
from tmt_ops.native.discovery import discover  # noqa: E402
from tmt_ops.plan import plan_stop  # noqa: E402
from tmt_ops.registry import Registry, load_registry  # noqa: E402

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


def stop_quietly(cfg: Path) -> None:
    """Teardown: whatever this bench left running on its registry is stopped (SIGKILL after its grace)."""
    subprocess.run([sys.executable, str(REPO / "stop-trading-system.py"), "--config", str(cfg), "--force", "-q"],
                   capture_output=True, env={**os.environ, "NO_COLOR": "1"})


def python_start(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return time.perf_counter() - started




def one_round(cfg: Path, registry: Registry, hand: floors.ByHand) -> tuple:
    """The floor (by hand: `hand` has just started the stack), then the toolkit: (chain, own ready times, own
    shutdown per reverse wave, restart, stop, the toolkit's ready times, probe requests, bring-up, (interpreter
    start, with the toolkit's imports, the least a Python tool reading the registry costs))."""
    own_down = floors.shutdowns(registry, hand)
    chain = floors.critical_path(registry, hand.ready)
    bring_up, _ = script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", "--skip-health-check")
    restart, said = script("restart-trading-system.py", "--config", str(cfg), "--mode", "native")
    ready = floors.said_ready(said)
    probes = {s.name: floors.probe_requests(s, registry.log_file(s)) for s in registry.managed}
    stop, _ = script("stop-trading-system.py", "--config", str(cfg), "--mode", "native")
    start_up = (python_start("pass"), python_start("import tmt_ops.cli.restart"),
                python_start(f"import yaml, psutil; yaml.safe_load(open({str(cfg)!r}))"))
    return chain, hand.ready, own_down, restart, stop, ready, probes, bring_up, start_up


def bench_restart(tmp: Path, rounds: int) -> None:
    """A restart of the RUNNING shipped stack (its stop waves and final health round included) against its floor,
    the readiness chain plus the services' own shutdowns summed over the reverse waves, both taken by hand in the
    same round; then stop-trading-system.py of that stack against the waves' own shutdowns. Rounds interleave
    the floor and the toolkit (floor, restart, stop, floor, ...), so drift and load hit both alike."""
    cfg = write_registry(tmp / "restart")
    registry = load_registry(cfg)
    services = registry.managed
    waves = registry.stop_waves(services)
    by_hand_logs = tmp / "restart" / "by-hand"
    rows = []  # per round: one_round()'s tuple
    print(f"restart of the running shipped stack: {len(services)} services in {len(waves)} waves, the services' own "
          f"start-up times (TMT_SIM_START_DELAY unset), {rounds} rounds; {floors.loads()} before")
    for n in range(1, rounds + 1):
        hand = floors.start_by_hand(registry, by_hand_logs)
        try:
            round_ = one_round(cfg, registry, hand)
        finally:
            stop_quietly(cfg)
        rows.append(round_)
        chain, own_down, restart, stop = round_[0], round_[2], round_[3], round_[4]
        floor = chain + sum(own_down)
        print(f"  round {n}: restart {restart:.3f} s / floor {floor:.3f} s (chain {chain:.3f} + shutdowns "
              f"{sum(own_down):.3f}) = {restart / floor:.3f}; stop {stop:.3f} s / shutdowns {sum(own_down):.3f} s = "
              f"{stop / sum(own_down):.2f}; {floors.loads()}")
    med = statistics.median
    chain = med(r[0] for r in rows)
    down = med(sum(r[2]) for r in rows)
    restart, stop = med(r[3] for r in rows), med(r[4] for r in rows)
    floor = med(r[0] + sum(r[2]) for r in rows)
    bare, imports = med(r[8][0] for r in rows), med(r[8][1] for r in rows)
    print(f"medians of {rounds} rounds ({floors.loads()} after):")
    print(f"  floor: readiness chain by hand {chain:6.3f} s  (each service spawned once what it needs answers, "
          f"first 200 by a {floors.TIGHT * 1000:g} ms poll)")
    print(f"       + own shutdowns           {down:6.3f} s  (SIGTERM to each reverse wave's processes, until they "
          f"exited; {', '.join(f'{med(r[2][i] for r in rows):.3f}' for i in range(len(waves)))} s by wave)")
    print(f"       = floor                   {floor:6.3f} s")
    print(f"  restart-trading-system.py      {restart:6.3f} s  (interpreter start, stop waves, start waves, final "
          f"health round)")
    print(f"  ratio restart / floor          {restart / floor:6.3f}    (median of the rounds' ratios "
          f"{med(r[3] / (r[0] + sum(r[2])) for r in rows):.3f}; target <= 1.05)")
    print(f"  stop-trading-system.py         {stop:6.3f} s  against the waves' own shutdowns {down:.3f} s")
    print(f"  ratio stop / shutdowns         {stop / down:6.3f}    (median of the rounds' ratios "
          f"{med(r[4] / sum(r[2]) for r in rows):.2f}; target <= 1.3)")
    least = med(r[8][2] for r in rows)
    print(f"  of the restart's {restart - floor:.3f} s over its floor: interpreter {bare:.3f} s, the toolkit's "
          f"imports {imports - bare:.3f} s; of the stop's {stop - down:.3f} s: the same start-up")
    print(f"  the least any Python tool costs that reads the registry and can prove a process's identity (`import "
          f"yaml, psutil` and the registry parsed): {least:.3f} s, so a stop's physical floor is {down + least:.3f} s, "
          f"{(down + least) / down:.2f}x the shutdowns; the stop is {stop / (down + least):.2f}x that floor")
    print(f"  start from stopped (restart --skip-health-check of a stopped stack): {med(r[7] for r in rows):.3f} s "
          f"(for reference)")
    print("  each service during the toolkit's restart (its log after the last start marker: requests for its health "
          "path up to its first 200, all of them in brackets):")
    print(f"    {'service':18} {'own start':>9} {'toolkit':>8} {'probes':>6} {'req/s':>6}  target <= 10 req/s")
    for s in services:
        own = med(r[1][s.name] for r in rows)
        took = med(r[5][s.name] for r in rows)
        asked = med(r[6][s.name][0] for r in rows)
        rate = med(r[6][s.name][0] / r[5][s.name] for r in rows)
        total = med(r[6][s.name][1] for r in rows)
        print(f"    {s.name:18} {own:8.3f}s {took:7.2f}s {asked:6g} {rate:6.2f}  ({total:g} in this run's part of "
              f"its log)")


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


def _discovered(registry: Registry) -> float:
    """Seconds of one discover(), which must find every managed service."""
    t = time.perf_counter()
    found = discover(registry)
    took = time.perf_counter() - t
    if len(found.ours) != len(registry.managed):
        missing = [s.name for s in registry.managed if s.name not in found.ours]
        sys.exit(f"discovery missed {', '.join(missing)}: stale {dict(found.stale)}, foreign {dict(found.foreign)}, "
                 f"others {dict(found.others)}, distrusted {dict(found.distrusted)}")
    return took


def discovery_times(registry: Registry, rounds: int) -> tuple[float, float]:
    """Median seconds of discover(): with run records, and with the state directory lost (identity scan)."""
    saved = records.read_all(registry.state_dir)
    with_records = [_discovered(registry) for _ in range(rounds)]
    for name in saved:
        records.remove(registry.state_dir, name)
    try:
        without = [_discovered(registry) for _ in range(rounds)]
    finally:
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
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--crowd", type=int, default=1000, help="unrelated processes for the discovery figure")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tmt-bench-"))
    for part in ("restart", "stop", "crowd"):
        (tmp / part).mkdir()
    try:
        print(f"machine: {os.cpu_count()} cpus, {floors.loads()}, python {sys.version.split()[0]}")
        bench_restart(tmp, args.rounds)
        bench_stop(tmp, args.rounds)
        bench_discovery(tmp, args.rounds, args.crowd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
