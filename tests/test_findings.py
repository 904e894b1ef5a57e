"""Findings say a cause once: services that do not answer for the same reason, with the same next step, are one
finding naming each of them (a fresh machine without its infrastructure), while a different cause (a timeout, a
wrong answer, another severity) keeps a finding of its own. The report's per-service data is not joined."""

from __future__ import annotations

import http.server
import json
import threading

import yaml

import realservers as rs
from health_stack import CALM
from support import run_script
from tmt_ops.health.advice import said_once
from tmt_ops.health.checks import Finding, Step
from tmt_ops.states import Overall

CORE = ("orchestrator", "market-analysis", "execution-engine", "dashboard")
LOOK = (Step("see what listens", "ss -ltnp"),)


def test_findings_with_the_same_cause_severity_and_steps_are_said_once_where_the_first_was():
    first = Finding(Overall.WARNING, "postgres", "PostgreSQL (a): refused", LOOK, "PostgreSQL (a)", "refused")
    own = Finding(Overall.WARNING, "load", "load average 9", (Step("see what runs", "ps"),))
    second = Finding(Overall.WARNING, "redis", "Redis (b): refused", LOOK, "Redis (b)", "refused")
    critical = Finding(Overall.CRITICAL, "vault", "Vault (c): refused", LOOK, "Vault (c)", "refused")
    other_step = Finding(Overall.WARNING, "kafka", "Kafka (d): refused", (Step("x", "y"),), "Kafka (d)", "refused")
    joined, *rest = said_once([first, own, second, critical, other_step])
    assert joined == Finding(Overall.WARNING, "postgres, redis", "PostgreSQL (a), Redis (b): refused", LOOK,
                             "PostgreSQL (a), Redis (b)", "refused", ("postgres", "redis"))
    assert rest == [own, critical, other_step]  # another severity, other steps: their own
    assert said_once([first, own]) == [first, own]  # alone with its cause: as it is


class _Unavailable(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_infrastructure_refused_alike_is_one_finding_and_a_timeout_or_a_wrong_answer_its_own(registry_file):
    """Refused: PostgreSQL, Redis, Kafka, each on a free port nothing listens on, and Jaeger and Vault, critical;
    Prometheus accepts and never answers; Grafana answers 503."""
    def edit(data):
        for name in ("jaeger", "vault"):
            data["services"][name]["critical"] = True
        data["health"]["thresholds"] = dict(CALM)  # a busy test host's load is no finding of this test's
    cfg = registry_file(drop=CORE, edit=edit)
    port = {name: svc["port"] for name, svc in yaml.safe_load(cfg.read_text())["services"].items()}
    silent = rs.Silent(port["prometheus"])
    wrong = http.server.ThreadingHTTPServer(("127.0.0.1", port["grafana"]), _Unavailable)
    threading.Thread(target=wrong.serve_forever, daemon=True).start()
    health = ("system-health.py", "--config", str(cfg), "--mode", "native")
    try:
        done = run_script(*health, "--json", timeout=60)
        text = run_script(*health, timeout=60).stdout
        monitor = run_script(*health, "--monitor", "--count", "1", timeout=60).stdout
    finally:
        silent.stop()
        wrong.shutdown()
        wrong.server_close()
    document = json.loads(done.stdout)
    assert done.returncode == 2, done.stderr  # Jaeger and Vault are critical
    by_subject = {f["subject"]: f for f in document["findings"]}
    refused = by_subject["postgres, redis, kafka"]
    assert refused["subjects"] == ["postgres", "redis", "kafka"] and refused["severity"] == "warning"
    assert refused["message"] == (
        f"PostgreSQL (127.0.0.1:{port['postgres']}), Redis (127.0.0.1:{port['redis']}), Kafka (127.0.0.1:"
        f"{port['kafka']}): connection refused: not running on this host, or not where the registry says")
    assert [s["command"] for s in refused["steps"]] == ["ss -ltnp"]  # one step, not three copies
    critical = by_subject["jaeger, vault"]  # the same cause, but another severity: a finding of their own
    assert critical["severity"] == "critical" and critical["subjects"] == ["jaeger", "vault"]
    assert "no answer within" in by_subject["prometheus"]["message"]
    assert "HTTP 503" in by_subject["grafana"]["message"]
    for own in ("prometheus", "grafana"):  # where something answers on the port, that port is the one to look at
        assert [s["command"] for s in by_subject[own]["steps"]] == [f"ss -ltnp 'sport = :{port[own]}'"]
    assert len(document["findings"]) == 4
    assert [r.split(":")[0] for r in document["recommendations"] if r.endswith(": ss -ltnp")] == [
        "jaeger, vault", "postgres, redis, kafka"]  # the worst first
    # the report itself keeps every check as it was: one per service, its own error
    infra = document["infrastructure"]
    assert set(infra) == set(port)
    for name in ("postgres", "redis", "kafka", "jaeger", "vault"):
        assert infra[name]["error"] == f"connection refused on 127.0.0.1:{port[name]}"
        assert infra[name]["status"] == "unhealthy" and infra[name]["port_open"] is False
    assert text.count("ss -ltnp\n") == 2 and text.count("connection refused: not running on this host") == 2, text
    # the monitor's round line names each critical check once, not again as the finding that joins them
    (line,) = [li for li in monitor.splitlines() if " CRITICAL: " in li]
    assert line.count("jaeger unhealthy") == 1 and line.count("vault unhealthy") == 1 and "jaeger, vault" not in line
