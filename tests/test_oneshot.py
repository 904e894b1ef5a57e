"""One-shot jobs (`type: oneshot`), such as a database migration: run to completion before what depends on them
starts; exit 0 is done, anything else stops the dependents and shows the job's last lines. In docker mode a
container that exits 0 is done, not failed."""

from __future__ import annotations

import json

import pytest

from docker_helpers import down, project_of
from native_support import recorded_pids
from support import run_script
from tmt_ops.compose.containers import container_labels
from tmt_ops.engine import Engine
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry

CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]


def with_job(*flags: str):
    def edit(data):
        data["services"]["db-migrate"] = {"group": "core", "type": "oneshot",
                                          "command": ["python", "-m", "tmt_sim.job", *flags]}
        data["services"]["orchestrator"]["depends_on"]["db-migrate"] = "required"
    return edit


def restart(config, *args, env=None):
    return run_script("restart-trading-system.py", "--config", str(config), *args, env=env, timeout=300)


def test_a_job_runs_to_its_end_before_what_needs_it_starts(registry_file):
    cfg = registry_file(edit=with_job("--seconds", "0.5"))
    done = restart(cfg, "--mode", "native")
    assert done.returncode == 0, done.stderr
    assert done.stderr.index("db-migrate: done in") < done.stderr.index("orchestrator: ready in")
    assert "4 service(s) running and healthy, 1 job(s) done" in done.stderr
    assert set(recorded_pids(cfg)) == set(CORE)  # the job's record went with it
    report = json.loads(run_script("system-health.py", "--config", str(cfg), "--json").stdout)
    assert "db-migrate" not in report["services"]  # a job is not a running service to probe


def test_a_job_that_fails_stops_its_dependents_with_its_log_tail(registry_file):
    cfg = registry_file(edit=with_job("--exit-code", "3"))
    done = restart(cfg, "--mode", "native")
    assert done.returncode == 1, done.stderr
    assert "db-migrate: exited with code 3" in done.stderr
    assert "| FATAL: migration 0002 failed (exit 3)" in done.stderr  # its last lines
    assert "orchestrator: not started: requires db-migrate, which failed" in done.stderr
    assert recorded_pids(cfg) == {}


def test_the_registry_says_what_a_job_cannot_have(registry_file):
    def probed_job(data):
        with_job()(data)
        data["services"]["db-migrate"]["health"] = {"type": "tcp"}
    with pytest.raises(ConfigError, match="oneshot job .* has no health probe"):
        load_registry(registry_file(edit=probed_job))

    def portless_service(data):
        del data["services"]["orchestrator"]["port"]
    with pytest.raises(ConfigError, match="service 'orchestrator': missing required key 'port'"):
        load_registry(registry_file(edit=portless_service, name="portless.yaml"))


@pytest.mark.docker
@pytest.mark.parametrize("flags, code", [((), 0), (("--exit-code", "3"), 1)], ids=["exit 0", "exit 3"])
def test_in_docker_a_job_container_that_exits_0_is_done(tmp_path, flags, code):
    config = write_job_registry(tmp_path)
    env = {"COMPOSE_PROFILES": "jobs", "TMT_SIM_ARGS_DB_MIGRATE": " ".join(flags)}
    try:
        done = restart(config, "--mode", "docker", env=env)
        assert done.returncode == code, done.stderr
        status = run_script("docker-restart.py", "--config", str(config), "status", env=env)
        if code == 0:
            assert done.stderr.index("db-migrate: done in") < done.stderr.index("orchestrator: ready in")
            assert status.returncode == 0, status.stdout  # a job that is done is not a service that is down
            again = run_script("docker-restart.py", "--config", str(config), "start", "--dry-run", env=env)
            assert again.returncode == 0 and "start db-migrate" not in again.stderr  # a start does not run it again
        else:
            assert status.returncode == 1
            assert "db-migrate: container" in done.stderr and "exited with code 3" in done.stderr
            assert "FATAL: migration 0002 failed" in done.stderr
            running = [c for c in Engine().containers(*container_labels(project_of(config))) if c["State"]["Running"]]
            assert running == []  # nothing that needs it was started
    finally:
        down(config)


def write_job_registry(tmp_path):
    from support import write_registry
    return write_registry(tmp_path, edit=with_job())
