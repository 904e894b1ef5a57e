"""Prometheus node_exporter textfile collector format: prefixed metric names, no timestamps.

Write it with --output into the collector's directory (*.prom); the file is replaced atomically.
"""

from __future__ import annotations

PREFIX = "tmt_health_"
SEVERITY = {"healthy": 0, "warning": 1, "critical": 2}


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


class _Family:
    def __init__(self, name: str, help_text: str):
        self.name, self.help, self.samples = PREFIX + name, help_text, []

    def add(self, value, **labels) -> None:
        self.samples.append(f"{self.name}{_labels(**labels)} {_num(value)}")

    def lines(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", *self.samples] if self.samples else []


def render(document: dict) -> str:
    up = _Family("check_up", "1 when the check is healthy, else 0")
    severity = _Family("check_severity", "0 healthy, 1 warning, 2 critical")
    duration = _Family("check_duration_seconds", "time the probe took")
    port = _Family("check_port_open", "1 when the port accepted a connection")
    foreign = _Family("check_port_foreign_holder", "1 per process that holds the service's port and is not "
                                                   "the service (its answer does not count)")
    for group in ("services", "infrastructure"):
        for c in document[group].values():
            labels = {"service": c["name"], "group": "core" if group == "services" else "infrastructure",
                      "critical": str(c["critical"]).lower()}
            up.add(int(c["status"] == "healthy"), **labels)
            severity.add(SEVERITY[c["severity"]], **labels)
            if c["response_time_ms"] is not None:
                duration.add(c["response_time_ms"] / 1000, **labels)
            if c["port_open"] is not None:
                port.add(int(c["port_open"]), **labels)
            for h in c["port_holders"]:
                if h["ours"] is False:
                    foreign.add(1, **labels, pid=str(h["pid"]), process=h["name"])
    m = document["system_metrics"]
    overall = _Family("overall_severity", "worst of all checks: 0 healthy, 1 warning, 2 critical")
    overall.add(SEVERITY[document["overall_status"]], mode=document["deployment_mode"])
    issues = _Family("critical_issues", "number of critical issues")
    issues.add(document["critical_issues_count"])
    cpu = _Family("cpu_busy_percent", "CPU busy over the round, the checker's own use left out")
    cpu.add(m["cpu_percent"])
    mem = _Family("memory_used_percent", "memory in use (from available memory)")
    mem.add(m["memory_percent"])
    avail = _Family("memory_available_bytes", "memory available")
    avail.add(m["memory_available_bytes"])
    disk = _Family("disk_used_percent", "disk use of a path that matters")
    for d in m["disks"]:
        disk.add(d["percent"], path=d["path"])
    load = _Family("load_per_cpu", "1-minute load average per CPU")
    load.add(m["load_per_cpu"])
    duration_all = _Family("round_duration_seconds", "wall time of the whole health round")
    duration_all.add(document["duration_ms"] / 1000)
    families = [up, severity, duration, port, foreign, overall, issues, cpu, mem, avail, disk, load, duration_all]
    return "\n".join(line for f in families for line in f.lines()) + "\n"
