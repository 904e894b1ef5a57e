#!/usr/bin/env python3
"""Swarm mode speed, against the docker CLI on the same stack (its own name, free ports), in one run.

  restart-trading-system.py --mode swarm (rolling, whole stack)
      vs the sum of the waves' own readiness: each service force-updated by hand with
      `docker service update --force`, in wave order, timed until its new task runs   (target ratio <= 1.2)
  docker-restart.py --mode swarm status
      vs `docker service ls` + `docker service ps` of the stack                           (target ratio <= 1.3)

Medians of alternating runs. Usage: python bench/bench_swarm.py [--rounds N] [--runs M]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support import compile_sources, write_registry  # noqa: E402  (free ports, a unique stack name)
from swarm_helpers import remove_stack  # noqa: E402

from tmt_ops.engine import Engine, engine_time  # noqa: E402
from tmt_ops.registry import load_registry  # noqa: E402
from tmt_ops.swarm.state import STACK_LABEL  # noqa: E402


def run(argv: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900,
                          env={**os.environ, "NO_COLOR": "1"})
    took = time.perf_counter() - began
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        sys.exit(f"bench: {' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")
    return took


def roll_by_hand(stack: str, service: str) -> float:
    """`docker service update --force` of one service, until a task made after it runs and no older one does
    (a running task of a service with a healthcheck has passed it)."""
    engine = Engine()
    began, wall = time.perf_counter(), time.time()
    subprocess.run(["docker", "service", "update", "--force", "--detach", f"{stack}_{service}"], check=True,
                   capture_output=True)
    while True:
        svc = engine.services(f"{STACK_LABEL}={stack}")
        sid = next(s["ID"] for s in svc if s["Spec"]["Name"] == f"{stack}_{service}")
        tasks = [t for t in engine.tasks([sid]) if t["Status"]["State"] == "running"]
        if tasks and all(engine_time(t["CreatedAt"]) >= wall - 0.5 for t in tasks):
            return time.perf_counter() - began
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rolling restarts of each kind")
    parser.add_argument("--runs", type=int, default=15, help="status runs of each kind")
    args = parser.parse_args()
    compile_sources()
    config = write_registry(Path(tempfile.mkdtemp(prefix="tmt-bench-swarm-")))
    registry = load_registry(config)
    stack = registry.swarm_stack
    waves = [[s.compose_service for s in wave] for wave in registry.start_waves(registry.managed)]
    py = [sys.executable]
    ours = [*py, str(REPO / "restart-trading-system.py"), "--config", str(config), "--mode", "swarm"]
    status = [*py, str(REPO / "docker-restart.py"), "--config", str(config), "--mode", "swarm", "status"]
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; stack {stack}: "
          f"{sum(map(len, waves))} services in {len(waves)} waves", flush=True)
    try:
        run([*py, str(REPO / "docker-restart.py"), "--config", str(config), "--mode", "swarm", "start"])
        by_hand, toolkit = [], []
        for _ in range(args.rounds):  # alternate, so drift and noise hit both sides alike
            by_hand.append(sum(max(roll_by_hand(stack, s) for s in wave) for wave in waves))
            toolkit.append(run(ours))
        h, t = statistics.median(by_hand), statistics.median(toolkit)
        print(f"rolling restart: tmt-ops {t:.2f} s (whole run: start-up, plan, pre-stop hooks, rolls, final health), "
              f"the waves' own readiness by hand {h:.2f} s, ratio {t / h:.2f} (target <= 1.2; median of "
              f"{args.rounds})", flush=True)
        services = [f"{stack}_{s}" for wave in waves for s in wave]
        cli = [["docker", "service", "ls", "--filter", f"label={STACK_LABEL}={stack}"],
               ["docker", "service", "ps", *services]]
        mine, base, bare = [], [], []
        for _ in range(args.runs):
            mine.append(run(status))
            base.append(sum(run(argv) for argv in cli))
            bare.append(run([*py, "-c", "pass"]))
        m, b, p = statistics.median(mine), statistics.median(base), statistics.median(bare)
        print(f"status: tmt-ops {m * 1000:.0f} ms, docker service ls + ps {b * 1000:.0f} ms, ratio {m / b:.2f} "
              f"(target <= 1.3; median of {args.runs}); this interpreter's bare start alone {p * 1000:.0f} ms "
              f"({p / b:.2f} of the CLI pair)", flush=True)
    finally:
        remove_stack(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
