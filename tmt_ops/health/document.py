"""The report as data: the JSON document every output format is rendered from.

Its keys are an API (tmt_ops/health/schema.json): the existing script's keys are kept as they were, and
fields are only ever added; schema_version counts incompatible changes (none so far).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..registry import Service
from ..states import Health
from ..timefmt import iso
from .checks import Check, Report
from .severity import of_health

if TYPE_CHECKING:
    from .monitor import StateChange

SCHEMA_VERSION = 1


def _backend(check: Check) -> dict[str, Any] | None:
    b = check.backend
    if b is None:
        return None
    return {"state": b.state.value, "pids": list(b.pids), "container": b.container, "engine_health": b.engine_health,
            "uptime_seconds": b.uptime_seconds, "restart_count": b.restart_count, "exit_code": b.exit_code,
            "detail": b.detail or None}


def check_document(check: Check) -> dict[str, Any]:
    s, r = check.service, check.result
    return {
        # the existing script's keys
        "status": check.status.value, "response_time_ms": r.response_time_ms, "details": r.details,
        "error": check.error, "url": r.url, "critical": s.critical,
        # added
        "name": s.name, "display_name": s.display_name, "group": s.group, "severity": check.severity.value,
        "probe": s.probe.kind, "address": s.address, "port": s.port, "port_open": r.port_open,
        "http_status": r.http_status, "probe_status": r.status.value, "backend": _backend(check),
        "port_holders": [{"pid": h.pid, "name": h.name, "user": h.user, "cmdline": h.cmdline, "ours": h.ours}
                         for h in check.holders],
    }


def to_document(report: Report) -> dict[str, Any]:
    res = report.resources
    findings = [{"severity": f.severity.value, "subject": f.subject, "message": f.message,
                 "steps": [{"why": s.why, "command": s.command} for s in f.steps],
                 "subjects": list(f.subjects or (f.subject,))} for f in report.findings]
    return {
        "schema_version": SCHEMA_VERSION,
        "timestamp": iso(report.timestamp),
        "deployment_mode": report.mode,
        "overall_status": report.overall.value,
        "exit_code": report.overall.exit_code,
        "duration_ms": report.duration_ms,
        "services": {c.service.name: check_document(c) for c in report.checks if c.service.group != "infrastructure"},
        "infrastructure": {c.service.name: check_document(c) for c in report.checks
                           if c.service.group == "infrastructure"},
        "system_metrics": {
            "cpu_percent": res.cpu_percent, "cpu_sample_seconds": res.cpu_sample_seconds, "cpu_count": res.cpu_count,
            "memory_percent": res.memory_percent, "memory_available_bytes": res.memory_available_bytes,
            "memory_total_bytes": res.memory_total_bytes, "disk_percent": res.disk_percent,
            "disks": [{"path": d.path, "measured_path": d.measured, "percent": d.percent, "free_bytes": d.free_bytes,
                       "total_bytes": d.total_bytes, "severity": d.severity.value, "other_paths": list(d.other_paths)}
                      for d in res.disks],
            "load_average": list(res.load_average), "load_per_cpu": res.load_per_cpu,
            "severity": {name: sev.value for name, sev in res.severities.items()},
            "thresholds": {name: {"warning": t.warning, "critical": t.critical} for name, t in res.thresholds.items()},
        },
        "issues": [f"{f['subject']}: {f['message']}" for f in findings],
        "recommendations": [f"{f['subject']}: {s['why']}: {s['command']}" for f in findings for s in f["steps"]],
        "critical_issues_count": sum(f["severity"] == "critical" for f in findings),
        "findings": findings,
    }


def change_document(change: "StateChange", services: Mapping[str, Service]) -> dict[str, Any]:
    """A monitor state change; `severity` is how bad the new state is (for colour and alerting)."""
    service = services.get(change.subject)
    if service is not None:
        severity = of_health(Health(change.new), service.critical).value
    else:
        severity = change.new  # system:* subjects change between severities already
    return {"subject": change.subject, "old": change.old, "new": change.new, "time": iso(change.at),
            "held_rounds": change.rounds, "severity": severity}
