#!/usr/bin/env python3
"""Where a native restart's and stop's time goes, phase by phase (issue 17): medians over several rounds of
`restart-trading-system.py` and `stop-trading-system.py` of the running stack, each run under trace_ops.py (its
phases timed in-process; nothing of tmt_ops changed on disk), interleaved with untraced runs (what the tracing
costs) and the services' own shutdowns taken by hand; then the imports (`python -X importtime`, median self time
per module) and one cProfile of each script (every thread), top functions by their own time.

    python bench/profile_ops.py [--rounds N] [--registry PATH]   (default: the shipped registry on free ports)

Prints figures; asserts nothing. The services run with their own start-up times (TMT_SIM_START_DELAY unset), unless
the registry given says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.pop("TMT_SIM_START_DELAY", None)

import floors  # noqa: E402
from support import compile_sources, write_registry  # noqa: E402

from tmt_ops.registry import load_registry  # noqa: E402

TRACER = Path(__file__).resolve().parent / "trace_ops.py"
ENV = {**os.environ, "NO_COLOR": "1"}


def run(argv: list[str]) -> tuple[float, float, float]:
    """(launch time.time(), wall seconds, end time.time()) of one run; exits the bench when it fails."""
    launch, started = time.time(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return launch, wall, launch + wall


def traced(out: Path, script: str, cfg: Path, *extra: str) -> dict:
    launch, wall, end = run([sys.executable, str(TRACER), str(out), str(REPO / script), "--config", str(cfg),
                             "--mode", "native", *extra])
    data = json.loads(out.read_text())
    data.update(launch=launch, wall=wall, end=end)
    return data


def plain(script: str, cfg: Path, *extra: str) -> float:
    return plain_cpu(script, cfg, *extra)[0]


def plain_cpu(script: str, cfg: Path, *extra: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds (user + sys) of the script's process) of one untraced run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run([sys.executable, str(REPO / script), "--config", str(cfg), "--mode", "native", *extra])[1]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


# -- analysis of one traced run ---------------------------------------------------------------------------------
def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def spread(out: dict[str, float], what: str, values: list[float]) -> None:
    """`what`'s median and highest over the services, when there are any."""
    if values:
        out[f"{what}, median over the services"] = ms(statistics.median(values))
        out[f"{what}, at most"] = ms(max(values))


def half_total(out: dict[str, float], half_name: str, after: str, half: dict | None, batches: list[dict]) -> None:
    """A half's whole time, and what it spent after its last batch ended."""
    if half and batches:
        out[f"{half_name}: after the last batch ({after})"] = ms(half["end"] - max(b["end"] for b in batches))
        out[f"{half_name} total"] = ms(half["end"] - half["start"])


