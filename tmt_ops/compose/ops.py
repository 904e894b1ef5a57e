"""The docker-mode operations: start, stop, restart, status, logs, clean. Each returns an exit code.

Compose changes the project (always with -p, so nothing of another project is touched); the engine is
read to learn what happened. Human lines go through the Printer; logs go to the stream the caller gives.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from typing import Callable, TextIO

from .. import preflight
from ..console import Printer, write_out
from ..errors import OperationFailed, UsageError
from ..interrupts import INTERRUPTED, Interrupts
from ..prestop import call_pre_stop
from ..probes import probe_all
from ..states import Health
from .containers import Container
from .project import Project
from .ready import wait_ready
from .stackfile import built, pulled

FAILED_LOG_LINES = 30


def _grace(project: Project) -> int:
    """Seconds compose gives a container between SIGTERM and SIGKILL: the registry's longest stop_grace."""
    return math.ceil(max(s.stop_grace for s in project.registry.services.values()))


def build(project: Project, printer: Printer) -> None:
    """Pull what is pulled (offline: a warning, local images are used), then build what is built."""
    project.engine.ping()
    services = project.services
    to_pull = pulled(services)
    if to_pull:
        try:
            project.compose.run("pull", *to_pull)
        except OperationFailed as exc:
            printer.warn(f"pull failed, using local images: {exc}")
    to_build = built(services)
    if to_build:
        printer.info(f"building images of project {project.name} (minutes the first time, seconds when cached)")
        project.compose.run("build", *to_build)


def up(project: Project, printer: Printer, *, wait: bool = True, cancel: threading.Event | None = None) -> int:
    """`up -d` (no build: build() did it) and wait until every service is ready; 1 and its logs if not,
    130 when `cancel` was set before every service was ready (nothing more is started then)."""
    services = list(project.services)
    printer.info(f"starting project {project.name}: {', '.join(services)}")
    up_args = ("up", "-d", "--no-build", "--remove-orphans")
    if not wait:  # compose itself still waits for the healthy dependencies that depends_on names
        project.compose.run(*up_args)
        return 0
    since = time.time()
    outcome = wait_ready(project, services, project.compose.start(*up_args), since, cancel or threading.Event())
    for service in outcome.ready:
        printer.ok(f"  {service}: ready")
    for service, why in outcome.failed.items():
        printer.error(f"  {service}: {why}")
    why_pending = "interrupted" if outcome.interrupted else "the start stopped when another service failed"
    for service in outcome.pending:
        printer.warn(f"  {service}: not ready ({why_pending})")
    for service in outcome.failed:
        show_logs(project, printer, service)
    if outcome.failed or outcome.pending:
        say_what_runs(project, printer)
    return 1 if outcome.failed else INTERRUPTED if outcome.interrupted else 0


def say_what_runs(project: Project, printer: Printer) -> None:
    """After a start that did not finish: exactly which services run now and which do not, from the engine."""
    by_service = {c.service: c for c in project.containers()}
    running, down = [], []
    for service in project.services:
        c = by_service.get(service)
        if c is not None and c.status == "running":
            running.append(service + ("" if c.health in (None, "healthy") else f" ({c.health})"))
        else:
            down.append(f"{service} ({'no container' if c is None else c.status})")
    printer.warn(f"now running: {', '.join(running) or 'nothing'}; not running: {', '.join(down) or 'nothing'}")


def show_logs(project: Project, printer: Printer, service: str) -> None:
    done = project.compose.run("logs", "--no-color", "--tail", str(FAILED_LOG_LINES), service)
    printer.line(f"--- last {FAILED_LOG_LINES} log lines of {service} ---", "dim")
    for line in done.stdout.splitlines():
        printer.line(line)


def start(project: Project, printer: Printer, interrupts: Interrupts) -> int:
    build(project, printer)
    interrupts.begin_changes("nothing more is started; what runs keeps running")
    return up(project, printer, cancel=interrupts.requested)


def _pre_stop(project: Project, printer: Printer, running: list[Container]) -> None:
    """The registry's pre-stop hooks (e.g. stop taking orders), dependents first, on the published ports."""
    names = {c.service for c in running if c.status == "running"}
    known = [s for s in project.registry.services.values() if s.compose_service in names and s.pre_stop]
    for wave in project.registry.stop_waves(known):
        for service in wave:
            answered, message = call_pre_stop(service)
            (printer.info if answered else printer.warn)(message)


def stop(project: Project, printer: Printer, interrupts: Interrupts | None = None, *, volumes: bool = False) -> int:
    """`down` of this project only; then the engine must show none of its containers left. An interrupt lets
    `down` finish (exit 130)."""
    project.engine.ping()
    if interrupts is not None:
        interrupts.begin_changes("finishing `down`")
    running = project.containers()
    if not running:
        printer.info(f"project {project.name}: no containers")
    else:
        _pre_stop(project, printer, running)
        printer.info(f"stopping project {project.name}: {', '.join(c.name for c in running)}")
    args = ["down", "--remove-orphans", "--timeout", str(_grace(project))] + (["--volumes"] if volumes else [])
    project.compose.run(*args)
    left = project.containers()
    if left:
        raise OperationFailed(f"project {project.name}: still there after down: {', '.join(c.name for c in left)}")
    printer.ok(f"project {project.name} stopped")
    return INTERRUPTED if interrupts is not None and interrupts.requested.is_set() else 0


