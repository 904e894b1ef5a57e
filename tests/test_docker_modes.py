"""The other scripts in docker mode, end to end on a real engine: restart-trading-system.py --mode docker,
system-health.py --mode docker, --mode auto choosing docker, quick-restart.py docker. One shared stack."""

from __future__ import annotations

import json

import pytest

from docker_helpers import CORE, healthy_containers, project_of, stack, stack_config  # noqa: F401  (fixtures)
from support import run_script


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
