"""Prometheus text exposition: the node_exporter textfile collector's format (prefixed metric names, no
timestamps), and what system-health.py --serve answers on /metrics.

Write it with --output into the collector's directory (*.prom); the file is replaced atomically. Ratios are
0-1 and times in seconds, as Prometheus names them; the percent gauges of earlier versions are still there,
marked DEPRECATED in their help, so dashboards built on them keep working (_Percent).
"""

from __future__ import annotations

from datetime import datetime, timezone

from .. import __version__

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


class _Percent:
    """A 0-1 ratio under its conventional name (NAME_ratio), and the same as a percentage under the name of
    earlier versions (NAME_percent), deprecated."""

    def __init__(self, name: str, help_text: str):
        self.ratio = _Family(f"{name}_ratio", f"{help_text}, 0-1")
        self.percent = _Family(f"{name}_percent", f"DEPRECATED: use {self.ratio.name} (0-1). {help_text}, percent")

    def add(self, percent: float, **labels) -> None:
        self.ratio.add(round(percent / 100, 6), **labels)
        self.percent.add(percent, **labels)


def render(document: dict, gave_up: tuple[str, ...] | None = None) -> str:
    """The document's metrics; with `gave_up` (a monitor that heals: the services past heal.max_per_hour), a 0/1
    gauge per service for an alert rule (tmt-ops alerts)."""
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
    cpu = _Percent("cpu_busy", "CPU busy over the round, the checker's own use left out")
    cpu.add(m["cpu_percent"])
    mem = _Percent("memory_used", "memory in use (from available memory)")
    mem.add(m["memory_percent"])
    avail = _Family("memory_available_bytes", "memory available")
    avail.add(m["memory_available_bytes"])
    disk = _Percent("disk_used", "disk use of a path that matters")
    for d in m["disks"]:
        disk.add(d["percent"], path=d["path"])
    load = _Family("load_per_cpu", "1-minute load average per CPU")
    load.add(m["load_per_cpu"])
    duration_all = _Family("round_duration_seconds", "wall time of the whole health round")
    duration_all.add(document["duration_ms"] / 1000)
    last = _Family("last_round_timestamp_seconds", "when the round was made, seconds since the epoch")
    last.add(datetime.strptime(document["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp())
    build = _Family("build_info", "the tmt-ops version that made the round; always 1")
    build.add(1, version=__version__)
    heal = _Family("heal_gave_up", "1 when --heal stopped trying to restart the service (heal.max_per_hour) until it "
                                   "runs again, else 0")
    for c in document["services"].values() if gave_up is not None else ():
        heal.add(int(c["name"] in gave_up), service=c["name"], critical=str(c["critical"]).lower())
    families = [up, severity, duration, port, foreign, overall, issues, cpu.ratio, cpu.percent, mem.ratio, mem.percent,
                avail, disk.ratio, disk.percent, load, duration_all, last, build, heal]
    return "\n".join(line for f in families for line in f.lines()) + "\n"
