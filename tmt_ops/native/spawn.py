"""Start one service detached: its own session, stdin closed, output appended to logs/<service>.log.

Own session: closing the terminal or Ctrl-C on the toolkit does not reach it, and its process group
holds exactly what it starts, so a stop can signal the group (wrapper, shell and grandchild alike).
Output goes to a file, never to a pipe nobody reads (a chatty service would block once it fills). The file is
private (0600: a trading service may print its settings) and only ever a regular file of its own: a FIFO there
would hang the spawn, a symlink would send the output elsewhere (files.open_append refuses both).
Proof of identity (native/proof.py): the run tag in its environment, and where cgroup v2 is writable, its
own cgroup, which the toolkit moves it (and anything it started meanwhile) into while it boots.

Three steps, so that a batch's services start together: prepare (every check, its log opened), launch (the
process alone), settle (cgroup and run record). On 2 cores, whatever the toolkit does between two launches is
taken from the services already booting; a wave of 20 spawned one whole spawn after another took seconds.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

import psutil

from .. import files, statedir
from ..data import dataclass
from ..errors import ConfigError, OperationFailed
from ..loglines import MARKER
from ..preflight import runnable
from ..registry import Registry, Service, dotenv
from . import proof, records
from .records import RunRecord


@dataclass
class Spawned:
    service: str
    process: subprocess.Popen
    record: RunRecord
    started: float  # time.monotonic() at spawn
    log: Path  # where its output goes ...
    log_offset: int  # ... from here on (after this run's marker line)
    warning: str | None = None  # its run record could not be written (its run tag and cgroup still prove it)


def rotate(path: Path, max_bytes: int, backups: int) -> None:
    """At spawn time: a log at or over max_bytes becomes .1 (older ones shift up, the oldest drops); only
    regular files move (files.rotate: FileProblem otherwise)."""
    try:
        if os.lstat(path).st_size < max_bytes:  # lstat: what is not a regular file is refused by the open
            return
    except FileNotFoundError:
        return
    except OSError as exc:
        raise files.FileProblem(f"cannot write {path}: {exc.strerror}") from None
    files.rotate(path, backups)


def environment_of(service: Service) -> dict[str, str]:
    """What the service starts with: this environment, its env files' variables, then its registry env (which
    wins); ConfigError naming an env file that cannot be read."""
    return {**os.environ, **dotenv.environment(service.env_files, os.environ), **service.env}


@dataclass
class Prepared:
    """A service ready to be started at once: checked, its run tag and cgroup made, its log open with this run's
    marker written (launch closes it)."""
    service: Service
    environment: dict[str, str]  # its run tag included
    tag: str
    cgroup: Path | None
    log: Path
    out: BinaryIO
    offset: int  # where this run's output begins (after the marker line)


def prepare(registry: Registry, service: Service) -> Prepared:
    """Everything a start needs before its process (checked as preflight checks it: things change after a
    preflight); OperationFailed when it cannot be started."""
    try:
        environment = environment_of(service)
    except ConfigError as exc:
        raise OperationFailed(f"{service.name}: {exc}") from None
    problem = runnable(service, environment)
    if problem:
        raise OperationFailed(problem.text)
    tag = proof.run_tag(registry.state_dir, service.name, secrets.token_hex(6))
    cgroup = proof.make_cgroup(registry.state_dir, service.name)
    if cgroup is not None and proof.cgroup_pids(cgroup):
        raise OperationFailed(f"{service.name}: processes of an earlier run are still in its cgroup {cgroup}: "
                              f"stop them first (stop-trading-system.py --only {service.name})")
    log = registry.log_file(service)
    try:
        files.ensure_dir(log.parent, files.PRIVATE_DIR)
        rotate(log, registry.log_max_bytes, registry.log_backups)
        out = files.open_append(log)
    except files.FileProblem as exc:
        raise OperationFailed(f"{service.name}: cannot write its log: {exc}") from None
    try:  # where this run's output begins: the last lines a failure shows (NativeBackend.logs) say so
        out.write(f"{MARKER}{service.name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        out.flush()
    except OSError as exc:
        out.close()
        raise OperationFailed(f"{service.name}: cannot write its log: {exc.strerror or exc}") from None
    return Prepared(service, {**environment, proof.RUN_VARIABLE: tag}, tag, cgroup, log, out, out.tell())


@dataclass
class Launched:
    prepared: Prepared
    process: subprocess.Popen
    started: float  # time.monotonic() at its launch


def launch(prepared: Prepared) -> Launched:
    """Its process started in a session of its own, output appended to its log (closed here, whatever happens);
    nothing else, so a batch's services start one right after another (settle does the rest). OperationFailed
    when it cannot be run."""
    service = prepared.service
    with prepared.out:
        try:
            process = subprocess.Popen(list(service.command), cwd=service.cwd, env=prepared.environment,
                                       stdin=subprocess.DEVNULL, stdout=prepared.out, stderr=subprocess.STDOUT,
                                       start_new_session=True, close_fds=True)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:  # ValueError: a NUL in its environment
            raise OperationFailed(f"{service.name}: cannot run {service.command[0]}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
    return Launched(prepared, process, time.monotonic())


def settle(registry: Registry, launched: Launched) -> Spawned:
    """A launched service moved into its cgroup (with anything it started meanwhile) and its run on record."""
    prepared, process, started = launched.prepared, launched.process, launched.started
    service, cgroup = prepared.service, prepared.cgroup
    try:
        create_time = psutil.Process(process.pid).create_time()  # a zombie still has one
    except psutil.NoSuchProcess:
        create_time = 0.0
    if cgroup is not None and not proof.join(cgroup, process.pid):
        cgroup = None  # gone already, or refused: its group and run tag still prove it
    record = RunRecord(service=service.name, pid=process.pid, pgid=process.pid, sid=process.pid,
                       create_time=create_time, log_file=str(prepared.log), started_at=time.time(),
                       run_tag=prepared.tag, cgroup=None if cgroup is None else str(cgroup),
                       secret_args=service.secret_args)
    try:
        records.write(registry.state_dir, record)
    except statedir.StateError as exc:
        return Spawned(service.name, process, record, started, prepared.log, prepared.offset,
                       f"{service.name}: its run record could not be written ({exc}); it is still found by its "
                       f"{'cgroup and ' if cgroup else ''}run tag")
    return Spawned(service.name, process, record, started, prepared.log, prepared.offset)
