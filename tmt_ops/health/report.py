"""One health report: every probe at once under the registry's deadline, the backend's view of each service,
host resources, and the findings derived from them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..backend import ServiceStatus
from ..probes import ProbeResult, probe_all
from ..registry import Registry, Service
from ..states import Health, Overall, ServiceState
from . import advice
from .backends import BackendQuery, BackendView
from .merge import container_words, impostor, merge_docker, merge_native
from .resources import CpuSampler, Resources, measure
from .severity import of_health, worst


@dataclass(frozen=True)
class PortHolder:
    pid: int
    name: str
    user: str
    cmdline: str
    ours: bool | None  # is it the service's own process (None: cannot tell, e.g. infrastructure)


@dataclass(frozen=True)
class Check:
    service: Service
    result: ProbeResult
    status: Health  # the probe's verdict, joined with the backend's
    error: str | None
    backend: ServiceStatus | None
    holders: tuple[PortHolder, ...] = ()

    @property
    def severity(self) -> Overall:
        return of_health(self.status, self.service.critical)


@dataclass(frozen=True)
class Report:
    timestamp: float
    mode: str
    checks: tuple[Check, ...]
    resources: Resources
    findings: tuple[advice.Finding, ...]
    duration_ms: float

    @property
    def overall(self) -> Overall:
        return worst([*(c.severity for c in self.checks), self.resources.severity,
                      *(f.severity for f in self.findings)])


def _not_running(service: Service, holders, backend: ServiceStatus | None, problem: str | None) -> str:
    """Why an answer on the service's port does not count for it, naming what answers there."""
    port = service.port
    if problem is not None:
        return (f"not verified: port {port} answers, but whether {service.display_name} is what answers there "
                f"cannot be told ({problem})")
    who = "; ".join(h.describe() for h in holders) or "a process that could not be identified"
    text = f"not running: port {port} is answered by {who}, not by {service.display_name}"
    return text + (f"; {container_words(backend)}" if backend is not None and backend.container else "")


def make_checks(registry: Registry, mode: str, results: dict[str, ProbeResult], view: BackendView) -> tuple[Check, ...]:
    statuses = view.statuses
    backends: dict[str, ServiceStatus | None] = {}
    for name in results:
        backend = None if statuses is None else statuses.get(name)
        if backend is None and statuses is not None and mode == "docker" and registry.services[name].managed:
            backend = ServiceStatus(name, ServiceState.STOPPED,
                                    detail=f"not a service of compose project '{registry.compose_project}'")
        backends[name] = backend
    # An answer counts only when the backend shows it comes from the service (merge.impostor); without a
    # backend view, a managed service's answer cannot be attributed at all.
    foreign = {n for n, r in results.items() if impostor(r, backends[n]) or
               statuses is None and registry.services[n].managed and r.port_open}
    wanted = [registry.services[n].port for n, r in results.items()
              if n in foreign or r.port_open and r.status in (Health.UNHEALTHY, Health.TIMEOUT, Health.ERROR)]
    held = {}
    if wanted:
        from ..ports import listeners
        held = listeners(wanted)  # one socket scan for every port whose owner matters
    checks = []
    for name, result in results.items():
        service, backend = registry.services[name], backends[name]
        holders = held.get(service.port, ())
        mine = set(backend.pids) if backend is not None else set()
        classified = tuple(PortHolder(h.pid, h.name, h.user, h.cmdline,
                                      h.pid in mine if mine else (False if name in foreign else None))
                           for h in holders)
        if name in foreign:
            status, error = Health.UNHEALTHY, _not_running(service, [h for h in holders if h.pid not in mine],
                                                           backend, None if statuses is not None else view.problem)
        elif mode == "docker":
            status, error = merge_docker(result, backend)
        else:
            status, error = merge_native(result, backend)
        checks.append(Check(service, result, status, error, backend, classified))
    return tuple(checks)


def build(registry: Registry, mode: str, cpu: CpuSampler | None = None) -> Report:
    """One round. `cpu` marks where the CPU window starts (the monitor keeps one sampler across rounds).

    The backend is asked while the probes run, every round: only it can tell whether what answers on a
    service's port is the service (native: a run record and the port's socket in one of its processes;
    docker: the container publishing the port), so a healthy answer is never taken on trust.
    """
    cpu = cpu or CpuSampler()
    started = time.monotonic()
    deadline = registry.health.deadline
    query = BackendQuery(registry, mode)
    results = probe_all(registry.services.values(), deadline)
    view = query.wait(max(deadline - (time.monotonic() - started), 1.0))
    checks = make_checks(registry, mode, results, view)
    paths = [*registry.health.disk_paths, registry.log_dir, *view.disk_paths]
    resources = measure(registry.health.thresholds, paths, cpu)
    findings = advice.findings(registry, mode, checks, resources, view.problem)
    return Report(time.time(), mode, checks, resources, tuple(findings),
                  round((time.monotonic() - started) * 1000, 1))
