"""Findings: what is wrong, how bad, and the next command to run for it, derived from one round's facts.

Commands name the one service concerned and, where the toolkit has a command for it, use it (with
--config when the registry is not the default one), so they can be pasted as they are.

A cause is said once: findings with the same cause, severity and steps are one finding naming each subject
(said_once), so a fresh machine without its infrastructure shows one finding with one step, not a copy per
service. Only the findings and their recommendations are joined; the report keeps every check as it was.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..commands import current
from ..errors import ConfigError
from ..probes import REFUSED
from ..registry import Registry, default_config_path
from ..states import Health, Overall
from .severity import ORDER

from .checks import Check, Finding, Step

if TYPE_CHECKING:
    from ..backends import Deployment
    from .resources import Resources


def shared(severity: Overall, subject: str, who: str, cause: str, steps: tuple[Step, ...]) -> Finding:
    return Finding(severity, subject, f"{who}: {cause}", steps, who, cause)


def said_once(findings: Iterable[Finding]) -> list[Finding]:
    """Findings with the same cause, severity and steps as one finding that names each of their subjects, where
    the first of them was; a finding without a cause, or alone with its cause, as it is."""
    groups: dict[tuple, list[Finding]] = {}
    order: list[list[Finding]] = []
    for finding in findings:
        key = (finding.severity, finding.cause, finding.steps)
        if finding.cause and key in groups:
            groups[key].append(finding)
            continue
        order.append([finding])
        if finding.cause:
            groups[key] = order[-1]
    joined = []
    for group in order:
        if len(group) == 1:
            joined.append(group[0])
            continue
        first, subjects = group[0], tuple(f.subject for f in group)
        who = ", ".join(f.who for f in group)
        joined.append(Finding(first.severity, ", ".join(subjects), f"{who}: {first.cause}", first.steps, who,
                              first.cause, subjects))
    return joined


def _shown(path: Path) -> str:
    """A path as short as it can be said from the current directory."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return rel if not rel.startswith("..") else str(path)


class Commands:
    """Commands a person can paste as they are, where this run was invoked (commands.py: a checkout's script, an
    installed command, python -m tmt_ops), with --config when the registry is not the default one and the
    deployment's --mode (what `auto` would pick is not known when it is pasted); paths as short as they can be said
    from here."""

    def __init__(self, registry: Registry, mode: str):
        self.registry = registry
        try:
            default = default_config_path()
        except ConfigError:  # no default registry: every command needs --config
            default = None
        same = default is not None and default.exists() and default.resolve() == registry.path.resolve()
        self.options = ([] if same else ["--config", _shown(registry.path)]) + ["--mode", mode]

    def command(self, name: str, *args: str) -> str:
        """Command `name` of the toolkit (commands.COMMANDS) with these arguments, as it runs here."""
        return current().command(name, *self.options, *args)

    def path(self, path: Path) -> str:
        return shlex.quote(_shown(path))


def _refused(check: "Check") -> bool:
    """Nothing took the connection: the probe's own word for it, with its port never open."""
    r = check.result
    return check.status is Health.UNHEALTHY and r.port_open is False and (r.error or "").startswith(REFUSED)


def service_steps(cmd: Commands, deployment: "Deployment", check: "Check") -> tuple[Step, ...]:
    """What to run next for a service that is not healthy: the same two commands in every mode (its output, then a
    restart of it and, in order, of what depends on it: they may have lost it); outside the deployment, what
    listens where it should."""
    s = check.service
    if deployment.of(s) is not None:
        return (Step("read its output", cmd.command("logs", s.name, "--tail", "100")),
                Step("restart it (and its dependents)", cmd.command("restart", "--only", s.name)))
    if _refused(check):  # nothing listens on its port: the whole host's listeners may show where it went
        return (Step(f"see what listens on this host, on any port or address (tmt-ops does not start what is "
                     f"outside its {deployment.mode} deployment)", "ss -ltnp"),)
    return (Step(f"see what listens on its port (tmt-ops does not start it in {deployment.mode} mode)",
                 f"ss -ltnp 'sport = :{s.port}'"),)


def _check_findings(cmd: Commands, deployment: "Deployment", check: "Check") -> list[Finding]:
    s, out = check.service, []
    if check.severity is not Overall.HEALTHY and deployment.of(s) is None and _refused(check):
        # the same cause for every service outside the deployment that is not there: said once (said_once)
        out.append(shared(check.severity, s.name, f"{s.display_name} ({s.address})",
                          f"{REFUSED}: not running on this host, or not where the registry says",
                          service_steps(cmd, deployment, check)))
    elif check.severity is not Overall.HEALTHY:
        what = check.error or check.status.value
        message = f"{s.display_name} is {check.status.value} at {check.result.url}: {what}"
        out.append(Finding(check.severity, s.name, message, service_steps(cmd, deployment, check)))
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


def findings(deployment: "Deployment", checks: Iterable["Check"], resources: "Resources",
             backend_problems: dict[str, str], state_problem: str | None = None) -> list[Finding]:
    """state_problem: why the state directory cannot be read (what it records cannot be told then)."""
    cmd = Commands(deployment.registry, deployment.mode)
    out = [Finding(Overall.WARNING, f"{name} backend", problem) for name, problem in backend_problems.items()]
    if state_problem:
        out.append(Finding(Overall.WARNING, "state directory",
                           f"{state_problem}: whether a service runs on after its pre-stop call (and may not be "
                           "trading) cannot be told, and a monitor with --heal heals nothing",
                           (Step("see what is there", f"ls -ld {cmd.path(deployment.registry.state_dir)}"),)))
    for check in checks:
        out.extend(_check_findings(cmd, deployment, check))
    out.extend(_resource_findings(resources, deployment.registry))
    return worst_first(said_once(out))


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """The worst first, else in the order given (registry order)."""
    return sorted(findings, key=lambda f: -ORDER.index(f.severity))
