"""The other scripts in docker mode, end to end on a real engine: restart-trading-system.py --mode docker,
system-health.py --mode docker, --mode auto choosing docker, quick-restart.py docker. One shared stack."""

from __future__ import annotations

import json

import pytest
import yaml

from docker_helpers import CORE, down, dr, healthy_containers, project_of, stack, stack_config  # noqa: F401
from support import REPO, run_script, write_registry


pytestmark = pytest.mark.docker


def test_restart_trading_system_in_docker_mode(stack):
    done = run_script("restart-trading-system.py", "--mode", "docker", "--config", str(stack), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "mode: docker" in done.stderr
    assert sorted(healthy_containers(stack)) == sorted(CORE)


def test_system_health_in_docker_mode_reports_container_state_and_engine_health(stack):
    done = run_script("system-health.py", "--mode", "docker", "--json", "--config", str(stack))
    report = json.loads(done.stdout)
    assert report["deployment_mode"] == "docker"
    for name in CORE:
        entry = report["services"][name]
        assert entry["status"] == "healthy"
        assert entry["backend"]["container"].startswith(project_of(stack))
        assert (entry["backend"]["state"], entry["backend"]["engine_health"]) == ("running", "healthy")


def test_auto_mode_chooses_docker_when_this_projects_containers_run(stack):
    report = json.loads(run_script("system-health.py", "--json", "--config", str(stack)).stdout)
    assert report["deployment_mode"] == "docker"


def test_quick_restart_docker_replaces_the_containers(stack):
    before = healthy_containers(stack)
    done = run_script("quick-restart.py", "docker", "--config", str(stack), timeout=300)
    assert done.returncode == 0, done.stderr
    after = healthy_containers(stack)
    assert sorted(after) == sorted(CORE)
    assert all(after[name] != before[name] for name in CORE)


def test_quick_restart_detects_docker_mode(stack):
    done = run_script("quick-restart.py", "--config", str(stack), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "mode: docker (detected)" in done.stderr
    assert sorted(healthy_containers(stack)) == sorted(CORE)


def test_a_service_answers_to_its_registry_and_its_compose_name(tmp_path):
    """market-analysis runs as compose service `analysis`: either name works for restart, stop, logs and
    status, and only that service (and, without --no-deps, its dependents) is touched."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    compose["services"]["analysis"] = compose["services"].pop("market-analysis")
    for spec in compose["services"].values():
        for key in ("command", "healthcheck"):
            if isinstance(spec.get(key), str):
                spec[key] = spec[key].replace("TMT_PORT_MARKET_ANALYSIS", "TMT_PORT_ANALYSIS")
        if "depends_on" in spec and "market-analysis" in spec["depends_on"]:
            spec["depends_on"]["analysis"] = spec["depends_on"].pop("market-analysis")
    text = yaml.safe_dump(compose, sort_keys=False).replace("TMT_PORT_MARKET_ANALYSIS", "TMT_PORT_ANALYSIS")
    text = text.replace("http://market-analysis:", "http://analysis:")
    text = text.replace("context: ./tmt_sim", f"context: {REPO}/tmt_sim")
    (tmp_path / "docker-compose.yml").write_text(text)

    def edit(data):
        data["project"]["compose_file"] = str(tmp_path / "docker-compose.yml")
        data["services"]["market-analysis"]["compose_service"] = "analysis"
    config = write_registry(tmp_path, edit=edit)
    try:
        assert dr(config, "start", timeout=300).returncode == 0
        for name in ("analysis", "market-analysis"):
            before = healthy_containers(config)
            done = dr(config, "restart", name, "--no-deps", timeout=300)
            assert done.returncode == 0, done.stderr
            after = healthy_containers(config)
            assert after["analysis"] != before["analysis"]
            assert {n: after[n] for n in after if n != "analysis"} == {n: before[n] for n in before if n != "analysis"}
        logs = dr(config, "logs", "market-analysis", "--tail", "200")  # (its access-log lines come last)
        assert logs.returncode == 0 and "market-analysis[" in logs.stdout
        before = healthy_containers(config)
        stop = dr(config, "stop", "analysis")  # it and its dependents, nothing else
        assert stop.returncode == 0, stop.stderr
        after = healthy_containers(config)
        assert sorted(after) == ["orchestrator"] and after["orchestrator"] == before["orchestrator"]
        health = run_script("system-health.py", "--config", str(config), "--mode", "docker", "--json")
        assert json.loads(health.stdout)["services"]["market-analysis"]["backend"]["container"] is None  # gone
    finally:
        down(config)
