"""Prometheus alert rules for what `system-health.py --serve` exposes at /metrics (`tmt-ops alerts`), so that
Alertmanager, not a person watching a screen, pages the desk.

Made from the registry, so every number has one home: the disk and memory thresholds are health.thresholds
(the levels system-health itself judges by), and a monitor is stale past the age /readyz calls stale (two
intervals and a round's deadline). The windows a state must hold before it fires are arguments, with the
defaults below.

    TmtCriticalServiceDown   a critical service (core or infrastructure) not healthy for DOWN_FOR   critical
    TmtServiceDown           a non-critical core service not healthy for DOWN_FOR                   warning
    TmtHealthMonitorDown     Prometheus cannot scrape the monitor for DOWN_FOR                      critical
    TmtHealthMonitorStale    the monitor answers, but its last round is older than it may be       critical
    TmtHealGaveUp            --heal stopped restarting a service (heal.max_per_hour)                critical
    TmtDisk/MemoryWarning    health.thresholds' warning level for RESOURCES_FOR                     warning
    TmtDisk/MemoryCritical   health.thresholds' critical level for RESOURCES_FOR                    critical
"""

from __future__ import annotations

import yaml

from .health.snapshot import stale_after

DOWN_FOR = 60.0  # seconds a service (or the monitor's scrape) must be down before its alert fires
RESOURCES_FOR = 300.0  # seconds a disk or memory level must hold (a burst is not an incident)
JOB = "tmt-health"  # the Prometheus job that scrapes system-health.py --serve
GROUP = "tmt-ops"


def duration(seconds: float) -> str:
    """Prometheus's duration: 60 -> '60s', 0.5 -> '500ms'."""
    return f"{seconds:g}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def _rule(name: str, expr: str, severity: str, summary: str, description: str, hold: float | None = None) -> dict:
    rule = {"alert": name, "expr": expr}
    if hold:
        rule["for"] = duration(hold)
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def rules(registry, *, down_for: float = DOWN_FOR, resources_for: float = RESOURCES_FOR, job: str = JOB,
          interval: float | None = None) -> dict:
    """The rule file as data: one group of rules. `interval`: the monitor's --interval (default the registry's)."""
    stale = stale_after(interval or registry.health.monitor_interval, registry.health.deadline)
    where = "{{ $labels.instance }}"
    found = [
        _rule("TmtCriticalServiceDown", 'tmt_health_check_severity{critical="true"} == 2', "critical",
              f"{{{{ $labels.service }}}} is down on {where}",
              f"The critical service {{{{ $labels.service }}}} ({{{{ $labels.group }}}}) has not been healthy for "
              f"{duration(down_for)}: `system-health.py` says why, `restart-trading-system.py --only "
              "{{ $labels.service }}` restarts it with its dependents.", down_for),
        _rule("TmtServiceDown", 'tmt_health_check_up{group="core",critical="false"} == 0', "warning",
              f"{{{{ $labels.service }}}} is not healthy on {where}",
              f"{{{{ $labels.service }}}} (not critical) has not been healthy for {duration(down_for)}.", down_for),
        _rule("TmtHealthMonitorDown", f'up{{job="{job}"}} == 0', "critical",
              f"the TMT health monitor on {where} does not answer",
              f"Prometheus has not scraped system-health.py --serve for {duration(down_for)}: nothing watches the "
              "trading system (systemctl status tmt-ops-monitor).", down_for),
        _rule("TmtHealthMonitorStale", f"time() - tmt_health_last_round_timestamp_seconds > {stale:g}", "critical",
              f"the TMT health monitor on {where} is stuck",
              f"Its last health round is more than {stale:g} s old (two intervals and a round's deadline): it serves "
              "old answers; its /readyz says so too."),
        _rule("TmtHealGaveUp", "tmt_health_heal_gave_up == 1", "critical",
              f"--heal gave up on {{{{ $labels.service }}}} on {where}",
              f"{{{{ $labels.service }}}} stays down after {registry.heal.max_per_hour} heal attempt(s) within an hour "
              "(heal.max_per_hour): a person must look; --heal tries again once it has run."),
    ]
    for key, metric, what in (("disk_percent", "tmt_health_disk_used_ratio", "disk {{ $labels.path }}"),
                              ("memory_percent", "tmt_health_memory_used_ratio", "memory")):
        threshold = registry.health.thresholds[key]
        for level, percent in (("warning", threshold.warning), ("critical", threshold.critical)):
            name = f"Tmt{key.split('_')[0].capitalize()}{level.capitalize()}"
            found.append(_rule(
                name, f"{metric} >= {percent / 100:g}", level, f"{what} at {{{{ $value | humanizePercentage }}}} on "
                f"{where}", f"{what} has been at or above {percent:g}% (health.thresholds.{key}.{level}) for "
                f"{duration(resources_for)}.", resources_for))
    return {"groups": [{"name": GROUP, "rules": found}]}


def render(registry, **options) -> str:
    """The rule file: `tmt-ops alerts > /etc/prometheus/rules/tmt-ops.yml`, named in prometheus.yml's rule_files."""
    head = (f"# Prometheus alert rules for system-health.py --serve (/metrics), made by `tmt-ops alerts` from\n"
            f"# {registry.path}; scrape it as job \"{options.get('job', JOB)}\". Check: promtool check rules FILE\n")
    return head + yaml.safe_dump(rules(registry, **options), sort_keys=False, width=1000, allow_unicode=True)
