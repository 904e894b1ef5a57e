"""Helpers for tests: free ports, a registry of the simulated stack on them, temporary state and logs.

Tests never use the shipped registry's ports: every registry here is the shipped one with each port
replaced by a free one outside the kernel's ephemeral range (as the toolkit asks of every registry), its root at
this checkout, and its log and state directories under tmp_path.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config" / "services.yaml"


LOWEST = 20000  # test ports start here: below are the well-known ports of real servers a host may run


@functools.cache
def _outside_the_ephemeral_range() -> tuple[int, ...]:
    """Ports a test may take: outside the kernel's ephemeral range, as the toolkit asks of a registry (tmt_ops.
    ephemeral: a port there may be taken by any outgoing connection between a test's stop and its start), and
    never one of the shipped registry's."""
    from tmt_ops.ephemeral import kernel_range, parse_ports
    low, high, reserved = kernel_range() or (65536, 65535, "")  # not Linux: every port is outside it
    kept = parse_ports(reserved)  # reserved ports are never handed out
    shipped = {svc["port"] for svc in yaml.safe_load(SHIPPED.read_text())["services"].values() if "port" in svc}
    return tuple(p for p in range(LOWEST, 65536) if (not low <= p <= high or p in kept) and p not in shipped)


def free_ports(n: int) -> list[int]:
    """n distinct ports that were free a moment ago (held open together so none repeats), outside the kernel's
    ephemeral range; from the kernel's own choice where this host leaves too few outside it."""
    socks = []
    try:
        pool = _outside_the_ephemeral_range()
        for port in random.sample(pool, len(pool)):  # in random order: parallel runs seldom try the same
            if len(socks) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # in use, or in TIME_WAIT: not free now
                s.close()
                continue
            socks.append(s)
        while len(socks) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_registry(tmp_path: Path, *, knobs: dict[str, list[str]] | None = None, drop: Iterable[str] = (),
                   edit: Callable[[dict], None] | None = None, name: str = "services.yaml") -> Path:
    """The shipped registry on free ports with state in tmp_path; `knobs` appends flags to a command."""
    data = yaml.safe_load(SHIPPED.read_text())
    data["project"].update(root=str(REPO), log_dir=str(tmp_path / "logs"), state_dir=str(tmp_path / "state"),
                           compose_project=f"tmt-test-{uuid.uuid4().hex[:8]}")
    for gone in drop:
        del data["services"][gone]
        for svc in data["services"].values():
            (svc.get("depends_on") or {}).pop(gone, None)
    for svc, port in zip(data["services"].values(), free_ports(len(data["services"]))):
        svc["port"] = port
    for service, flags in (knobs or {}).items():
        data["services"][service]["command"] = list(data["services"][service]["command"]) + list(flags)
    if edit:
        edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def variant(cfg: Path, edit: Callable[[dict], None], name: str = "variant.yaml") -> Path:
    """The same registry (same ports, same state directory) with an edit, written beside it as `name`."""
    data = yaml.safe_load(cfg.read_text())
    edit(data)
    path = cfg.with_name(name)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def kill_listeners(ports: Iterable[int]) -> None:
    """Teardown: SIGKILL the process groups listening on these (test-allocated) ports."""
    ports = set(ports)
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid and conn.laddr and conn.laddr.port in ports and conn.status == psutil.CONN_LISTEN:
            try:
                os.killpg(os.getpgid(conn.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def remove_cgroups(state_dir: Path, services: Iterable[str]) -> None:
    """Teardown: kill what is left in a test registry's service cgroups and remove them."""
    from tmt_ops.native import proof
    for service in services:
        folder = proof.cgroup_dir(state_dir, service)
        if folder is not None and folder.exists():
            proof.kill_cgroup(folder)
            wait_for(lambda: not proof.cgroup_pids(folder), 5)
            proof.remove_cgroup(folder)


def compile_sources() -> None:
    """Bytecode for the toolkit and the simulator, as `pip install` leaves it (for the benches): where
    PYTHONDONTWRITEBYTECODE is set, as on these machines, every run would otherwise compile every module again."""
    import compileall
    for package in ("tmt_ops", "tmt_sim"):
        compileall.compile_dir(REPO / package, quiet=1)


def run_script(script: str, *args: str, env: dict | None = None, timeout: float = 120, **kw):
    """Run one of the five root scripts as an operator would; returns CompletedProcess (text)."""
    import subprocess
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def advised(report: dict, service: str) -> list[str]:
    """The commands a health report (--json) advises for `service`: what its text and its status page print."""
    return [step["command"] for finding in report["findings"] if finding["subject"] == service
            for step in finding["steps"]]
