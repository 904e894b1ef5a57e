"""docker-restart.py against a real engine: one stack, started once, driven through every subcommand.

The tests share one stack (a start costs seconds): in file order it is started once by the start test and
driven through status, logs, clean refusal, restart, clean and stop; run alone, a test gets it started by
the `stack` fixture. Another compose project with the same service names lives beside it and
must survive every one of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import docker
import pytest

from docker_helpers import CORE, dr, project_of, stack, stack_config  # noqa: F401  (fixtures)
from support import REPO, wait_for, write_registry

from tmt_ops.backends import Deployment
from tmt_ops.compose.containers import container_labels, project_label
from tmt_ops.engine import Engine
from tmt_ops.compose.flavour import compose_command
from tmt_ops.ports import port_open
from tmt_ops.registry import load_registry
from tmt_ops.states import ServiceState

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def neighbour(tmp_path_factory):
    """Another compose project's container, volume and network, labelled with the same service names."""
    client = docker.from_env()
    project = project_of(write_registry(tmp_path_factory.mktemp("neighbour")))
    labels = {"com.docker.compose.project": project, "com.docker.compose.service": "orchestrator"}
    volume = client.volumes.create(f"{project}_postgres-data", labels={"com.docker.compose.project": project})
    network = client.networks.create(f"{project}_default", labels={"com.docker.compose.project": project})
    container = client.containers.run("python:3.11-slim", ["python3", "-c", "import time; time.sleep(600)"],
                                      name=f"{project}-orchestrator-1", labels=labels, detach=True, init=True)
    yield container
    container.remove(force=True)
    network.remove()
    volume.remove(force=True)


def containers(config):
    engine = Engine()
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c
            for c in engine.containers(*container_labels(project_of(config)))}


def test_start_waits_until_every_service_is_healthy(stack_config, neighbour):
    stack = stack_config
    done = dr(stack, "start", timeout=300)
    assert done.returncode == 0, done.stderr
    found = containers(stack)
    assert sorted(found) == sorted(CORE)
    assert all(c["State"]["Health"]["Status"] == "healthy" for c in found.values())
    registry = load_registry(stack)
    for name in CORE:  # published on the registry's (free) ports
        assert port_open("127.0.0.1", registry.service(name).port)
    assert "dashboard: ready" in done.stderr


def test_status_table_and_json(stack):
    table = dr(stack, "status")
    assert table.returncode == 0, table.stderr
    registry = load_registry(stack)
    for name in CORE:
        line = next(li for li in table.stdout.splitlines() if li.startswith(name + " "))
        assert "running" in line and "healthy" in line and f":{registry.service(name).port}->" in line
    doc = json.loads(dr(stack, "status", "--json").stdout)
    assert doc["version"] == 1 and doc["project"] == project_of(stack)
    rows = {c["service"]: c for c in doc["containers"]}
    assert sorted(rows) == sorted(CORE)
    for name, row in rows.items():
        assert row["registry_service"] == name
        assert (row["state"], row["health"], row["restart_count"], row["exit_code"]) == ("running", "healthy", 0, None)
        assert row["uptime_seconds"] > 0
        assert row["ports"] == [f"127.0.0.1:{registry.service(name).port}->{registry.service(name).port}/tcp"]


def test_contract_statuses_and_project_running(stack):
    registry = load_registry(stack)
    compose = Deployment(registry, "docker").default
    assert compose.detect(registry)
    found = compose.statuses([s for s in registry.services.values() if compose.claims(s)])
    assert sorted(found) == sorted(CORE)
    assert {(s.state, s.engine_health) for s in found.values()} == {(ServiceState.RUNNING, "healthy")}


