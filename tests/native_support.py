"""Shared by the native lifecycle tests: run the scripts against a registry, look at its processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import yaml

from support import run_script, wait_for


def restart(cfg: Path, *args: str, **kw):
    return run_script("restart-trading-system.py", "--config", str(cfg), *args, **kw)


def stop(cfg: Path, *args: str, **kw):
    return run_script("stop-trading-system.py", "--config", str(cfg), *args, **kw)


def running_stack(registry_file, *, flags: tuple[str, ...] = (), **kw) -> tuple[Path, dict[str, int]]:
    """A registry (registry_file(**kw)) whose whole stack is up, restarted with `flags`, and its pids."""
    cfg = registry_file(**kw)
    started = restart(cfg, *flags)
    assert started.returncode == 0, started.stderr
    return cfg, recorded_pids(cfg)


def only_the_engine_for_the_dashboard(data: dict) -> None:
    """A registry edit: orchestrator, then market-analysis beside the execution engine, which the dashboard alone
    needs (nothing needs market-analysis)."""
    services = data["services"]
    for name in ("execution-engine", "dashboard"):
        services[name]["depends_on"].pop("market-analysis")
        command = services[name]["command"]
        at = command.index("{health_url:market-analysis}")
        del command[at - 1:at + 1]  # its --requires too


def slow_dashboard_stack(registry_file, seconds: float) -> tuple[Path, dict[str, int]]:
    """The stack running in only_the_engine_for_the_dashboard's graph, its dashboard taking `seconds` to shut
    down after its stop signal; and its pids."""
    def edit(data: dict) -> None:
        only_the_engine_for_the_dashboard(data)
        data["services"]["dashboard"]["command"] += ["--stop-delay", str(seconds)]
    return running_stack(registry_file, flags=("--skip-health-check",), edit=edit)


def state_dir(cfg: Path) -> Path:
    return Path(yaml.safe_load(cfg.read_text())["project"]["state_dir"])


def recorded_pids(cfg: Path) -> dict[str, int]:
    """The run records' pids. Read while a restart runs too: a record removed between the listing and its read (a
    stop wave at work) is not there."""
    found = {}
    for record in state_dir(cfg).joinpath("run").glob("*.json"):
        try:
            found[record.stem] = json.loads(record.read_text())["pid"]
        except FileNotFoundError:
            continue
    return found


def port_of(cfg: Path, service: str) -> int:
    return yaml.safe_load(cfg.read_text())["services"][service]["port"]


def group_of(pgid: int) -> list[int]:
    """Live (non-zombie) members of a process group."""
    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except ProcessLookupError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def stranger_on(port: int):
    """A process that is not ours serving HTTP on 127.0.0.1:port (its own session), once it listens; killed after."""
    stranger = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: any(c.laddr.port == port for c in psutil.Process(stranger.pid).net_connections()), 10)
        yield stranger
    finally:
        stranger.kill()
        stranger.wait()
