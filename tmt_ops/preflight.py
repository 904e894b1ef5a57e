"""Preflight: everything a restart needs is checked before the first change, so a problem found half-way
can never leave the system half down. The backends check their own (backends.Backend.preflight, using the
helpers here); operations.py adds what is common: required dependencies answering, ports not held.

A problem is one line. Configuration problems (a program that is not there, a missing directory, an
unwritable state or log directory, a compose file compose refuses) exit 2; the environment (a required
dependency that does not answer, a foreign process on a service's port) exits 1. Nothing is stopped when
any is found.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .data import dataclass
from .errors import TmtError
from .files import PRIVATE_DIR, FileProblem, ensure_dir, writable_file
from .ports import describe_holders, listeners, listening_sockets
from .probes import ProbeResult, probe_all
from .registry import Service
from .states import SERVING, Health


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


def writable(folder: Path, what: str, key: str, files: Iterable[Path] = ()) -> Problem | None:
    """The directory is there (made private when missing: the state and log directories hold what the toolkit
    keeps for itself) and a file can be made in it. A file, a FIFO or a dangling symlink at its path is named,
    and so is each of `files` (e.g. the logs of the services to start) that is there but not a regular file:
    its service could not start."""
    import tempfile  # only here: the import costs a restart time before its first service starts
    try:
        ensure_dir(folder, PRIVATE_DIR)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileProblem as exc:
        return Problem(f"the {what} directory {folder} is not writable ({exc.why}): fix it or set project.{key} "
                       "in the registry", 2)
    except OSError as exc:
        return Problem(f"the {what} directory {folder} is not writable ({exc.strerror}): fix its permissions or "
                       f"set project.{key} in the registry", 2)
    for path in files:
        try:
            writable_file(path)
        except FileProblem as exc:
            return Problem(str(exc), 2)
    return None


def runnable(service: Service, environment: Mapping[str, str], command: tuple[str, ...] | None = None,
             what: str = "command") -> Problem | None:
    """The service's working directory exists and its program (of `command`, its own by default; `what` names it
    in the registry) is an executable file or found on the PATH of `environment`, the one it starts with."""
    if not (command or service.command):
        return Problem(f"{service.name}: no {what} in the registry: native mode cannot start it (give it one, or "
                       "`backend: compose` to run it in a container)", 2)
    held = next((name for name, value in environment.items() if "\0" in name or "\0" in value), None)
    if held is not None:  # (the registry's env, an env file: no process can be started with it)
        return Problem(f"{service.name}: its environment variable {held!r} holds a NUL byte, which no program can be "
                       "started with: fix it in the registry's env or the service's env file", 2)
    if any("\0" in word for word in command or service.command):
        return Problem(f"{service.name}: its {what} holds a NUL byte, which no program can be started with", 2)
    if not service.cwd.is_dir():
        return Problem(f"{service.name}: its working directory {service.cwd} does not exist (cwd in the registry)", 2)
    program = (command or service.command)[0]
    if "/" in program:  # the loader made a relative one the service's cwd's (registry.build._program)
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return None
        return Problem(f"{service.name}: its program {program} is not an executable file ({what} in the registry)", 2)
    search = environment.get("PATH", os.defpath)
    if shutil.which(program, path=search) is None:
        return Problem(f"{service.name}: its program '{program}' is not on PATH ({search}): install it or give "
                       f"its full path in the registry's {what}", 2)
    return None


def ports_taken(starting: Iterable[Service], engine, owner: str, ours: Callable[[Mapping[str, str]], bool]) -> list[Problem]:
    """A container engine cannot publish a port someone else holds: found only after the stop, the service and
    everything that needs it would stay down. So each port of a service to start must be free, or published by
    a running container of this deployment (`ours`, given the container's labels; `owner` names the deployment).
    Another container publishing it, or a process on this host holding it, is named. `engine`: engine.Engine."""
    wanted = {s.port: s for s in starting if s.port and not s.oneshot}
    if not wanted:  # (swarm: no service is public) nothing to ask the engine or the kernel
        return []
    mine, others = set(), {}
    for c in engine.listed():
        if c.get("State") not in ("running", "paused"):  # a paused container still publishes its ports
            continue
        for port in (p.get("PublicPort") for p in c.get("Ports") or ()):
            if port in wanted:
                if ours(c.get("Labels") or {}):
                    mine.add(port)
                else:
                    others[port] = c["Names"][0].lstrip("/")
    listening = listening_sockets()
    held = listeners(p for p in wanted if p in listening and p not in mine and p not in others)
    problems = []
    for port, service in wanted.items():
        if port in others:
            why = f"port {port} is published by container {others[port]}"
        elif port in listening and port not in mine:
            why = describe_holders(port, held.get(port, ()))
        else:
            continue
        problems.append(Problem(f"{service.name}: {why}, not a container of {owner}: stop it, or give {service.name} "
                                "another port in the registry", 1))
    return problems


def probe_round(deployment, services: Iterable[Service]) -> dict[str, ProbeResult]:
    """One round of probes of these services, each where the deployment's backend says it answers (`deployment`
    is a backends.Deployment), all at once."""
    services = [s for s in services if not s.oneshot]  # a job listens on nothing
    if not services:
        return {}
    targets = [deployment.of(s).address(s) if deployment.of(s) else s for s in services]
    return probe_all(targets, max(s.probe.timeout for s in services))


def needed(deployment, starting: Iterable[Service]) -> list[Service]:
    """The required dependencies of the services to start that are not among them (what must answer now)."""
    starting = list(starting)
    registry = deployment.registry
    names = {s.name for s in starting}
    wanted = {dep for s in starting for dep in s.required_deps
              if dep not in names and not registry.service(dep).oneshot}  # a job outside the run did its work
    return [registry.service(n) for n in registry.services if n in wanted]


def dependencies(deployment, starting: Iterable[Service], answers: Mapping[str, ProbeResult]) -> list[Problem]:
    """Every required dependency of the services to start, outside them, must answer now (`answers`: a
    probe_round that covered needed())."""
    starting = list(starting)
    problems = []
    for service in needed(deployment, starting):
        result = answers[service.name]
        if result.status not in SERVING:
            users = ", ".join(s.name for s in starting if service.name in s.required_deps)
            problems.append(Problem(f"{service.display_name} at {service.address} does not answer "
                                    f"({result.error or result.status.value}), and {users} cannot run without it "
                                    "(depends_on: required): start it first", 1))
    return problems


def unresponsive(steps: Iterable, answers: Mapping[str, ProbeResult]) -> dict[str, str]:
    """Services about to be stopped (stop steps, or start steps that replace a running service in place) that
    cannot act on a stop now: frozen (a step's `frozen`: a process stopped by
    SIGSTOP, a paused container), or hung (its probe timed out: it accepts a connection, then says nothing).
    Found before anything changes, they would survive their stop signal, and what needs them could not start
    again."""
    found = {}
    for step in steps:
        name = step.service if isinstance(step.service, str) else step.service.name  # a stop step, or a roll
        frozen = getattr(step, "frozen", None)
        answer = answers.get(name)
        if frozen:
            found[name] = frozen
        elif answer is not None and answer.status is Health.TIMEOUT:
            found[name] = f"it does not answer ({answer.error or 'timeout'}): hung?"
    return found
