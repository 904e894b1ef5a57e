#!/usr/bin/env python3
"""Docker mode speed, against plain compose on the same project (its own name and free ports).

  docker-restart.py status   vs  docker compose ps --format json               (target ratio <= 1.3)
  docker-restart.py restart  vs  docker compose down && docker compose up -d --wait   (target <= 1.1)

Medians of alternating runs; prints the figures and the ratios. Usage: python bench/bench_docker.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support import write_registry  # noqa: E402  (free ports, a unique compose project)

from tmt_ops.compose.flavour import compose_command  # noqa: E402
from tmt_ops.compose.runner import compose_environment  # noqa: E402
from tmt_ops.registry import load_registry  # noqa: E402


def parse_ps(text: str) -> list[dict]:
    """`ps --format json`: a JSON array before Compose 2.21, JSON lines since."""
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def timed(argv: list[str], env: dict) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    took = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return took, done.stdout


def compare(label: str, ours: list[str], theirs: list[list[str]], runs: int, env: dict, target: float) -> None:
    mine, base = [], []
    for _ in range(runs):  # alternate, so drift and noise hit both sides alike
        mine.append(timed(ours, env)[0])
        base.append(sum(timed(argv, env)[0] for argv in theirs))
    m, b = statistics.median(mine), statistics.median(base)
    verdict = "ok" if m / b <= target else "over target"
    print(f"{label}: tmt-ops {m * 1000:.0f} ms, compose {b * 1000:.0f} ms, ratio {m / b:.2f} "
          f"(target <= {target}, {verdict}; median of {runs})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="status runs (restart: a third of them, at least 3)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="tmt-bench-docker-") as tmp:
        config = write_registry(Path(tmp))
        registry = load_registry(config)
        env = dict(compose_environment(registry), NO_COLOR="1")
        ours = [sys.executable, str(REPO / "docker-restart.py"), "--config", str(config)]
        compose = [*compose_command(), "-p", registry.compose_project, "-f", str(registry.compose_file)]
        print(f"project {registry.compose_project}, {' '.join(compose_command())}", flush=True)
        try:
            timed(ours + ["start"], env)
            ps = parse_ps(timed(compose + ["ps", "--format", "json"], env)[1])
            status = json.loads(timed(ours + ["status", "--json"], env)[1])
            same = sorted(c["Name"] for c in ps) == sorted(c["container"] for c in status["containers"])
            print(f"status and compose ps list the same {len(ps)} containers: {same}", flush=True)
            compare("status ", ours + ["status"], [compose + ["ps", "--format", "json"]], runs, env, 1.3)
            compare("restart", ours + ["restart"], [compose + ["down"], compose + ["up", "-d", "--wait"]],
                    max(3, runs // 3), env, 1.1)
        finally:
            subprocess.run(compose + ["down", "--volumes", "--remove-orphans", "--timeout", "1"], env=env,
                           capture_output=True, timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
