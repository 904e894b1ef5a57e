"""system-health.py and a service that runs on after its pre-stop call (native, real processes): an orchestrator that
ignores SIGTERM survives `stop-trading-system.py --only orchestrator` with trading disabled; it answers "healthy",
and the report must say otherwise until it is started again. Only the orchestrator is in these registries (no
infrastructure, no dependents), so everything else is healthy and the exit code is the orchestrator's alone."""

from __future__ import annotations

import json
import re
import shutil
import time

import jsonschema

from health_stack import CALM, CORE, UNUSED_INFRA
from native_support import restart, state_dir, stop
from support import REPO, run_script
from tmt_ops import statedir

SCHEMA = json.loads((REPO / "tmt_ops" / "health" / "schema.json").read_text())
DISABLE = "POST /api/trading/disable"


def survivor_registry(registry_file):
    """The orchestrator alone, ignoring SIGTERM, with no post-start call to undo its pre-stop, and a probe that does
    not read trading_enabled (as a service whose answer does not say it: the record alone must tell); started."""
    def edit(data):
        data["health"]["thresholds"] = dict(CALM)
        orchestrator = data["services"]["orchestrator"]
        orchestrator["command"] = [*orchestrator["command"], "--ignore-sigterm"]
        orchestrator["stop_grace"] = 0.5
        del orchestrator["post_start"]
        del orchestrator["health"]["degraded_if"]
    others = [n for n in CORE if n != "orchestrator"]
    cfg = registry_file(drop=("postgres", "redis", "kafka", *UNUSED_INFRA, *others), edit=edit)
    started = restart(cfg, "--skip-health-check")
    assert started.returncode == 0, started.stderr
    return cfg


def health(cfg, *args):
    return run_script("system-health.py", "--config", str(cfg), "--mode", "native", *args, timeout=60)


def as_json(proc) -> dict:
    document = json.loads(proc.stdout)
    jsonschema.validate(document, SCHEMA)
    return document


def test_a_survivor_of_its_pre_stop_is_degraded_until_it_is_restarted(registry_file):
    cfg = survivor_registry(registry_file)
    stopped = stop(cfg, "--only", "orchestrator")
    assert stopped.returncode == 1 and "orchestrator runs on after its pre-stop" in stopped.stderr, stopped.stderr
    assert (state_dir(cfg) / "prestopped" / "orchestrator.json").is_file()

    proc = health(cfg, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a warning
    document = as_json(proc)
    orchestrator = document["services"]["orchestrator"]
    assert orchestrator["probe_status"] == "healthy" and orchestrator["details"]["trading_enabled"] is False
    assert orchestrator["status"] == "degraded" and orchestrator["severity"] == "warning"
    assert f"its pre-stop call {DISABLE} was made at " in orchestrator["error"]
    assert "it may not be working (e.g. not trading) until it is started again" in orchestrator["error"]
    (finding,) = document["findings"]
    assert finding["subject"] == "orchestrator" and finding["severity"] == "warning"
    assert [s["command"] for s in finding["steps"]][1].endswith(
        f"restart-trading-system.py --config {cfg} --mode native --only orchestrator")

    text = health(cfg)
    assert text.returncode == 1 and "TMT system health: WARNING" in text.stdout, text.stdout + text.stderr
    row = next(line for line in text.stdout.splitlines() if line.startswith("orchestrator "))
    assert " degraded " in row and f"its pre-stop call {DISABLE}" in row
    assert "  [warning] orchestrator: Orchestrator is degraded at " in text.stdout
    nagios = health(cfg, "--format", "nagios")
    assert nagios.returncode == 1 and nagios.stdout.startswith("SYSTEM-HEALTH WARNING - "), nagios.stdout
    prometheus = health(cfg, "--format", "prometheus")
    assert re.search(r'^tmt_health_check_severity\{service="orchestrator"[^}]*\} 1$', prometheus.stdout, re.M)
    checks = json.loads(health(cfg, "--format", "health+json").stdout)["checks"]
    assert checks["orchestrator:responseTime"][0]["status"] == "warn"

    again = restart(cfg, "--only", "orchestrator", "--force")  # it ignores SIGTERM: killed after its grace
    assert again.returncode == 0, again.stderr
    assert not (state_dir(cfg) / "prestopped" / "orchestrator.json").exists()
    after = health(cfg, "--json")
    assert after.returncode == 0, after.stdout + after.stderr
    assert as_json(after)["services"]["orchestrator"]["status"] == "healthy"


def test_a_record_older_than_the_running_service_is_stale_and_left_alone(registry_file):
    """Restarted by other means since its record (its process started after it): another run, which never got the
    call. system-health ignores the record, and only reads it."""
    cfg = survivor_registry(registry_file)
    state = state_dir(cfg)
    record = {"service": "orchestrator", "at": time.time() - 3600, "hook": DISABLE}
    statedir.write(state, "prestopped", "orchestrator", record)
    written = (state / "prestopped" / "orchestrator.json").read_text()
    proc = health(cfg, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert as_json(proc)["services"]["orchestrator"]["status"] == "healthy"
    assert (state / "prestopped" / "orchestrator.json").read_text() == written  # read-only
    statedir.write(state, "prestopped", "orchestrator", dict(record, at=time.time()))  # the same run: it holds
    assert health(cfg, "--json").returncode == 1


def test_a_state_directory_that_cannot_be_read_is_a_warning_not_no_records(registry_file):
    cfg = survivor_registry(registry_file)
    state = state_dir(cfg)
    shutil.rmtree(state)
    state.write_text("not a directory\n")
    proc = health(cfg, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    document = as_json(proc)
    assert document["services"]["orchestrator"]["status"] == "healthy"
    (finding,) = document["findings"]
    assert finding["subject"] == "state directory" and finding["severity"] == "warning"
    assert finding["message"].startswith(f"the state directory {state} is a regular file, not a directory: whether "
                                         "a service runs on after its pre-stop call")
    assert finding["steps"][0]["command"] == f"ls -ld {state}"
