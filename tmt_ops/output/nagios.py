"""Nagios / Monitoring Plugins: one line, `SYSTEM-HEALTH STATE - summary | perfdata`.

Perfdata is `'label'=value[UOM];[warn];[crit];[min];[max]` with dot decimals whatever the locale (Python's
own number formatting never uses the locale); a probe that gave no time is `U` (undetermined).
"""

from __future__ import annotations

import re

WORDS = {"healthy": "OK", "warning": "WARNING", "critical": "CRITICAL"}


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _label(text: str) -> str:
    return "'" + re.sub(r"['=]", "_", text) + "'"


def _perf(label: str, value, uom: str = "", warn=None, crit=None, lo=None, hi=None) -> str:
    fields = [("U" if value is None else _num(value)) + ("" if value is None else uom)] + \
             ["" if v is None else _num(v) for v in (warn, crit, lo, hi)]
    return f"{_label(label)}={';'.join(fields).rstrip(';')}"


def _problem(check: dict) -> str:
    """'orchestrator unhealthy', or for an answer from someone else 'orchestrator not running (port N
    answered by pid 4242 python3)'."""
    others = [h for h in check["port_holders"] if h["ours"] is False]
    if others:
        who = ", ".join(f"pid {h['pid']} {h['name']}" for h in others)
        return f"{check['name']} not running (port {check['port']} answered by {who})"
    return f"{check['name']} {check['status']}"


def render(document: dict) -> str:
    checks = [*document["services"].values(), *document["infrastructure"].values()]
    counts = {sev: sum(c["severity"] == sev for c in checks) for sev in ("healthy", "warning", "critical")}
    bad = [_problem(c) for c in checks if c["severity"] != "healthy"]
    text = f"SYSTEM-HEALTH {WORDS[document['overall_status']]} - {counts['healthy']} ok, " \
           f"{counts['warning']} warn, {counts['critical']} fail"
    if bad:
        text += ": " + ", ".join(bad)
    perf = []
    for c in checks:
        seconds = None if c["response_time_ms"] is None else c["response_time_ms"] / 1000
        perf.append(_perf(f"{c['name']}_time", seconds, "s", lo=0.0))
    m, t = document["system_metrics"], document["system_metrics"]["thresholds"]

    def limits(name: str) -> dict:
        return {"warn": t[name]["warning"], "crit": t[name]["critical"]} if name in t else {}

    perf.append(_perf("cpu", m["cpu_percent"], "%", **limits("cpu_percent"), lo=0, hi=100))
    perf.append(_perf("memory", m["memory_percent"], "%", **limits("memory_percent"), lo=0, hi=100))
    for disk in m["disks"]:
        perf.append(_perf(f"disk_{disk['path']}", disk["percent"], "%", **limits("disk_percent"), lo=0, hi=100))
    perf.append(_perf("load_per_cpu", m["load_per_cpu"], "", **limits("load_per_cpu"), lo=0))
    return f"{text.replace('|', '/')} | {' '.join(perf)}\n"
