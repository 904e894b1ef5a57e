#!/usr/bin/env python3
"""Figures for system-health.py --serve (issue 11); prints them, asserts nothing.

Against the simulated stack started by restart-trading-system.py on free ports (real Redis and PostgreSQL
where installed, the Kafka stand-in), the server probing every second (--interval 1):
1. /health under a keep-alive load from another process (wrk where installed, else a Python client of
   keep-alive connections in processes of its own): requests per second, latency, and the rounds made
   meanwhile (requests never probe: one round a second, whatever the load).
2. Idle: the server's CPU, in % of one core, while it only probes every second.
3. Memory: resident memory of a server run for an hour's worth of rounds (3600) at a short interval, read
   every quarter, while a client keeps asking for /health and /api/rounds.

Usage: python bench/bench_serve.py [--load-seconds S] [--idle-seconds S] [--rounds N] [--round-interval S]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import psutil  # noqa: E402

from health_stack import running_stack  # noqa: E402
from support import compile_sources  # noqa: E402
from tmt_ops.registry import load_registry  # noqa: E402

SCRIPT = [sys.executable, str(REPO / "system-health.py")]
SERVING = re.compile(r"serving http://127\.0\.0\.1:(\d+)/")


class Server:
    """system-health.py --serve on a free port; counts its rounds from its output lines."""

    def __init__(self, registry_path: Path, *args: str):
        self.proc = subprocess.Popen([*SCRIPT, "--config", str(registry_path), "--mode", "native",
                                      "--serve", "127.0.0.1:0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env={**os.environ, "NO_COLOR": "1"}, cwd=REPO)
        self.port = int(SERVING.search(self.proc.stdout.readline()).group(1))
        self.ps = psutil.Process(self.proc.pid)
        self.rounds = 0
        self.marks: dict[int, float] = {}  # round -> RSS in MiB, at the rounds asked for
        self.watch: set[int] = set()
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("round "):
                self.rounds = int(line.split(":", 1)[0].split()[1])
                if self.rounds in self.watch:
                    self.marks[self.rounds] = self.ps.memory_info().rss / 2 ** 20

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _keep_alive_client(port: int, seconds: float, counts, index: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        conn.request("GET", "/health")
        conn.getresponse().read()
        n += 1
    counts[index] = n


def load(server: Server, seconds: float) -> None:
    url = f"http://127.0.0.1:{server.port}/health"
    rounds0, cpu0, t0 = server.rounds, server.cpu_seconds(), time.monotonic()
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", f"{seconds:g}s", "--latency", url],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        latency = {p: re.search(rf"\s{p}%\s+(\S+)", out).group(1) for p in ("50", "99")}
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        how = f"wrk -t2 -c16 -d{seconds:g}s (keep-alive), p50 {latency['50']}, p99 {latency['99']}" + \
              (f", {errors.group(0)}" if errors else ", no errors")
    else:
        counts = multiprocessing.Array("i", 4)
        clients = [multiprocessing.Process(target=_keep_alive_client, args=(server.port, seconds, counts, i))
                   for i in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        rps = sum(counts) / seconds
        how = "4 Python keep-alive clients in processes of their own (wrk is not installed)"
    wall, cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
    print(f"/health under load: {rps:,.0f} requests/s ({how}); the server used {cpu / wall * 100:.0f}% of one "
          f"core; {server.rounds - rounds0} rounds in {wall:.0f} s at --interval 1 (target >= 1,000 requests/s)")


def idle(server: Server, seconds: float) -> None:
    time.sleep(3)  # past the first rounds and the interpreter's start
    rounds0, cpu0, t0 = server.rounds, server.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    wall, cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
    rounds = server.rounds - rounds0
    print(f"idle, probing every second: {cpu / wall * 100:.2f}% of one core over {wall:.0f} s ({rounds} rounds, "
          f"{cpu / max(rounds, 1) * 1000:.1f} ms CPU per round, serving included) (target < 1%)")


def memory(registry_path: Path, rounds: int, interval: float) -> None:
    server = Server(registry_path, "--interval", f"{interval:g}", "--count", str(rounds))
    server.watch = {10, rounds // 4, rounds // 2, 3 * rounds // 4, rounds}
    asked, done = [0], threading.Event()

    def ask() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        while not done.is_set():
            for path in ("/health", "/api/rounds", "/metrics"):
                try:
                    conn.request("GET", path)
                    conn.getresponse().read()
                    asked[0] += 1
                except OSError:
                    return
            time.sleep(0.05)

    asker = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    asker.start()
    server.proc.wait()
    done.set()
    wall = time.monotonic() - started
    marks = ", ".join(f"#{n}: {server.marks[n]:.1f} MiB" for n in sorted(server.marks))
    print(f"memory over {rounds} rounds at --interval {interval:g} ({wall:.0f} s, {asked[0]:,} requests meanwhile): "
          f"resident {marks}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=10)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=3600, help="rounds of the memory run (an hour at 1 s)")
    parser.add_argument("--round-interval", type=float, default=0.05, help="the memory run's --interval")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    compile_sources()
    with running_stack("tmt-bench-serve-") as (path, _, _):
        print(f"stack: 4 simulated services started by restart-trading-system.py, "
              f"{len(load_registry(path).services)} checks a round; machine: {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f} (shared with other jobs)")
        server = Server(path, "--interval", "1")
        try:
            idle(server, args.idle_seconds)
            load(server, args.load_seconds)
        finally:
            server.stop()
        memory(path, args.rounds, args.round_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