def phases(data: dict, registry, by_hand: dict[str, float] | None = None) -> dict[str, float]:
    """Phase -> milliseconds for one traced run (the stop's waves and the start's services itemised)."""
    marks, spans = data["marks"], [dict(zip(("label", "key", "thread", "start", "end", "note"), s)) for s in data["spans"]]
    main = [s for s in spans if s["thread"] == "MainThread"]
    by = defaultdict(list)
    for s in spans:
        by[s["label"]].append(s)
    out: dict[str, float] = {}
    out["interpreter start and site"] = ms(marks["started"] - data["launch"])
    out["imports of the toolkit"] = ms(marks["imported"] - marks["started"])
    out["imports the toolkit makes later where first needed (backend, health report, ...)"] = \
        ms(marks["imported later"] - marks["imported"])
    out["(tracer set-up, not the toolkit's)"] = ms(marks["main"] - marks["imported later"])
    first_main = {}
    for s in main:
        first_main.setdefault(s["label"], s)
    for label in ("signal handlers", "registry load", "toolkit log open", "mode and deployment", "select services",
                  "bring_up (infra statuses)", "plan stop", "plan start", "preflight", "clear stopped markers",
                  "tidy (drop stale records)", "commit definitions", "final health round", "stopped markers",
                  "stopped markers taken back"):
        if label in first_main:
            out[label] = ms(sum(s["end"] - s["start"] for s in main if s["label"] == label))
    for label in ("backend preflight", "preflight probe round"):
        if by[label]:
            out[f"  {label}"] = ms(sum(s["end"] - s["start"] for s in by[label]))
    # the stop, by the graph: batches (what its dependents' stops freed together), each service from the moment
    # every service of the plan that depends on it had stopped to its own exit and what follows it
    hooks = {s["key"]: s for s in by["hook call"]}
    intents = {name: s for s in by["stopped markers"] if s["thread"] != "MainThread" for name in s["key"].split(",")}
    batches = sorted(by["stop batch"], key=lambda s: s["start"])
    half = first_main.get("stop half") or first_main.get("stop (plain stop)")
    stopped = {s["key"]: s["end"] for s in by["stop service"]}
    lags = []
    if batches:
        out["stop: batches (count)"] = len(batches)
    for batch in batches:
        names = batch["key"].split(",")
        pre = [hooks[f"pre-stop {name}"] for name in names if f"pre-stop {name}" in hooks]
        begin = min([batch["start"]] + [h["start"] for h in pre] + [intents[n]["start"] for n in names if n in intents])
        for name in names:
            dependents = [d.name for d in registry.dependents([name]) if d.name in stopped]
            free = max((stopped[d] for d in dependents), default=half["start"] if half else begin)
            lags.append(begin - free)
            out[f"stop: {name}: its dependents stopped -> its batch begins (the scheduler's lag)"] = ms(lags[-1])
            if name in intents:
                out[f"stop: {name}: its batch's stopped-on-purpose markers"] = ms(intents[name]["end"] - intents[name]["start"])
            if f"pre-stop {name}" in hooks:
                call = hooks[f"pre-stop {name}"]
                out[f"stop: {name}: pre-stop call"] = ms(call["end"] - call["start"])
            step = next(s for s in by["stop service"] if s["key"] == name)
            first = next(s for s in by["signal first"] if s["key"] == name)  # the batch's signals: one thread, in turn
            sigs = [s for s in by["signal"] if first["start"] <= s["start"] <= first["end"]]
            signalled = sigs[0]["start"] if sigs else step["start"]
            exited = marks.get(f"exited {name}", step["end"])
            watch = [s for s in by["watch"] if s["thread"] == f"wave-{name}" and step["start"] <= s["start"] <= step["end"]]
            port = [s for s in by["port release check"] if s["key"] == name]
            cgroup = [s for s in by["cgroup removal"] if s["key"] == name and step["start"] <= s["start"] <= step["end"]]
            record = [s for s in by["record remove"] if s["key"] == name and batch["start"] <= s["start"] <= batch["end"]]
            out[f"stop: {name}: batch begins -> its signal (markers, pre-stop calls, the signals before it)"] = \
                ms(signalled - begin)
            out[f"stop: {name}: signal (SIGTERM, SIGCONT)"] = ms(sum(s["end"] - s["start"] for s in sigs))
            out[f"stop: {name}: the service's own exit (signal to exit)"] = ms(exited - signalled)
            if watch:
                out[f"stop: {name}: watch wakes after the exit"] = ms(watch[-1]["end"] - exited)
            out[f"stop: {name}: port release check"] = ms(sum(s["end"] - s["start"] for s in port))
            out[f"stop: {name}: cgroup removal"] = ms(sum(s["end"] - s["start"] for s in cgroup))
            out[f"stop: {name}: run record removal"] = ms(sum(s["end"] - s["start"] for s in record))
    spread(out, "stop: the scheduler's lag", lags)
    half_total(out, "stop half", "results, logging", half, batches)
    # the start, by the graph: batches (what became startable together), each service from the moment what it
    # depends on in the plan was ready (and its post-start call made) to its own readiness
    listening = {int(k.split()[1]): v for k, v in marks.items() if k.startswith("listening ")}
    batches = sorted(by["start batch"], key=lambda s: s["start"])
    half = first_main.get("start half")
    ended = {}  # service -> when its start ended with its post-start call made (its dependents may go)
    for s in by["wait ready"]:
        posts = [p for p in by["post-start calls"] if p["key"] == s["key"] and p["start"] >= s["end"]]
        ended[s["key"]] = posts[0]["end"] if posts else s["end"]
    lags, spawn_to_ready, detection = [], [], []
    if batches:
        out["start: batches (count)"] = len(batches)
        out["start: services in a batch, at most (count)"] = max(len(b["key"].split(",")) for b in batches)
    for batch in batches:
        for name in batch["key"].split(","):
            service = registry.services[name]
            within = lambda label, span: [s for s in by[label] if s["key"] == name  # noqa: E731
                                          and span["start"] <= s["start"] <= span["end"]]
            prepared, spawned, settled = within("prepare", batch)[0], within("popen", batch)[0], within("settle", batch)[0]
            joins, rec = within("cgroup join", settled), within("record write", settled)
            ready = within("wait ready", batch)[0]
            probes = [s for s in by["readiness probe"] if s["key"] == name and ready["start"] <= s["start"] <= ready["end"]]
            own = [s for s in by["answered by itself"] if s["key"] == name and ready["start"] <= s["start"] <= ready["end"]]
            deps = [d.name for d in service.depends_on if d.name in ended]
            free = max((ended[d] for d in deps), default=half["start"] if half else batch["start"])
            lags.append(batch["start"] - free)
            out[f"start: {name}: dependencies ready -> its batch begins (the scheduler's lag)"] = ms(lags[-1])
            out[f"start: {name}: prepare (checks, log opened)"] = ms(prepared["end"] - prepared["start"])
            out[f"start: {name}: batch begins -> launched (Popen returned)"] = ms(spawned["end"] - batch["start"])
            out[f"start: {name}:   of it Popen"] = ms(spawned["end"] - spawned["start"])
            out[f"start: {name}: settle (cgroup join, run record)"] = ms(settled["end"] - settled["start"])
            out[f"start: {name}:   of it cgroup join"] = ms(sum(s["end"] - s["start"] for s in joins))
            out[f"start: {name}:   of it run record write"] = ms(sum(s["end"] - s["start"] for s in rec))
            heard = listening.get(service.port)
            if heard:
                out[f"start: {name}: spawned -> seen listening"] = ms(heard - spawned["end"])
            ok = [p for p in probes if p["note"] in ("healthy", "degraded")]
            out[f"start: {name}: readiness probes (count)"] = len(probes)
            out[f"start: {name}: readiness probes (time in them)"] = ms(sum(p["end"] - p["start"] for p in probes))
            line = marks.get(f"ready line {name}")
            if line:
                out[f"start: {name}: spawn -> its 'ready' line (the service's own start)"] = ms(line - spawned["start"])
                if ok:
                    detection.append(ok[0]["end"] - line)
                    out[f"start: {name}: 'ready' line -> the passing probe answered (detection lag)"] = ms(detection[-1])
            out[f"start: {name}: own-socket check (answered by itself)"] = ms(sum(s["end"] - s["start"] for s in own))
            spawn_to_ready.append(ready["end"] - spawned["start"])
            out[f"start: {name}: spawn -> ready (the toolkit's start time)"] = ms(spawn_to_ready[-1])
            if by_hand:
                out[f"start: {name}:   the same by hand (spawn -> first 200, this round)"] = ms(by_hand[name])
    spread(out, "start: the scheduler's lag", lags)
    spread(out, "start: spawn -> ready", spawn_to_ready)
    spread(out, "start: detection lag", detection)
    half_total(out, "start half", "post-start calls, logging", half, batches)
    out["interpreter exit"] = ms(data["end"] - marks["main done"])
    covered, reach = 0.0, marks["main"]  # the main thread's time outside every recorded phase
    for s in sorted(main, key=lambda s: s["start"]):
        if s["end"] > reach:
            covered += s["end"] - max(s["start"], reach)
            reach = s["end"]
    out["main thread outside the phases above (lock, logging, rendering)"] = \
        ms(marks["main done"] - marks["main"] - covered)
    out["CPU of the toolkit process (user+sys)"] = ms(data["cpu"])
    out["wall (traced)"] = ms(data["wall"])
    return out


