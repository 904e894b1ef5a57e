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
from .merge import merge_docker, merge_native
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


def _owner_matters(mode: str, status: Health, result: ProbeResult, backend: ServiceStatus | None) -> bool:
    """Scanning sockets is costly: only when something holds the port and it may not be the service."""
    if not result.port_open:
        return False
    if status in (Health.UNHEALTHY, Health.TIMEOUT, Health.ERROR):
        return True  # something listens but does not answer as the service would: is it the service?
    if mode == "docker":
        return False
    return backend is not None and backend.state in (ServiceState.STOPPED, ServiceState.FAILED)


def _classify(service: Service, mode: str, holders) -> tuple[PortHolder, ...]:
    out = []
    for h in holders:
        ours = None
        if mode == "native" and service.managed:
            from ..native.identity import service_root
            ours = service_root(service, h.pid) is not None
        out.append(PortHolder(h.pid, h.name, h.user, h.cmdline, ours))
    return tuple(out)


def make_checks(registry: Registry, mode: str, results: dict[str, ProbeResult], view: BackendView) -> tuple[Check, ...]:
    merged = {}
    for name, result in results.items():
        backend = (view.statuses or {}).get(name)
        if mode == "docker" and view.statuses is not None:
            merged[name] = (*merge_docker(result, backend, registry.compose_project), backend)
        else:
            merged[name] = (*merge_native(result, backend), backend)
    wanted = [registry.services[n].port for n, (status, _, backend) in merged.items()
              if _owner_matters(mode, status, results[n], backend)]
    held = {}
    if wanted:
        from ..ports import listeners
        held = listeners(wanted)  # one socket scan for every port whose owner matters
    checks = []
    for name, (status, error, backend) in merged.items():
        service = registry.services[name]
        checks.append(Check(service, results[name], status, error, backend,
                            _classify(service, mode, held.get(service.port, ()))))
    return tuple(checks)


def _trouble(registry: Registry, results: dict[str, ProbeResult]) -> bool:
    return any(not r.status.ok for name, r in results.items() if registry.services[name].managed)


def build(registry: Registry, mode: str, cpu: CpuSampler | None = None, *, backend_on_trouble: bool = False) -> Report:
    """One round. `cpu` marks where the CPU window starts (the monitor keeps one sampler across rounds).

    The backend is asked while the probes run; with `backend_on_trouble` (the monitor, native mode) only
    after them and only when a managed service is not healthy: a process scan every round would cost more
    CPU than all the probes, and explains nothing while everything answers.
    """
    cpu = cpu or CpuSampler()
    started = time.monotonic()
    deadline = registry.health.deadline
    lazy = backend_on_trouble and mode == "native"
    query = None if lazy else BackendQuery(registry, mode)
    results = probe_all(registry.services.values(), deadline)
    if query is None and _trouble(registry, results):
        query = BackendQuery(registry, mode)
    view = query.wait(max(deadline - (time.monotonic() - started), 1.0)) if query else BackendView()
    checks = make_checks(registry, mode, results, view)
    paths = [*registry.health.disk_paths, registry.log_dir, *view.disk_paths]
    resources = measure(registry.health.thresholds, paths, cpu)
    findings = advice.findings(registry, mode, checks, resources, view.problem)
    return Report(time.time(), mode, checks, resources, tuple(findings),
                  round((time.monotonic() - started) * 1000, 1))
