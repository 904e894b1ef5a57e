"""Fixtures' helpers for the health tests: real infrastructure (Redis, PostgreSQL, the Kafka stand-in) and the
simulated services on a test registry, both on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


import realservers as rs
from support import REPO, free_ports, kill_listeners, variant, wait_for, write_registry
from tmt_ops.probes import probe
from tmt_ops.registry import load_registry
from tmt_ops.states import Health

UNUSED_INFRA = ("prometheus", "grafana", "jaeger", "vault")  # no server of theirs here: left out of test registries
# A shared test machine is busy at times: thresholds no host reaches, except where a test sets its own.
CALM = {"cpu_percent": {"warning": 101, "critical": 101}, "memory_percent": {"warning": 101, "critical": 101},
        "disk_percent": {"warning": 101, "critical": 101}, "load_per_cpu": {"warning": 1000, "critical": 1000}}
CORE = ("orchestrator", "market-analysis", "execution-engine", "dashboard")


class Infra:
    """PostgreSQL, Redis (real, where installed) and the Kafka stand-in, each on a free port."""

    def __init__(self, workdir: Path):
        self.ports = dict(zip(("postgres", "redis", "kafka"), free_ports(3)))
        self.servers = []
        self.missing = []
        try:
            if rs.postgres_available():
                self.servers.append(rs.Postgres(self.ports["postgres"]))
            else:
                self.missing.append("postgres")
            if rs.redis_available():
                self.servers.append(rs.start_redis(workdir, self.ports["redis"]))
            else:
                self.missing.append("redis")
            self.servers.append(rs.KafkaStandIn(self.ports["kafka"]))
        except BaseException:
            self.stop()
            raise

    def edit(self, data: dict) -> None:
        for name, port in self.ports.items():
            if name in self.missing:
                del data["services"][name]
                for svc in data["services"].values():
                    (svc.get("depends_on") or {}).pop(name, None)
            else:
                data["services"][name]["port"] = port

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class Stack:
    """A test registry whose infrastructure is `infra` and whose named core services run (started here)."""

    def __init__(self, tmp_path: Path, infra: Infra, *, start=CORE, knobs=None, edit=None, env=None):
        def edit_all(data):
            infra.edit(data)
            data["health"]["thresholds"] = dict(CALM)
            if env:
                data["services"]["orchestrator"].setdefault("env", {}).update(env)
            if edit:
                edit(data)
        self.path = write_registry(tmp_path, knobs=knobs, drop=UNUSED_INFRA, edit=edit_all)
        self.registry = load_registry(self.path)
        self.procs = {}
        try:
            self.procs = rs.start_services(self.registry, start, self.registry.log_dir)
        except BaseException:
            self.stop()
            raise

    def port(self, name: str) -> int:
        return self.registry.service(name).port

    def wait(self, names=None, status=Health.HEALTHY, timeout: float = 20) -> None:
        for name in names or self.procs:
            service = self.registry.service(name)
            if not wait_for(lambda: probe(service).status is status, timeout, 0.1):
                log = (self.registry.log_dir / f"{name}.log")
                raise AssertionError(f"{name} never became {status.value}: {probe(service)}; "
                                     f"log: {log.read_text()[-1500:] if log.exists() else '-'}")

    def wait_listening(self, name: str) -> None:
        rs.wait_listening(self.procs[name], self.port(name))

    def variant(self, name: str, edit) -> Path:
        """The same registry (same ports) with an edit: e.g. other thresholds."""
        return variant(self.path, edit, name)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


@contextmanager
def running_stack(prefix: str) -> Iterator[tuple[Path, Infra, Path]]:
    """For the benches: infrastructure on free ports and the simulated stack started by restart-trading-system.py,
    the toolkit's way (run records), as an operator's running stack is, in a temporary directory named with
    `prefix`; (registry path, infra, the directory), everything stopped and removed afterwards. A restart that
    fails ends the bench (SystemExit) with its output."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        infra = Infra(workdir / "infra")
        path = write_registry(workdir, edit=infra.edit)
        env = {**os.environ, "NO_COLOR": "1"}
        try:
            start = subprocess.run([sys.executable, str(REPO / "restart-trading-system.py"), "--config", str(path)],
                                   capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
            if start.returncode != 0:
                raise SystemExit(f"restart-trading-system.py failed ({start.returncode}):\n"
                                 f"{start.stdout}{start.stderr}")
            yield path, infra, workdir
        finally:
            subprocess.run([sys.executable, str(REPO / "stop-trading-system.py"), "--config", str(path), "--force"],
                           capture_output=True, env=env, cwd=REPO, timeout=120)
            # not the infrastructure ports: the Kafka stand-in listens in this very process
            kill_listeners(s.port for s in load_registry(path).managed)
            infra.stop()
