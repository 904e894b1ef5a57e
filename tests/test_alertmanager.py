"""The alert rules (`tmt-ops alerts`) with the real Prometheus and Alertmanager (Debian's prometheus and
prometheus-alertmanager packages; .ci/setup-system.sh installs them): promtool accepts the rules and each rule
fires when, and only when, it should (promtool's rule unit tests); and end to end, Prometheus scrapes a running
`system-health.py --serve` of the simulated stack, a killed critical service fires its alert within the rule's
window, and Alertmanager delivers it to a local webhook receiver and to a Slack receiver (the same local server).

Without the binaries these tests are skipped with the reason, unless TMT_REQUIRE_DOCKER=1 (as CI sets it, for every
install-dependent test): then they fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from native_support import recorded_pids, restart, stop
from support import REPO, free_ports, wait_for
from webhook_receiver import Receiver

BINARIES = ("prometheus", "promtool", "prometheus-alertmanager")
MISSING = [b for b in BINARIES if shutil.which(b) is None]


@pytest.fixture(autouse=True)
def binaries():
    if MISSING:
        why = f"{', '.join(MISSING)} not installed (Debian: prometheus, prometheus-alertmanager; .ci/setup-system.sh)"
        if os.environ.get("TMT_REQUIRE_DOCKER") == "1":
            pytest.fail(f"TMT_REQUIRE_DOCKER=1 but {why}")
        pytest.skip(why)


def alerts(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tmt_ops", "alerts", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_rules_for_the_shipped_registry_pass_promtool(tmp_path):
    rules = tmp_path / "tmt-ops.yml"
    rules.write_text(alerts("--config", str(REPO / "config" / "services.yaml")))
    checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "SUCCESS: 9 rules found" in checked.stdout, checked.stdout + checked.stderr


SERVICE = {"service": "orchestrator", "group": "core", "critical": "true"}
TARGET = {"instance": "vm:9464", "job": "tmt-health"}


def _series(name: str, values: str, **labels) -> dict:
    text = ",".join(f'{k}="{v}"' for k, v in {**labels, **TARGET}.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _fires(alert: str, at: str, severity: str | None = None, **labels) -> dict:
    expected = [{"exp_labels": {"severity": severity, **labels, **TARGET}}] if severity else []
    return {"eval_time": at, "alertname": alert, "exp_alerts": expected}


def test_each_rule_fires_when_and_only_when_it_should(tmp_path):
    """promtool's unit tests on the shipped registry's rules (annotations left out: promtool compares them whole, and
    `promtool check rules` above has checked their templates), one series per rule, a minute per sample."""
    rules = yaml.safe_load(alerts("--config", str(REPO / "config" / "services.yaml")))
    for rule in rules["groups"][0]["rules"]:
        rule.pop("annotations")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    disk = {"path": "/"}
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            _series("tmt_health_check_severity", "0 2 2 2 0", **SERVICE),  # down from minute 1 to 3
            _series("tmt_health_check_severity", "1 1 1 1 1", service="dashboard", group="core", critical="false"),
            _series("tmt_health_check_up", "1 0 0 0 1", service="dashboard", group="core", critical="false"),
            _series("up", "1 1 0 0 0"),
            _series("tmt_health_last_round_timestamp_seconds", "0 60 120 120 120"),  # stuck from minute 2
            _series("tmt_health_heal_gave_up", "0 0 1 1 0", service="orchestrator", critical="true"),
            _series("tmt_health_disk_used_ratio", "0.5 0.85 0.85 0.85 0.85 0.85 0.85 0.95 0.95 0.95 0.95 0.95 0.95",
                    **disk),
            _series("tmt_health_memory_used_ratio", "0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.96 0.96 0.96 0.96 0.96 0.96"),
        ],
        "alert_rule_test": [
            _fires("TmtCriticalServiceDown", "1m"),  # pending: it must hold 60 s
            _fires("TmtCriticalServiceDown", "2m", "critical", **SERVICE),
            _fires("TmtCriticalServiceDown", "4m"),  # back
            _fires("TmtServiceDown", "2m", "warning", service="dashboard", group="core", critical="false"),
            _fires("TmtServiceDown", "4m"),
            _fires("TmtHealthMonitorDown", "2m"),
            _fires("TmtHealthMonitorDown", "3m", "critical"),
            _fires("TmtHealthMonitorStale", "3m"),  # its last round a minute old: within 2 x 30 s + 4 s
            _fires("TmtHealthMonitorStale", "4m", "critical"),  # two minutes
            _fires("TmtHealGaveUp", "2m", "critical", service="orchestrator", critical="true"),
            _fires("TmtHealGaveUp", "4m"),
            _fires("TmtDiskWarning", "5m"),  # above 80% for 4 minutes: not yet the 5 it must hold
            _fires("TmtDiskWarning", "6m", "warning", **disk),
            _fires("TmtDiskCritical", "11m"),
            _fires("TmtDiskCritical", "12m", "critical", **disk),
            _fires("TmtMemoryWarning", "11m"),
            _fires("TmtMemoryWarning", "12m", "warning"),
            _fires("TmtMemoryCritical", "12m", "critical"),
        ]}]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    tested = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


class Daemon:
    """A Prometheus or Alertmanager of the test's own, on a free port, its output in a file."""

    def __init__(self, argv: list[str], port: int, log: Path):
        self.port, self.log = port, log
        with log.open("w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_for(self.ready, 30), log.read_text()[-3000:]

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
            return json.loads(answer.read()) if path.startswith("/api/") else answer.read()

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            self.get("/-/ready")
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_a_killed_critical_service_fires_its_alert_and_alertmanager_delivers_it(registry_file, monitors, tmp_path):
    cfg = registry_file()
    assert restart(cfg).returncode == 0
    receiver = Receiver()
    prometheus = alertmanager = None
    try:
        monitor = monitors(cfg, "--interval", "0.5", serve="127.0.0.1:0")
        prom_port, am_port, cluster_port = free_ports(3)
        (tmp_path / "rules.yml").write_text(alerts("--config", str(cfg), "--down-for", "2", "--interval", "0.5"))
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump({
            "route": {"receiver": "webhook", "group_by": ["alertname", "service"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h",
                      "routes": [{"receiver": "slack", "continue": True}, {"receiver": "webhook"}]},
            "receivers": [
                {"name": "webhook", "webhook_configs": [{"url": receiver.url("/alertmanager"), "send_resolved": True}]},
                {"name": "slack", "slack_configs": [{"api_url": receiver.url("/slack"), "channel": "#tmt-desk",
                                                     "send_resolved": True,
                                                     "title": "{{ .CommonAnnotations.summary }}",
                                                     "text": "{{ .CommonAnnotations.description }}"}]}]}))
        alertmanager = Daemon(["prometheus-alertmanager", f"--config.file={tmp_path / 'alertmanager.yml'}",
                               f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                               f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
                              am_port, tmp_path / "alertmanager.log")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "tmt-health", "static_configs": [{"targets": [f"127.0.0.1:{monitor.port}"]}]}]}))
        prometheus = Daemon(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'prom-data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            prom_port, tmp_path / "prometheus.log")

        def scraped() -> bool:
            targets = prometheus.get("/api/v1/targets")["data"]["activeTargets"]
            return bool(targets) and targets[0]["health"] == "up"
        assert wait_for(scraped, 30), prometheus.get("/api/v1/targets")

        def market_analysis_up() -> bool:
            found = prometheus.get("/api/v1/query?query=tmt_health_check_up%7Bservice%3D%22market-analysis%22%7D")
            return [r["value"][1] for r in found["data"]["result"]] == ["1"]
        assert wait_for(market_analysis_up, 30)
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        assert [g["name"] for g in groups] == ["tmt-ops"] and len(groups[0]["rules"]) == 9

        killed = time.monotonic()
        os.killpg(os.getpgid(recorded_pids(cfg)["market-analysis"]), signal.SIGKILL)

        def delivered(message: dict) -> bool:
            return message.get("status") == "firing" and any(
                a["labels"].get("alertname") == "TmtCriticalServiceDown" and a["labels"].get("service") == "market-analysis"
                for a in message["alerts"])
        message = receiver.wait(delivered, 40, path="/alertmanager")
        took = time.monotonic() - killed
        assert message is not None, (receiver.messages(), (tmp_path / "prometheus.log").read_text()[-2000:])
        # the rule's window (2 s) plus a round (0.5 s), a scrape and an evaluation (1 s each) and group_wait (1 s),
        # with room for a loaded machine
        assert took < 20, took
        alert = next(a for a in message["alerts"] if a["labels"]["service"] == "market-analysis")
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == "tmt-health"
        assert alert["annotations"]["summary"] == f"market-analysis is down on 127.0.0.1:{monitor.port}"
        slack = receiver.wait(lambda m: "market-analysis is down" in json.dumps(m), 20, path="/slack")
        assert slack is not None and slack["channel"] == "#tmt-desk", receiver.messages("/slack")
        assert "restart-trading-system.py --only market-analysis" in slack["attachments"][0]["text"]
    finally:
        for daemon in (prometheus, alertmanager):
            if daemon is not None:
                daemon.stop()
        receiver.close()
        stop(cfg)