def report(title: str, runs: list[dict[str, float]]) -> None:
    print(title)
    keys = list(dict.fromkeys(k for r in runs for k in r))
    for key in keys:
        values = [r[key] for r in runs if key in r]
        med = statistics.median(values)
        spread = f"  [{min(values):g} .. {max(values):g}]" if len(values) > 1 else ""
        unit = "" if "(count)" in key else " ms"
        print(f"  {key:78} {med:9.1f}{unit}{spread}")


# -- imports and cProfile ---------------------------------------------------------------------------------------
def importtime(runs: int) -> None:
    selfs, totals = defaultdict(list), []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import tmt_ops.cli.restart"],
                              capture_output=True, text=True, env=ENV, cwd=REPO)
        seen = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
            seen[name.strip()] = int(own)
            if name.strip() == "tmt_ops.cli.restart":
                totals.append(int(cumulative))
        for name, own in seen.items():
            selfs[name].append(own)
    print(f"imports of tmt_ops.cli.restart (python -X importtime, {runs} runs; {floors.loads()}): median total "
          f"{statistics.median(totals) / 1000:.0f} ms; top modules by median self time:")
    top = sorted(selfs.items(), key=lambda kv: -statistics.median(kv[1]))[:25]
    for name, values in top:
        print(f"  {name:50} {statistics.median(values) / 1000:7.1f} ms")
    groups = defaultdict(float)
    for name, values in selfs.items():
        head = name.split(".")[0]
        groups[head] += statistics.median(values) / 1000
    print("  by top-level package (sum of median self times): " +
          ", ".join(f"{k} {v:.0f} ms" for k, v in sorted(groups.items(), key=lambda kv: -kv[1])[:14]))


