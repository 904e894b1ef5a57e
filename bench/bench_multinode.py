#!/usr/bin/env python3
"""The three-node harness's set-up time (.ci/multinode.sh), as CI meets it and as a developer does.

  from nothing     `down`, then `up`: network, registry, three engines, the swarm, the base image on every node
                   (the node image kept, as `down` keeps it)                               (target: about a minute)
  from scratch     `down --all` first: the packages downloaded and the node image made too (--scratch; a fresh
                   CI machine pays this once)
  already up       `up` again: checks every part, changes nothing                                  (a few seconds)

The script prints each phase's time itself; this runs it N times and prints the medians, with the load average
(other work on the machine shows in these figures). It takes the harness down and leaves it up.
Usage: python bench/bench_multinode.py [--rounds N] [--scratch]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "multinode.sh"
PHASE = re.compile(r"^\[multinode\]\s{3}(.+?)\s+([\d.]+) s  ", re.M)


def run(*args: str) -> tuple[float, dict[str, float]]:
    began = time.perf_counter()
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"bench: multinode.sh {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return took, {name.strip(): float(secs) for name, secs in PHASE.findall(done.stderr)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scratch", action="store_true", help="remove the node image and the package cache too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: the harness needs root")
    kinds = {"from scratch" if args.scratch else "from nothing": [], "already up": []}
    phases: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
    loads = []
    for _ in range(args.rounds):
        run("down", *(["--all"] if args.scratch else []))
        loads.append(os.getloadavg()[0])
        for kind in kinds:
            took, parts = run("up")
            kinds[kind].append(took)
            for name, secs in parts.items():
                phases[kind].setdefault(name, []).append(secs)
    print(f"harness set-up, median of {args.rounds} (load average at the start: "
          f"{', '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores)")
    for kind, times in kinds.items():
        parts = ", ".join(f"{name} {statistics.median(v):.1f}" for name, v in phases[kind].items())
        print(f"  {kind:<13} {statistics.median(times):6.1f} s  (min {min(times):.1f}, max {max(times):.1f}; {parts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
