"""Findings: what is wrong, how bad, and the next command to run for it, derived from one round's facts.

Commands name the one service concerned and, where the toolkit has a command for it, use it (with
--config when the registry is not the default one), so they can be pasted as they are.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..registry import Registry, Service, default_config_path
from ..states import Overall
from .severity import ORDER

if TYPE_CHECKING:  # report imports this module
    from .report import Check
    from .resources import Resources


@dataclass(frozen=True)
class Step:
    why: str
    command: str


@dataclass(frozen=True)
class Finding:
    severity: Overall
    subject: str  # the service's name, or the resource ("disk /var/log", "memory")
    message: str
    steps: tuple[Step, ...] = ()


def _shown(path: Path) -> str:
    """A path as short as it can be said from the current directory."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return rel if not rel.startswith("..") else str(path)


class _Commands:
    def __init__(self, registry: Registry):
        self.registry = registry
        default = default_config_path()
        same = default.exists() and default.resolve() == registry.path.resolve()
        self.config = "" if same else f" --config {shlex.quote(_shown(registry.path))}"

    def script(self, name: str, args: str) -> str:
        return f"python {name}{self.config} {args}"

    def compose(self, args: str) -> str:
        r = self.registry
        return f"docker compose -p {shlex.quote(r.compose_project)} -f {shlex.quote(_shown(r.compose_file))} {args}"

    def log_file(self, service: Service) -> str:
        return _shown(self.registry.log_file(service))


def _service_steps(cmd: _Commands, mode: str, check: "Check") -> tuple[Step, ...]:
    s = check.service
    if mode == "docker":
        container_gone = check.backend is None or check.backend.state.value in ("stopped", "failed")
        return (Step("read its container log", cmd.script("docker-restart.py", f"logs {s.compose_service} --tail 100")),
                Step("start its container" if container_gone else "restart its container",
                     cmd.compose(f"{'up -d' if container_gone else 'restart'} {s.compose_service}")))
    if s.managed:
        return (Step("restart it (and its dependents)", cmd.script("restart-trading-system.py", f"--only {s.name}")),
                Step("read its log", f"tail -n 50 {shlex.quote(cmd.log_file(s))}"))
    return (Step("see what listens on its port (tmt-ops does not start infrastructure natively)",
                 f"ss -ltnp 'sport = :{s.port}'"),)


def _check_findings(cmd: _Commands, mode: str, check: "Check") -> list[Finding]:
    s, out = check.service, []
    if check.severity is not Overall.HEALTHY:
        what = check.error or check.status.value
        message = f"{s.display_name} is {check.status.value} at {check.result.url}: {what}"
        out.append(Finding(check.severity, s.name, message, _service_steps(cmd, mode, check)))
    for holder in check.holders:
        if holder.ours is False:
            out.append(Finding(Overall.WARNING, s.name,
                               f"port {s.port} is held by pid {holder.pid} ({holder.name}, user {holder.user}): "
                               f"{holder.cmdline}, not by {s.display_name}",
                               (Step("look at that process, then stop it or give "
                                     f"{s.name} another port in {_shown(cmd.registry.path)}",
                                     f"ps -o pid,user,etime,args -p {holder.pid}"),)))
    return out


def _resource_findings(resources: "Resources", registry: Registry) -> list[Finding]:
    t = registry.health.thresholds
    sev = resources.severities
    out = []
    if sev["cpu_percent"] is not Overall.HEALTHY:
        out.append(Finding(sev["cpu_percent"], "cpu", f"CPU busy {resources.cpu_percent:g}% "
                           f"(warning {t['cpu_percent'].warning:g}%, critical {t['cpu_percent'].critical:g}%)",
                           (Step("see the busiest processes", "ps -eo pid,pcpu,args --sort=-pcpu | head -n 10"),)))
    if sev["memory_percent"] is not Overall.HEALTHY:
        out.append(Finding(sev["memory_percent"], "memory",
                           f"memory {resources.memory_percent:g}% used, {resources.memory_available_bytes >> 20} MiB "
                           f"available (warning {t['memory_percent'].warning:g}%, "
                           f"critical {t['memory_percent'].critical:g}%)",
                           (Step("see the largest processes", "ps -eo pid,rss,args --sort=-rss | head -n 10"),)))
    for disk in resources.disks:
        if disk.severity is not Overall.HEALTHY:
            out.append(Finding(disk.severity, f"disk {disk.path}",
                               f"{disk.percent:g}% used, {disk.free_bytes >> 20} MiB free (warning "
                               f"{t['disk_percent'].warning:g}%, critical {t['disk_percent'].critical:g}%)",
                               (Step("find what fills it", f"du -xh --max-depth=1 {shlex.quote(disk.measured)} "
                                                           "| sort -h | tail -n 10"),)))
    if sev["load_per_cpu"] is not Overall.HEALTHY:
        out.append(Finding(sev["load_per_cpu"], "load", f"load average {resources.load_average[0]:g} on "
                           f"{resources.cpu_count} CPUs ({resources.load_per_cpu:g} per CPU; warning "
                           f"{t['load_per_cpu'].warning:g}, critical {t['load_per_cpu'].critical:g})",
                           (Step("see what runs", "ps -eo pid,stat,pcpu,args --sort=-pcpu | head -n 10"),)))
    return out


def findings(registry: Registry, mode: str, checks: Iterable["Check"], resources: "Resources",
             backend_problem: str | None) -> list[Finding]:
    cmd = _Commands(registry)
    out: list[Finding] = []
    if backend_problem:
        steps = (Step("check the engine", "docker info"),) if mode == "docker" else ()
        out.append(Finding(Overall.WARNING, f"{mode} backend", backend_problem, steps))
    for check in checks:
        out.extend(_check_findings(cmd, mode, check))
    out.extend(_resource_findings(resources, registry))
    return sorted(out, key=lambda f: -ORDER.index(f.severity))  # the worst first, else in registry order
