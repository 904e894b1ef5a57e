"""--heal through the compose backend: in docker mode a killed container comes back with its dependents'
containers, in order; in a native deployment whose Redis runs in a container, a heal never starts that
container (infrastructure is never healed): the service that needs it waits for a person."""

from __future__ import annotations

import os
import subprocess

import pytest

from docker_helpers import CORE, down, dr, healthy_containers, project_of
from health_stack import CALM
from infra_images import IMAGE_ENV, require_images
from monitor_support import Monitor
from native_support import recorded_pids
from support import run_script, wait_for, write_registry
from tmt_ops.compose.containers import container_labels
from tmt_ops.engine import Engine

pytestmark = pytest.mark.docker


def test_a_killed_container_comes_back_with_its_dependents_and_infrastructure_stays_down(tmp_path):
    def edit(data):
        data["health"].update(monitor_interval=1, thresholds=dict(CALM))
        data["heal"] = {"after_rounds": 2, "backoff_seconds": 1}
    cfg = write_registry(tmp_path, edit=edit)
    monitor = None
    try:
        started = dr(cfg, "start", timeout=300)
        assert started.returncode == 0, started.stderr
        before = healthy_containers(cfg)
        monitor = Monitor(cfg, "--monitor", "--heal", "--json", serve=None, mode="docker")
        assert monitor.wait_event(lambda e: e["type"] == "round"), monitor.text()
        subprocess.run(["docker", "kill", before["market-analysis"]], check=True, capture_output=True, timeout=60)
        result = monitor.wait_event(lambda e: e["type"] == "heal" and e["event"] == "result", timeout=300)
        assert result and result["ok"], monitor.text()
        (attempt,) = [e for e in monitor.events() if e["type"] == "heal" and e["event"] == "attempt"]
        assert attempt["restarting"] == ["market-analysis", "execution-engine", "dashboard"]
        assert wait_for(lambda: sorted(healthy_containers(cfg)) == sorted(CORE), 120)
        after = healthy_containers(cfg)
        assert after["orchestrator"] == before["orchestrator"]  # not a dependent: untouched
        assert all(after[n] != before[n] for n in ("market-analysis", "execution-engine", "dashboard"))
        running = {c["Config"]["Labels"]["com.docker.compose.service"]
                   for c in Engine().containers(*container_labels(project_of(cfg))) if c["State"]["Running"]}
        assert running == set(CORE)  # PostgreSQL, Redis, ... (profile infra) never started by a heal
    finally:
        if monitor is not None:
            monitor.kill()
        down(cfg)


def test_a_service_waits_for_its_infrastructure_container_which_a_heal_never_starts(tmp_path):
    require_images()

    def edit(data):
        data["services"]["redis"]["backend"] = "compose"  # Redis in a container, the trading services natively
        data["health"].update(monitor_interval=0.5, thresholds=dict(CALM))
        data["heal"] = {"after_rounds": 2, "backoff_seconds": 1}
    cfg = write_registry(tmp_path, edit=edit)
    monitor = None

    def redis_running() -> bool:
        return any(c["State"]["Running"] and c["Config"]["Labels"]["com.docker.compose.service"] == "redis"
                   for c in Engine().containers(*container_labels(project_of(cfg))))

    try:
        started = run_script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", env=IMAGE_ENV,
                             timeout=300)
        assert started.returncode == 0 and redis_running(), started.stderr
        monitor = Monitor(cfg, "--monitor", "--heal", "--json", serve=None, env=IMAGE_ENV)
        assert monitor.wait_event(lambda e: e["type"] == "round"), monitor.text()
        (redis,) = [c["Id"] for c in Engine().containers(*container_labels(project_of(cfg)))
                    if c["Config"]["Labels"]["com.docker.compose.service"] == "redis"]
        subprocess.run(["docker", "stop", "-t", "1", redis], check=True, capture_output=True, timeout=60)
        os.killpg(recorded_pids(cfg)["orchestrator"], 9)
        waiting = monitor.wait_event(lambda e: e["type"] == "heal" and e["event"] == "skipped", timeout=60)
        assert waiting and waiting["services"] == ["orchestrator"] and "waits for redis" in waiting["message"]
        rounds = len(monitor.events()) + 8
        assert monitor.wait_line(lambda line: len(monitor.out) >= rounds, timeout=30)
        assert not [e for e in monitor.events() if e["type"] == "heal" and e["event"] == "attempt"], monitor.text()
        assert not redis_running()  # neither healed itself nor started by a heal of what needs it
        subprocess.run(["docker", "start", redis], check=True, capture_output=True, timeout=60)  # a person
        result = monitor.wait_event(lambda e: e["type"] == "heal" and e["event"] == "result", timeout=120)
        assert result and result["ok"] and result["services"] == ["orchestrator"], monitor.text()
    finally:
        if monitor is not None:
            monitor.kill()
        run_script("stop-trading-system.py", "--config", str(cfg), "--mode", "native", "--force", env=IMAGE_ENV)
        down(cfg)
