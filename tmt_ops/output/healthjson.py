"""application/health+json: the IETF draft "Health Check Response Format for HTTP APIs"
(draft-inadarei-api-health-check), from the health document.

The overall status and each check's are pass / warn / fail (healthy / warning / critical). Checks are keyed
`component:measurement`: each service's and infrastructure component's `NAME:responseTime` (ms), the host's
`cpu:utilization`, `memory:utilization`, `disk:utilization` (one entry per path, percent) and
`cpu:loadPerCpu`. `output` carries what is wrong, only where something is.
"""

from __future__ import annotations

import json

from .. import __version__

MEDIA_TYPE = "application/health+json"
STATUS = {"healthy": "pass", "warning": "warn", "critical": "fail"}
DATASTORES = ("postgres", "redis")  # probe kinds whose component is a datastore in the draft's words


def _check(c: dict, time: str) -> dict:
    entry = {"componentId": c["name"],
             "componentType": "datastore" if c["probe"] in DATASTORES else "component",
             "observedUnit": "ms", "status": STATUS[c["severity"]], "time": time,
             "affectedEndpoints": [c["url"]]}
    if c["response_time_ms"] is not None:
        entry["observedValue"] = c["response_time_ms"]
    if c["severity"] != "healthy":
        entry["output"] = c["error"] or c["status"]
    return entry


def _system(component: str, value, unit: str, severity: str, time: str) -> dict:
    return {"componentId": component, "componentType": "system", "observedValue": value, "observedUnit": unit,
            "status": STATUS[severity], "time": time}


def document(report: dict) -> dict:
    """The draft's document for one health report."""
    time, m = report["timestamp"], report["system_metrics"]
    checks = {f"{c['name']}:responseTime": [_check(c, time)]
              for group in ("services", "infrastructure") for c in report[group].values()}
    checks["cpu:utilization"] = [_system("cpu", m["cpu_percent"], "percent", m["severity"]["cpu_percent"], time)]
    checks["cpu:loadPerCpu"] = [_system("cpu", m["load_per_cpu"], "load", m["severity"]["load_per_cpu"], time)]
    checks["memory:utilization"] = [_system("memory", m["memory_percent"], "percent",
                                            m["severity"]["memory_percent"], time)]
    checks["disk:utilization"] = [_system(d["path"], d["percent"], "percent", d["severity"], time) for d in m["disks"]]
    out = {"status": STATUS[report["overall_status"]], "version": str(report["schema_version"]),
           "releaseId": __version__, "serviceId": "tmt-ops-system-health",
           "description": f"TMT trading system health ({report['deployment_mode']} mode)", "checks": checks}
    if report["issues"]:
        out["notes"] = report["issues"]
    if report["overall_status"] != "healthy":  # the worst findings, those that decided the status
        out["output"] = "; ".join(f"{f['subject']}: {f['message']}" for f in report["findings"]
                                  if f["severity"] == report["overall_status"]) or report["overall_status"]
    return out


def render(report: dict) -> str:
    return json.dumps(document(report), indent=2) + "\n"