def validate(project: Project, printer: Printer) -> int:
    """The registry's probes, from the host, of every registry service the stack runs: ports published right.

    1 when a critical service does not answer healthy (degraded is a warning), else 0.
    """
    services = [s for s in project.registry.services.values() if s.compose_service in project.services]
    failed = 0
    results = probe_all(services, project.registry.health.deadline)
    for service in services:
        result = results[service.name]
        where = f"{result.url}, {result.response_time_ms:g} ms"
        if result.status is Health.HEALTHY:
            printer.ok(f"  {service.name}: healthy ({where})")
        elif result.status is Health.DEGRADED or not service.critical:
            printer.warn(f"  {service.name}: {result.status.value} ({where}): {result.error}")
        else:
            failed += 1
            printer.error(f"  {service.name}: {result.status.value} ({where}): {result.error}")
    return 1 if failed else 0


def restart(project: Project, printer: Printer, interrupts: Interrupts, *, skip_health_check: bool = False,
            show_status: Callable[[Project], None] | None = None) -> int:
    """Check everything and build first (a bad compose file, a failed build or a required dependency that is
    down leaves the running stack alone), then stop, start, and show the status.

    An interrupt during the stop lets `down` finish, then starts the stack again (exit 130); during the
    start, nothing more is started (exit 130)."""
    problems = preflight.compose(project)
    for problem in problems:
        printer.error(f"preflight: {problem.text}")
    preflight.check(problems)
    build(project, printer)
    interrupts.begin_changes("finishing `down`, then starting the stack again")
    stop(project, printer)
    restoring = interrupts.requested.is_set()
    if not restoring:
        interrupts.then = "nothing more is started; what runs keeps running"
    # Once `down` ran, starting the stack again is the restore: only a second interrupt may cut it short.
    code = up(project, printer, wait=not skip_health_check,
              cancel=threading.Event() if restoring else interrupts.requested)
    if code == 0 and not skip_health_check:
        printer.info("validating from the host")
        code = validate(project, printer)
    if show_status:
        show_status(project)
    if restoring and code != 1:
        printer.warn("interrupted: the stack was stopped and started again")
        return INTERRUPTED
    return code


def logs(project: Project, service: str | None, tail: int | None, follow: bool, redact: Callable[[str], str],
         out: TextIO = sys.stdout) -> int:
    """The project's logs (one service's, by registry or compose name), redacted, to `out`."""
    args = ["logs", "--no-color"] + (["--tail", str(tail)] if tail is not None else []) + (["--follow"] if follow else [])
    args += [project.compose_name(service)] if service else []
    project.engine.ping()
    proc = subprocess.Popen(project.compose.argv(*args), env=dict(project.compose.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        for line in proc.stdout:
            if not write_out(out, redact(line)):  # the reader went away (`| head`): stop following, quietly
                proc.terminate()
                break
    except BaseException:  # Ctrl-C: compose runs in its own session, so only we hear it
        proc.terminate()
        raise
    finally:
        proc.stdout.close()
        code = proc.wait()
    return 1 if code > 0 else 0


def clean(project: Project, printer: Printer, *, yes: bool, ask: Callable[[str], str] = input,
          interactive: bool | None = None) -> int:
    """Remove this project's containers, networks and volumes (after confirmation), then start it again."""
    project.engine.ping()
    containers = project.containers()
    volumes = project.engine.volumes(project.name)
    networks = project.engine.networks(project.name)
    printer.warn(f"clean removes project {project.name} only: {len(containers)} container(s), "
                 f"networks: {', '.join(networks) or 'none'}")
    printer.warn(f"volumes to delete (their data is lost): {', '.join(volumes) or 'none'}")
    if not yes:
        if not (sys.stdin.isatty() if interactive is None else interactive):
            raise UsageError("clean deletes this project's containers and volumes: pass --yes to confirm "
                             "(no terminal to ask on)")
        if ask("Delete them and restart? [y/N] ").strip().lower() not in ("y", "yes"):
            printer.info("clean cancelled: nothing removed")
            return 1
    build(project, printer)
    stop(project, printer, volumes=True)
    # down leaves what belongs to services outside the active profiles; the list shown above goes all the same
    for volume in sorted(set(volumes) & set(project.engine.volumes(project.name))):
        project.engine.remove("volumes", volume)
    for network in sorted(set(networks) & set(project.engine.networks(project.name))):
        project.engine.remove("networks", network)
    return up(project, printer)
