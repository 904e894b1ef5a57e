"""Preflight: everything a restart needs is checked before the first signal, so a problem found half-way
can never leave the system half down.

A problem is one line. Configuration problems (a program that is not there, a missing directory, an
unwritable state or log directory) exit 2; the environment (a required dependency that does not answer, a
foreign process on a service's port) exits 1. Nothing is stopped when any is found.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import OperationFailed, TmtError
from .probes import probe_all
from .registry import Registry, Service
from .states import Health

READY = (Health.HEALTHY, Health.DEGRADED)  # it answers and serves; degraded is reported, not fatal


@dataclass(frozen=True)
class Problem:
    text: str
    exit_code: int  # 2: configuration; 1: the environment (a dependency down, a port held)


class PreflightFailed(TmtError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self.exit_code = 2 if any(p.exit_code == 2 for p in problems) else 1
        super().__init__(f"preflight found {len(problems)} problem(s); nothing was stopped or started")


def check(problems: list[Problem]) -> None:
    if problems:
        raise PreflightFailed(problems)


def writable(folder: Path, what: str, key: str) -> Problem | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return Problem(f"the {what} directory {folder} is not writable ({exc.strerror}): fix its permissions or "
                       f"set project.{key} in the registry", 2)
    return None


def runnable(service: Service) -> Problem | None:
    """The service's working directory exists and its program is an executable file or found on its PATH."""
    if not service.cwd.is_dir():
        return Problem(f"{service.name}: its working directory {service.cwd} does not exist (cwd in the registry)", 2)
    program = service.command[0]
    if "/" in program:
        path = Path(program) if os.path.isabs(program) else service.cwd / program
        if path.is_file() and os.access(path, os.X_OK):
            return None
        return Problem(f"{service.name}: its program {path} is not an executable file (command in the registry)", 2)
    search = {**os.environ, **service.env}.get("PATH", os.defpath)
    if shutil.which(program, path=search) is None:
        return Problem(f"{service.name}: its program '{program}' is not on PATH ({search}): install it or give "
                       "its full path in the registry's command", 2)
    return None


def dependencies(registry: Registry, starting: Iterable[Service]) -> list[Problem]:
    """Every required dependency of the services to start, outside them, must answer now."""
    starting = list(starting)
    names = {s.name for s in starting}
    needed = {dep for s in starting for dep in s.required_deps if dep not in names}
    if not needed:
        return []
    services = [registry.service(n) for n in registry.services if n in needed]
    results = probe_all(services, max(s.probe.timeout for s in services))
    problems = []
    for service in services:
        result = results[service.name]
        if result.status not in READY:
            users = ", ".join(s.name for s in starting if service.name in s.required_deps)
            problems.append(Problem(f"{service.display_name} at {service.address} does not answer "
                                    f"({result.error or result.status.value}), and {users} cannot run without it "
                                    "(depends_on: required): start it first", 1))
    return problems


def native(registry: Registry, starting: Iterable[Service], blocked: dict[str, str]) -> list[Problem]:
    """What a native restart needs: directories, programs, required dependencies, ports not held by others."""
    starting = list(starting)
    problems = [p for p in (writable(registry.state_dir, "state", "state_dir"),
                            writable(registry.log_dir, "log", "log_dir")) if p]
    problems += [p for p in map(runnable, starting) if p]
    problems += [Problem(f"{name}: {why}", 1) for name, why in blocked.items()]
    problems += dependencies(registry, starting)
    return problems


def compose(project) -> list[Problem]:
    """What a docker restart needs before `down`: an engine (ConfigError, exit 2, when none answers), a
    compose file that compose itself accepts, and the required dependencies outside the project (such as
    infrastructure installed on the host) answering. `project` is a tmt_ops.compose.project.Project."""
    project.engine.ping()
    problems = []
    try:
        project.compose.run("config", "--quiet")
    except OperationFailed as exc:
        problems.append(Problem(f"compose file {project.file} is not valid: {exc}", 2))
    inside = [s for s in project.registry.services.values() if s.compose_service in project.services]
    return problems + dependencies(project.registry, inside)
