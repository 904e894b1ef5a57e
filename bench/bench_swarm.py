#!/usr/bin/env python3
"""Swarm mode speed, against the docker CLI on the same stack (its own name, free ports), in one run.

  restart-trading-system.py --mode swarm (rolling, whole stack)
      vs the sum of the waves' own readiness: each service force-updated by hand with
      `docker service update --force`, in wave order, timed until its new task runs   (target ratio <= 1.2)
  docker-restart.py --mode swarm status
      vs `docker service ls` + `docker service ps` of the stack                           (target ratio <= 1.3)

Medians of alternating runs. --multinode: the same on the three-node swarm of .ci/multinode.sh (the toolkit as a
swarm client: in the manager's network namespace, the image pushed to the harness's registry and pulled by the
workers, tasks placed on every node); the harness's set-up time (`up`, which checks or repairs it) is printed
first. Usage: python bench/bench_swarm.py [--rounds N] [--runs M] [--multinode]
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

from tmt_ops.engine import Engine, endpoint, engine_time  # noqa: E402
from tmt_ops.registry import load_registry  # noqa: E402
from tmt_ops.swarm.state import STACK_LABEL  # noqa: E402


ENV: dict[str, str] = {}  # the client's environment (--multinode: the manager's engine, the pushed image)
PREFIX: list[str] = []  # what runs a command as the client (--multinode: nsenter into the manager's namespace)


def run(argv: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run([*PREFIX, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900,
                          env={**os.environ, "NO_COLOR": "1", **ENV})
    took = time.perf_counter() - began
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        sys.exit(f"bench: {' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")
    return took


def roll_by_hand(stack: str, service: str) -> float:
    """`docker service update --force` of one service, until a task made after it runs and no older one does
    (a running task of a service with a healthcheck has passed it)."""
    engine = Engine(where=endpoint.resolve({**os.environ, **ENV}))
    began, wall = time.perf_counter(), time.time()
    subprocess.run(["docker", "service", "update", "--force", "--detach", f"{stack}_{service}"], check=True,
                   capture_output=True, env={**os.environ, **ENV})
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
    parser.add_argument("--multinode", action="store_true", help="on the three-node swarm of .ci/multinode.sh")
    args = parser.parse_args()
    compile_sources()
    harness = multinode_client() if args.multinode else None
    config = write_registry(Path(tempfile.mkdtemp(prefix="tmt-bench-swarm-")))
    registry = load_registry(config)
    stack = registry.swarm_stack
    waves = [[s.compose_service for s in wave] for wave in registry.start_waves(registry.managed)]
    py = [sys.executable]
    ours = [*py, str(REPO / "restart-trading-system.py"), "--config", str(config), "--mode", "swarm"]
    status = [*py, str(REPO / "docker-restart.py"), "--config", str(config), "--mode", "swarm", "status"]
    where = f"three nodes ({', '.join(harness.nodes)})" if harness else "one node"
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; stack {stack}: "
          f"{sum(map(len, waves))} services in {len(waves)} waves, on {where}", flush=True)
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
        if harness:  # where the tasks ran (the by-hand rolls and the toolkit's alike)
            placed = subprocess.run(["docker", "service", "ps", "--format", "{{.Node}}", *services], text=True,
                                    capture_output=True, env={**os.environ, **ENV}).stdout.split()
            print(f"tasks ran on: {', '.join(f'{n} {placed.count(n)}' for n in sorted(set(placed)))} "
                  "(current and past tasks)", flush=True)
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
        if harness:
            subprocess.run(["docker", "stack", "rm", stack], capture_output=True, env={**os.environ, **ENV})
            harness.remove_images(ENV["TMT_SIM_IMAGE"].rsplit(":", 1)[0])
        else:
            remove_stack(config)
    return 0


def multinode_client():
    """The harness, set up (or checked) by `up`, whose time is printed; the client's prefix and environment set."""
    from multinode import SCRIPT, find
    began = time.perf_counter()
    done = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"bench: .ci/multinode.sh up failed: {done.stderr[-1500:]}")
    print(f"harness: `.ci/multinode.sh up` {time.perf_counter() - began:.1f} s (from nothing it takes about 40 s: "
          "bench/bench_multinode.py); its phases:", flush=True)
    for line in done.stderr.splitlines():
        if line.startswith("[multinode]   "):
            print(f"  {line[len('[multinode]   '):]}", flush=True)
    harness = find()
    if isinstance(harness, str):
        sys.exit(f"bench: {harness}")
    PREFIX[:] = ["nsenter", f"--net=/proc/{harness.manager_pid()}/ns/net", "--"]
    ENV.update({"DOCKER_HOST": harness.host(harness.manager), "TMT_SWARM_PUSH": "1",
                "TMT_SIM_IMAGE": f"{harness.registry}/tmt-bench-{os.getpid()}:t"})
    os.environ.pop("DOCKER_CONTEXT", None)
    return harness


if __name__ == "__main__":
    sys.exit(main())
