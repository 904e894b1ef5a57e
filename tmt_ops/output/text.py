"""Human output: a compact table of every check, host resources, then issues and recommendations.

Colour and redaction are the Printer's business (colour only on a terminal without NO_COLOR).
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlsplit

from ..console import QUIET, Printer
from ..redact import Redactor

STYLE = {"healthy": "ok", "warning": "warn", "critical": "error"}


def _probed_at(check: dict) -> str:
    """Where the probe asked: the registry's address, or the service's own where its backend says it is
    elsewhere (a swarm task's container)."""
    return urlsplit(check["url"]).netloc if check.get("url") else check["address"]


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _backend(check: dict) -> str:
    b = check.get("backend")
    if not b:
        return "-"
    if b.get("container"):
        health = f"/{b['engine_health']}" if b.get("engine_health") else ""
        return f"{b['state']}{health}"
    pids = ",".join(map(str, b.get("pids") or []))
    return f"{b['state']}{' pid ' + pids if pids else ''}"


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def summary(document: dict) -> str:
    """One line: overall, counts, resources (the monitor prints this per round)."""
    checks = [*document["services"].values(), *document["infrastructure"].values()]
    counts = {sev: sum(c["severity"] == sev for c in checks) for sev in ("healthy", "warning", "critical")}
    m = document["system_metrics"]
    line = (f"{document['timestamp']} {document['overall_status'].upper()}: {counts['healthy']} healthy, "
            f"{counts['warning']} warning, {counts['critical']} critical; cpu {m['cpu_percent']:g}% "
            f"mem {m['memory_percent']:g}% disk {m['disk_percent']:g}% load/cpu {m['load_per_cpu']:g} "
            f"({document['duration_ms'] / 1000:.2f} s)")
    bad = [f"{c['name']} {c['status']}" + (f" ({c['error']})" if c["error"] else "")
           for c in checks if c["severity"] == "critical"]
    named = {c["name"] for c in checks if c["severity"] == "critical"}
    bad += [f"{f['subject']}: {f['message']}" for f in document["findings"]  # what else made it critical
            if f["severity"] == "critical" and not set(f.get("subjects") or [f["subject"]]) <= named]
    return line + (f"; {'; '.join(bad)}" if bad else "")


def _findings(document: dict, printer: Printer) -> None:
    printer.line(f"Issues ({document['critical_issues_count']} critical):", "bold", shown=QUIET)
    for finding in document["findings"]:
        printer.line(f"  [{finding['severity']}] {finding['subject']}: {finding['message']}",
                     STYLE[finding["severity"]], shown=QUIET)
    printer.line(shown=QUIET)
    printer.line("Recommendations:", "bold", shown=QUIET)
    for finding in document["findings"]:
        for step in finding["steps"]:
            printer.line(f"  {finding['subject']}: {step['why']}:", shown=QUIET)
            printer.line(f"      {step['command']}", "info", shown=QUIET)


def show(document: dict, printer: Printer) -> None:
    """The report; with --quiet only its findings (nothing at all when healthy); --verbose adds each check's
    probe details."""
    if printer.verbosity == QUIET:
        if document["findings"]:
            _findings(document, printer)
        return
    overall = document["overall_status"]
    printer.line(f"TMT system health: {overall.upper()} ({document['deployment_mode']} mode, "
                 f"{document['timestamp']}, {document['duration_ms'] / 1000:.2f} s)", STYLE[overall])
    printer.line()
    rows, styles = [], []
    for group in ("services", "infrastructure"):
        for check in document[group].values():
            note = check["error"] or ""
            unnamed = [h for h in check["port_holders"] if f"pid {h['pid']} " not in note]
            if unnamed:
                note += ("; " if note else "") + "port held by " + ", ".join(
                    f"pid {h['pid']} ({h['name']}{'' if h['ours'] is None else ', ours' if h['ours'] else ', foreign'})"
                    for h in unnamed)
            rows.append([check["name"], "core" if group == "services" else "infra",
                         "yes" if check["critical"] else "no", check["status"], _ms(check["response_time_ms"]),
                         _probed_at(check), _backend(check), note])
            styles.append(STYLE[check["severity"]])
    printer.table(["SERVICE", "GROUP", "CRITICAL", "STATUS", "TIME", "ADDRESS", "BACKEND", "NOTE"], rows, styles)
    printer.line()
    m = document["system_metrics"]
    sev = m["severity"]
    printer.line(f"cpu       {m['cpu_percent']:g}% busy over {m['cpu_sample_seconds']:g} s ({m['cpu_count']} CPUs)",
                 STYLE[sev["cpu_percent"]])
    printer.line(f"memory    {m['memory_percent']:g}% used, {_gib(m['memory_available_bytes'])} available "
                 f"of {_gib(m['memory_total_bytes'])}", STYLE[sev["memory_percent"]])
    for disk in m["disks"]:
        printer.line(f"disk      {disk['percent']:g}% used, {_gib(disk['free_bytes'])} free: {disk['path']}",
                     STYLE[disk["severity"]])
    load = m["load_average"]
    printer.line(f"load      {load[0]:g} {load[1]:g} {load[2]:g} ({m['load_per_cpu']:g} per CPU)",
                 STYLE[sev["load_per_cpu"]])
    for group in ("services", "infrastructure"):
        for check in document[group].values():
            printer.detail(f"{check['name']}: {check['probe']} {check['url']} answered {json.dumps(check['details'])}")
    if document["findings"]:
        printer.line()
        _findings(document, printer)


def render(document: dict) -> str:
    buffer = io.StringIO()
    show(document, Printer(buffer, Redactor(), colour=False))
    return buffer.getvalue()
