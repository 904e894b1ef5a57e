"""One health report: every probe at once under the registry's deadline, the backend's view of each service,
what the state directory records of services that run on after their pre-stop call, host resources, and the
findings derived from them. It only reads: nothing is written."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import modes, prestopped
from ..backends import ServiceStatus
from ..data import dataclass, replace
from ..probes import ProbeResult, probe_all
from ..registry import Service
from ..statedir import StateError
from ..states import Health
from . import advice
from .checks import Check, PortHolder, Report
from .backends import BackendQuery, BackendView
from .merge import after_pre_stop, container_words, impostor, join, past_startup
from .resources import CpuSampler, measure

if TYPE_CHECKING:
    from ..backends import Deployment
    from ..prestopped import PreStopped


def _not_running(service: Service, holders, backend: ServiceStatus | None, problem: str | None) -> str:
    """Why an answer on the service's port does not count for it, naming what answers there."""
    port = service.port
    if problem is not None:
        return (f"not verified: port {port} answers, but whether {service.display_name} is what answers there "
                f"cannot be told ({problem})")
    who = "; ".join(h.describe() for h in holders) or "a process that could not be identified"
    text = f"not running: port {port} is answered by {who}, not by {service.display_name}"
    return text + (f"; {container_words(backend)}" if backend is not None and backend.container else "")


def make_checks(deployment: "Deployment", results: dict[str, ProbeResult], view: BackendView) -> tuple[Check, ...]:
    """Each probe joined with what the service's own backend says; a service outside the deployment (no
    backend: infrastructure it does not run) is judged by its probe alone."""
    registry = deployment.registry
    backends = {name: deployment.of(registry.services[name]) for name in results}
    # An answer counts only when the backend shows it comes from the service (merge.impostor); when that
    # backend could not be asked, it cannot be attributed at all.
    foreign = {n for n, r in results.items() if backends[n] is not None and (
        impostor(r, view.statuses.get(n)) or backends[n].name in view.problems and r.port_open)}
    wanted = [registry.services[n].port for n, r in results.items()
              if n in foreign or r.port_open and r.status in (Health.UNHEALTHY, Health.TIMEOUT, Health.ERROR)]
    held = {}
    if wanted:
        from ..ports import listeners
        held = listeners(wanted)  # one socket scan for every port whose owner matters
    checks = []
    for name, result in results.items():
        service, backend, status = registry.services[name], backends[name], view.statuses.get(name)
        holders = held.get(service.port, ())
        mine = set(status.pids) if status is not None else set()
        classified = tuple(PortHolder(h.pid, h.name, h.user, h.cmdline,
                                      h.pid in mine if mine else (False if name in foreign else None))
                           for h in holders)
        if name in foreign:
            problem = view.problems.get(backend.name)
            health, error = Health.UNHEALTHY, _not_running(service, [h for h in holders if h.pid not in mine],
                                                           status, problem)
        elif backend is None:
            health, error = result.status, result.error
        else:
            health, error = join(modes.of_backend(backend.name).runs, result, status)
        health, error, stuck = past_startup(service, health, error, status)
        checks.append(Check(service, result, health, error, status, classified, stuck))
    return tuple(checks)


def _after_pre_stop(checks: tuple[Check, ...], records: dict[str, "PreStopped"], asked_at: float) -> tuple[Check, ...]:
    """Each check joined with its service's record of running on after its pre-stop call (merge.after_pre_stop)."""
    joined = []
    for c in checks:
        health, error = after_pre_stop(c.status, c.error, c.backend, records.get(c.service.name), asked_at)
        joined.append(replace(c, status=health, error=error))
    return tuple(joined)


@dataclass(frozen=True)
class Round:
    """What one round of checks found: each service's Check, the backends' view, and why the state directory's
    records could not be read (None when they could)."""

    checks: tuple[Check, ...]
    view: BackendView
    state_problem: str | None


def check_round(deployment: "Deployment", services: list[Service]) -> Round:
    """One round of checks of these services, as system-health judges them, whoever asks (a restart's verdict, a
    health report, a heal). The backends are asked while the probes run: only they can tell whether what answers
    on a service's port is the service (native: the port's socket in one of its processes; docker: the container
    publishing the port), so a healthy answer is never taken on trust."""
    deadline = deployment.registry.health.deadline
    started = time.monotonic()
    asked_at = time.time()  # before the backends measure uptimes: a start told from them is never too late
    query = BackendQuery(deployment)
    services = [s for s in services if not s.oneshot]  # jobs are not running services
    results = probe_all([deployment.of(s).address(s) if deployment.of(s) else s for s in services], deadline)
    try:
        records, state_problem = prestopped.read(deployment.registry.state_dir), None
    except StateError as exc:  # said as a finding, never taken for "no records"
        records, state_problem = {}, str(exc)
    view = query.wait(max(deadline - (time.monotonic() - started), 1.0))
    return Round(_after_pre_stop(make_checks(deployment, results, view), records, asked_at), view, state_problem)


def check_services(deployment: "Deployment", services: list[Service]) -> dict[str, Check]:
    """check_round's checks by service."""
    return {c.service.name: c for c in check_round(deployment, services).checks}


def build(deployment: "Deployment", cpu: CpuSampler | None = None) -> Report:
    """The report of one round of every service, with the host's resources and the findings. `cpu` marks where the
    CPU window starts (the monitor keeps one sampler across rounds)."""
    registry = deployment.registry
    cpu = cpu or CpuSampler()
    started = time.monotonic()
    found = check_round(deployment, list(registry.services.values()))
    paths = [*registry.health.disk_paths, registry.log_dir, *found.view.disk_paths]
    resources = measure(registry.health.thresholds, paths, cpu)
    findings = advice.findings(deployment, found.checks, resources, found.view.problems, found.state_problem)
    return Report(time.time(), deployment.mode, found.checks, resources, tuple(findings),
                  round((time.monotonic() - started) * 1000, 1))
