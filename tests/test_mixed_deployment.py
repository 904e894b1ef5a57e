"""The common real set-up, on real local images: PostgreSQL and Redis in containers (`backend: compose` in the
registry), the trading services on the host; then the same registry in docker mode, where
`docker-restart.py restart postgres` restarts the database and, in order, what depends on it."""

from __future__ import annotations

import json
import subprocess

import pytest

from docker_helpers import down, project_of
from health_stack import CALM
from infra_images import IMAGE_ENV, POSTGRES_PASSWORD, require_images
from native_support import alive, recorded_pids
from support import run_script, write_registry
from tmt_ops.compose.containers import container_labels
from tmt_ops.engine import Engine

pytestmark = pytest.mark.docker

CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]
ENV = {**IMAGE_ENV, "POSTGRES_PASSWORD": POSTGRES_PASSWORD}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    require_images()

    def databases_in_containers(data):
        for name in ("postgres", "redis"):
            data["services"][name].update(backend="compose", critical=True)
        data["services"]["orchestrator"]["depends_on"] = {"postgres": "required", "redis": "required"}
        data["health"]["thresholds"] = dict(CALM)
    # The rest of the infrastructure stays in the registry (the compose file takes every service's port from
    # it) but outside the deployment: probed, never started, `critical: false`.
    path = write_registry(tmp_path_factory.mktemp("mixed"), edit=databases_in_containers)
    yield path
    run_script("stop-trading-system.py", "--mode", "native", "--config", str(path), "--force", env=ENV)
    down(path)


def script(name, config, *args):
    return run_script(name, "--config", str(config), *args, env=ENV, timeout=300)


def containers(config) -> dict:
    """compose service -> (id, start time, health) of the project's running containers."""
    return {c["Config"]["Labels"]["com.docker.compose.service"]: (c["Id"], c["State"]["StartedAt"],
                                                                   (c["State"].get("Health") or {}).get("Status"))
            for c in Engine().containers(*container_labels(project_of(config))) if c["State"]["Running"]}


def psql(config, sql: str) -> str:
    (cid, _, _) = containers(config)["postgres"]
    done = subprocess.run(["docker", "exec", "-e", f"PGPASSWORD={POSTGRES_PASSWORD}", cid, "psql", "-U", "postgres",
                           "-h", "127.0.0.1", "-d", "trading_system", "-tAc", sql],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_native_restart_brings_up_its_databases_in_containers_first(config):
    done = script("restart-trading-system.py", config, "--mode", "native")
    assert done.returncode == 0, done.stderr
    assert "wave 1: starting postgres, redis" in done.stderr
    assert done.stderr.index("redis: ready") < done.stderr.index("orchestrator: ready")
    running = containers(config)
    assert sorted(running) == ["postgres", "redis"] and {h for _, _, h in running.values()} == {"healthy"}
    assert set(recorded_pids(config)) == set(CORE)  # the trading services are processes on the host
    assert "6 service(s) running and healthy" in done.stderr


def test_health_reports_each_service_by_its_own_backend(config):
    done = script("system-health.py", config, "--mode", "native", "--json")
    report = json.loads(done.stdout)
    assert report["overall_status"] == "warning", report["issues"]  # only the unused infrastructure is down
    assert {name for name, check in {**report["services"], **report["infrastructure"]}.items()
            if check["severity"] != "healthy"} == {"kafka", "prometheus", "grafana", "jaeger", "vault"}
    postgres = report["infrastructure"]["postgres"]
    assert postgres["status"] == "healthy" and postgres["backend"]["container"].startswith(project_of(config))
    assert postgres["backend"]["engine_health"] == "healthy"
    orchestrator = report["services"]["orchestrator"]
    assert orchestrator["backend"]["pids"] and orchestrator["backend"]["container"] is None


def test_stop_and_restart_leave_the_databases_running_unless_asked(config):
    before = containers(config)
    stopped = script("stop-trading-system.py", config, "--mode", "native")
    assert stopped.returncode == 0, stopped.stderr
    assert recorded_pids(config) == {} and containers(config) == before
    again = script("restart-trading-system.py", config, "--mode", "native")
    assert again.returncode == 0, again.stderr
    assert containers(config) == before  # `up` of what already runs changes nothing: same containers, same start
    assert set(recorded_pids(config)) == set(CORE)


def test_restarting_postgres_restarts_what_needs_it_and_keeps_its_data(config):
    psql(config, "CREATE TABLE IF NOT EXISTS fills (id int); INSERT INTO fills VALUES (42)")
    before, pids = containers(config), recorded_pids(config)
    plan = script("restart-trading-system.py", config, "--mode", "native", "--only", "postgres", "--dry-run")
    assert plan.returncode == 0 and "postgres: stop container " in plan.stderr, plan.stderr
    done = script("restart-trading-system.py", config, "--mode", "native", "--only", "postgres")
    assert done.returncode == 0, done.stderr
    after, new_pids = containers(config), recorded_pids(config)
    assert after["postgres"][0] != before["postgres"][0] and after["redis"] == before["redis"]
    assert all(new_pids[n] != pids[n] and alive(new_pids[n]) for n in CORE)  # everything that needs it, in order
    order = [done.stderr.index(f"{n}: ready in") for n in ["postgres", *CORE]]
    assert order == sorted(order)
    assert psql(config, "SELECT id FROM fills") == "42"  # its volume outlived the container


def test_stop_with_infra_stops_the_databases_too(config):
    done = script("stop-trading-system.py", config, "--mode", "native", "--with-infra")
    assert done.returncode == 0, done.stderr
    assert containers(config) == {} and recorded_pids(config) == {}


def test_docker_restart_postgres_restarts_it_and_its_dependents_only(config):
    started = script("docker-restart.py", config, "start")
    assert started.returncode == 0, started.stderr
    before = containers(config)
    assert sorted(before) == sorted(["postgres", "redis", *CORE])
    done = script("docker-restart.py", config, "restart", "postgres")
    assert done.returncode == 0, done.stderr
    after = containers(config)
    assert after["redis"] == before["redis"]  # same container, same start time
    assert all(after[n][0] != before[n][0] for n in ["postgres", *CORE])
    assert all(health == "healthy" for _, _, health in after.values())
    stopped = script("docker-restart.py", config, "stop", "--with-infra")
    assert stopped.returncode == 0 and containers(config) == {}, stopped.stderr
