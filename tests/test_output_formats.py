"""Renderers as pure functions of a health document: nagios, prometheus, text, json; redaction; atomic writes."""

from __future__ import annotations

import json
import os
import re

import pytest

from tmt_ops.console import Printer
from tmt_ops.errors import OperationFailed
from tmt_ops.output import redact_tree, renderer
from tmt_ops.files import write_atomic
from tmt_ops.output.text import show, summary
from tmt_ops.redact import Redactor


def check(name, status="healthy", severity="healthy", ms=4.25, group="core", **kw):
    return {"status": status, "response_time_ms": ms, "details": None, "error": kw.pop("error", None),
            "url": f"http://127.0.0.1:1/{name}", "critical": kw.pop("critical", True), "name": name,
            "display_name": name.title(), "group": group, "severity": severity, "probe": "http",
            "address": "127.0.0.1:1", "port": 1, "port_open": kw.pop("port_open", True), "http_status": 200,
            "probe_status": status, "backend": None, "port_holders": kw.pop("port_holders", [])}


@pytest.fixture
def document():
    return {
        "schema_version": 1, "timestamp": "2026-11-24T00:00:00.000Z", "deployment_mode": "native",
        "overall_status": "warning", "exit_code": 1, "duration_ms": 12.5,
        "services": {"orchestrator": check("orchestrator"),
                     "dashboard": check("dashboard", "timeout", "warning", None, critical=False,
                                        error="no answer within 2s")},
        "infrastructure": {"redis": check("redis", group="infrastructure", ms=0.5)},
        "system_metrics": {
            "cpu_percent": 12.5, "cpu_sample_seconds": 0.1, "cpu_count": 2, "memory_percent": 41.0,
            "memory_available_bytes": 2 ** 33, "memory_total_bytes": 2 ** 34, "disk_percent": 83.25,
            "disks": [{"path": "/", "measured_path": "/", "percent": 83.25, "free_bytes": 2 ** 30,
                       "total_bytes": 2 ** 34, "severity": "warning"},
                      {"path": "/var/log/it's", "measured_path": "/var/log", "percent": 10.0, "free_bytes": 1,
                       "total_bytes": 2, "severity": "healthy"}],
            "load_average": [0.5, 0.25, 0.1], "load_per_cpu": 0.25,
            "severity": {"cpu_percent": "healthy", "memory_percent": "healthy", "disk_percent": "warning",
                         "load_per_cpu": "healthy"},
            "thresholds": {"cpu_percent": {"warning": 85.0, "critical": 95.0},
                           "memory_percent": {"warning": 85.0, "critical": 95.0},
                           "disk_percent": {"warning": 80.0, "critical": 90.0},
                           "load_per_cpu": {"warning": 1.5, "critical": 3.0}}},
        "issues": ["dashboard: Dashboard is timeout"], "recommendations": ["dashboard: read its log: tail x"],
        "critical_issues_count": 0,
        "findings": [{"severity": "warning", "subject": "dashboard", "message": "Dashboard is timeout",
                      "steps": [{"why": "read its log", "command": "tail -n 50 logs/dashboard.log"}]}],
    }


def test_nagios_line_state_summary_and_perfdata(document):
    line = renderer("nagios")(document)
    assert line.endswith("\n") and line.count("\n") == 1
    head, perf = line.rstrip("\n").split(" | ")
    assert head == "SYSTEM-HEALTH WARNING - 2 ok, 1 warn, 0 fail: dashboard timeout"
    labels = perf.split(" ")
    assert "'orchestrator_time'=0.00425s;;;0" in labels
    assert "'dashboard_time'=U;;;0" in labels  # no time measured: undetermined, not 0
    assert "'disk_/'=83.25%;80;90;0;100" in labels
    assert "'disk_/var/log/it_s'=10%;80;90;0;100" in labels  # a quote in a label would end it
    assert "'load_per_cpu'=0.25;1.5;3;0" in labels
    assert not re.search(r"\d,\d", perf)  # dot decimals only


def test_prometheus_names_labels_and_escaping(document):
    document["infrastructure"]["redis"]["name"] = 'we"ird\\name'
    text = renderer("prometheus")(document)
    assert 'tmt_health_check_up{service="dashboard",group="core",critical="false"} 0' in text
    assert 'tmt_health_check_duration_seconds{service="orchestrator",group="core",critical="true"} 0.00425' in text
    assert 'service="we\\"ird\\\\name"' in text
    assert 'tmt_health_disk_used_percent{path="/"} 83.25' in text
    assert "tmt_health_overall_severity{mode=\"native\"} 1" in text
    assert 'tmt_health_check_duration_seconds{service="dashboard"' not in text  # no time, no sample
    for line in text.splitlines():
        if not line.startswith("#"):
            assert line.startswith("tmt_health_") and len(line.rsplit(" ", 1)) == 2
    types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")]
    assert len(types) == len(set(types))


def test_json_pretty_and_compact(document):
    assert json.loads(renderer("json")(document)) == document
    from tmt_ops.output.jsonout import render
    compact = render(document, compact=True)
    assert compact.count("\n") == 1 and json.loads(compact) == document


def test_text_table_issues_and_recommendations(document):
    text = renderer("text")(document)
    assert text.startswith("TMT system health: WARNING (native mode")
    assert re.search(r"^dashboard\s+core\s+no\s+timeout\s+-\s+", text, re.M)
    assert "[warning] dashboard: Dashboard is timeout" in text
    assert "      tail -n 50 logs/dashboard.log" in text
    assert "\x1b[" not in text
    assert summary(document).startswith("2026-11-24T00:00:00.000Z WARNING: 2 healthy, 1 warning, 0 critical")


def test_text_colours_rows_by_severity_on_a_terminal(document):
    import io
    buffer = io.StringIO()
    show(document, Printer(buffer, Redactor(), colour=True))
    lines = buffer.getvalue().splitlines()
    dash = next(l for l in lines if "dashboard" in l and "timeout" in l)
    orch = next(l for l in lines if l.startswith("\x1b[32m") and "orchestrator" in l)
    assert dash.startswith("\x1b[33m") and orch


def test_redact_tree_masks_every_string_in_the_document(document):
    document["services"]["orchestrator"]["details"] = {"db": "postgresql://u:hunter22@db/x", "list": ["tok-SECRETX"]}
    out = redact_tree(document, Redactor(["tok-SECRETX"]))
    dumped = json.dumps(out)
    assert "hunter22" not in dumped and "tok-SECRETX" not in dumped and "postgresql://u:***@db/x" in dumped


def test_atomic_write_replaces_whole_and_cleans_up(tmp_path):
    target = tmp_path / "health.json"
    write_atomic(target, "one\n")
    write_atomic(target, "two\n")
    assert target.read_text() == "two\n" and os.listdir(tmp_path) == ["health.json"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "health.json"
    target.write_text("old\n")
    with pytest.raises(OperationFailed):
        write_atomic(target, "\udcff not encodable\n")  # fails while writing the temp file
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["health.json"]
    with pytest.raises(OperationFailed, match="cannot write"):
        write_atomic(tmp_path / "missing" / "x", "text")