def start_and_exit(runs: int) -> None:
    """The interpreter alone, with the toolkit's imports, and those without the interpreter's exit (os._exit),
    interleaved."""
    codes = {"python -c pass": "pass", "import tmt_ops.cli.restart": "import tmt_ops.cli.restart",
             "the same, then os._exit(0)": "import os, tmt_ops.cli.restart; os._exit(0)",
             "import tmt_ops.cli.stop": "import tmt_ops.cli.stop"}
    times = defaultdict(list)
    for _ in range(runs):
        for label, code in codes.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=ENV)
            times[label].append(time.perf_counter() - started)
    print(f"interpreter start, imports and exit ({runs} interleaved runs each, median; {floors.loads()}): " +
          ", ".join(f"{label} {statistics.median(v) * 1000:.0f} ms" for label, v in times.items()))


def cprofile(tmp: Path, cfg: Path) -> None:
    for script, extra in (("restart-trading-system.py", ()), ("stop-trading-system.py", ())):
        if script.startswith("restart"):
            plain("restart-trading-system.py", cfg, "--skip-health-check")
        out = tmp / f"{script}.prof"
        run([sys.executable, str(TRACER), "--cprofile", str(out), str(REPO / script), "--config", str(cfg),
             "--mode", "native", *extra])
        stats = pstats.Stats(str(out))
        total = sum(v[2] for v in stats.stats.values())  # own time over every thread
        print(f"cProfile of {script} (every thread, CPU time (time.thread_time); total {total * 1000:.0f} ms):")
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:16]
        for (file, line, func), (cc, nc, tt, ct, _) in rows:
            where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if file != "~" else "(built-in)"
            print(f"  {tt * 1000:8.1f} ms own {ct * 1000:8.1f} ms cum {nc:6d} calls  {func}  {where}")
        print("  the toolkit's functions by cumulative CPU (callees included):")
        ours = [kv for kv in stats.stats.items() if "/tmt_ops/" in kv[0][0] and kv[0][2] not in ("<module>",)]
        for (file, line, func), (cc, nc, tt, ct, _) in sorted(ours, key=lambda kv: -kv[1][3])[:24]:
            where = f"{Path(file).parent.name}/{Path(file).name}:{line}"
            print(f"  {ct * 1000:8.1f} ms cum {tt * 1000:8.1f} ms own {nc:6d} calls  {func}  {where}")


def main() -> int:
    compile_sources()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--registry", type=Path, help="a registry file (default: the shipped one on free ports)")
    parser.add_argument("--imports", type=int, default=9, help="python -X importtime runs")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tmt-profile-"))
    cfg = args.registry or write_registry(tmp)
    registry = load_registry(cfg)
    restarts, stops, plain_restarts, plain_stops, downs = [], [], [], [], []
    print(f"machine: {os.cpu_count()} cpus, {floors.loads()}; registry {cfg} ({len(registry.managed)} services)")
    try:
        for n in range(args.rounds):
            hand = floors.start_by_hand(registry, tmp / "by-hand", led=len(registry.managed) > 4)
            downs.append(floors.shutdowns(registry, hand))
            plain("restart-trading-system.py", cfg, "--skip-health-check")
            data = traced(tmp / f"restart-{n}.json", "restart-trading-system.py", cfg)
            restarts.append(phases(data, registry, hand.ready))
            stops.append(phases(traced(tmp / f"stop-{n}.json", "stop-trading-system.py", cfg), registry))
            plain("restart-trading-system.py", cfg, "--skip-health-check")
            plain_restarts.append(plain_cpu("restart-trading-system.py", cfg))
            plain_stops.append(plain_cpu("stop-trading-system.py", cfg))
        print(f"{args.rounds} rounds, {floors.loads()} after")
        waves = [f"{statistics.median(d[i] for d in downs) * 1000:.0f}" for i in range(len(downs[0]))]
        print(f"the services' own shutdowns by hand, by reverse wave: {', '.join(waves)} ms (sum "
              f"{statistics.median(sum(d) for d in downs) * 1000:.0f} ms)")
        med = statistics.median
        print(f"untraced: restart {med(w for w, _ in plain_restarts):.3f} s wall, {med(c for _, c in plain_restarts):.3f} s "
              f"CPU; stop {med(w for w, _ in plain_stops):.3f} s wall, {med(c for _, c in plain_stops):.3f} s CPU "
              f"(traced walls: {med(r['wall (traced)'] for r in restarts) / 1000:.3f} s, "
              f"{med(r['wall (traced)'] for r in stops) / 1000:.3f} s)")
        report("restart-trading-system.py of the running stack, by phase (median ms [min .. max]):", restarts)
        report("stop-trading-system.py of the running stack, by phase (median ms [min .. max]):", stops)
        importtime(args.imports)
        start_and_exit(args.imports)
        cprofile(tmp, cfg)
    finally:
        subprocess.run([sys.executable, str(REPO / "stop-trading-system.py"), "--config", str(cfg), "--force", "-q"],
                       capture_output=True, env=ENV)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