def test_logs_of_one_service_as_the_spec_writes_it(stack):
    done = dr(stack, "logs", "orchestrator", "--tail", "5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert 0 < len(lines) <= 5 and all(li.startswith("orchestrator") for li in lines)
    other = dr(stack, "logs", "--tail", "2", "market-analysis").stdout.splitlines()
    assert len(other) == 2 and all(li.startswith("market-analysis") for li in other)
    wrong = dr(stack, "logs", "orchestrater")
    assert wrong.returncode == 2 and "did you mean 'orchestrator'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_logs_follow_streams_until_interrupted(stack):
    follow = subprocess.Popen([sys.executable, str(REPO / "docker-restart.py"), "--config", str(stack), "logs",
                               "orchestrator", "--follow", "--tail", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        first = follow.stdout.readline()
        assert first.startswith("orchestrator")
        second = follow.stdout.readline()  # a new line: the healthcheck asks every second
        assert second.startswith("orchestrator") and second != first
        follow.send_signal(signal.SIGINT)
        assert follow.wait(10) == 130
    finally:
        follow.kill()
        follow.wait()


def test_clean_without_yes_and_without_terminal_refuses(stack):
    before = {name: c["Id"] for name, c in containers(stack).items()}
    done = dr(stack, "clean")
    assert done.returncode == 2
    assert "pass --yes" in done.stderr and "Traceback" not in done.stderr
    assert {name: c["Id"] for name, c in containers(stack).items()} == before


def test_clean_on_a_terminal_asks_and_a_no_removes_nothing(stack):
    from tmt_ops.clean import clean
    from tmt_ops.console import Printer
    from tmt_ops.interrupts import Interrupts
    before = {name: c["Id"] for name, c in containers(stack).items()}
    questions = []
    deployment = Deployment(load_registry(stack), "docker")
    result = clean(deployment, Printer(colour=False), Interrupts(), yes=False, interactive=True,
                   ask=lambda q: questions.append(q) or "n")
    assert result.exit_code == 1 and questions == ["Delete them and restart? [y/N] "]
    assert {name: c["Id"] for name, c in containers(stack).items()} == before


def test_restart_replaces_every_container_and_calls_pre_stop_hooks(stack, neighbour):
    before = {name: c["Id"] for name, c in containers(stack).items()}
    done = dr(stack, "restart", timeout=300)
    assert done.returncode == 0, done.stderr
    after = containers(stack)
    assert sorted(after) == sorted(CORE)
    assert all(after[name]["Id"] != before[name] for name in CORE)
    assert all(c["State"]["Health"]["Status"] == "healthy" for c in after.values())
    assert "execution-engine: pre-stop POST /api/trading/disable -> HTTP 200" in done.stderr
    assert "4 service(s) running and healthy" in done.stderr  # the summary closes a restart
    neighbour.reload()
    assert neighbour.status == "running"


def test_a_failed_build_leaves_the_running_stack_alone(stack, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN exit 3\n")
    broken = tmp_path / "broken.yml"
    broken.write_text(f"services:\n  orchestrator:\n    build: {tmp_path}\n    image: tmt-test-broken:never\n")
    before = {name: c["Id"] for name, c in containers(stack).items()}
    done = dr(stack, "--compose-file", str(broken), "restart", timeout=120)
    assert done.returncode == 1
    assert f"error: `{' '.join(compose_command())} build orchestrator` failed" in done.stderr
    assert {name: c["Id"] for name, c in containers(stack).items()} == before


def test_clean_deletes_only_this_projects_volumes(stack, neighbour):
    client = docker.from_env()
    project = project_of(stack)
    client.volumes.create(f"{project}_postgres-data", labels={"com.docker.compose.project": project,
                                                                "com.docker.compose.volume": "postgres-data"})
    done = dr(stack, "clean", "--yes", timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{project}_postgres-data" in done.stderr  # listed before it goes
    assert not Engine().volumes(project_label(project))
    other = neighbour.labels["com.docker.compose.project"]
    assert Engine().volumes(project_label(other)) == [f"{other}_postgres-data"]
    assert Engine().networks(project_label(other)) == [f"{other}_default"]
    assert sorted(containers(stack)) == sorted(CORE)  # and started again
    neighbour.reload()
    assert neighbour.status == "running"


def test_stop_removes_this_project_only(stack, neighbour):
    ports = [load_registry(stack).service(n).port for n in CORE]
    done = dr(stack, "stop", timeout=120)
    assert done.returncode == 0, done.stderr
    assert not containers(stack)
    assert wait_for(lambda: not any(port_open("127.0.0.1", p) for p in ports), timeout=5)
    neighbour.reload()
    assert neighbour.status == "running"
    assert dr(stack, "status").returncode == 1  # nothing runs
    registry = load_registry(stack)
    assert not Deployment(registry, "docker").default.detect(registry)
