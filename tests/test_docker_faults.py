"""docker-restart.py when things go wrong: a healthcheck that never passes, no engine, no compose, and the
Compose v1 fallback (Debian's docker-compose 1.29). Each test has its own compose project and free ports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

import pytest
import yaml

from docker_helpers import dr, down, project_of
from support import write_registry

from tmt_ops.compose.containers import project_label
from tmt_ops.engine import Engine
from tmt_ops.registry import load_registry

pytestmark = pytest.mark.docker



@pytest.fixture
def project(tmp_path):
    made = []

    def make(**kwargs):
        made.append(write_registry(tmp_path, **kwargs))
        return made[-1]

    yield make
    for config in made:
        down(config)


def test_a_healthcheck_that_never_passes_fails_the_start_within_the_registry_timeout(project):
    def short_startup(data):
        data["services"]["orchestrator"]["startup_timeout"] = 5
    config = project(edit=short_startup)
    began = time.monotonic()
    done = dr(config, "start", env={"TMT_SIM_ARGS_ORCHESTRATOR": "--hang-health"}, timeout=120)
    took = time.monotonic() - began
    assert done.returncode == 1, done.stderr
    assert took < 40, f"the wait was not bounded by the 5 s startup timeout: {took:.0f}s"
    assert "orchestrator: not ready within 5s of its start" in done.stderr
    assert "market-analysis: not started: requires orchestrator, which failed" in done.stderr
    assert "orchestrator: not ready within 5s" in done.stderr and "its output (this run's, errors first):" in done.stderr
    assert "listening on 0.0.0.0" in done.stderr  # its logs are shown
    assert "Traceback" not in done.stderr
    status = json.loads(dr(config, "status", "--json").stdout)  # nothing was started after it
    assert [(c["service"], c["status"], c["health"]) for c in status["containers"]] == [
        ("orchestrator", "running", "starting")]


def test_a_port_held_on_the_host_stops_the_start_before_anything_starts(project):
    config = project()
    port = load_registry(config).service("market-analysis").port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = dr(config, "start", timeout=120)
    assert done.returncode == 1, done.stderr
    assert (f"preflight: market-analysis: port {port} is held by pid {os.getpid()} (" in done.stderr
            and f"not a container of compose project {project_of(config)}: stop it, or give market-analysis another "
                "port in the registry" in done.stderr), done.stderr
    assert "nothing was stopped or started" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(dr(config, "status", "--json").stdout)["containers"] == []


SERVER = """
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"system_health": "healthy", "trading_enabled": true}')  # the orchestrator's shape
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), Health).serve_forever()
"""


def test_an_image_that_cannot_be_pulled_is_a_warning_and_the_registry_probe_decides_readiness(tmp_path):
    """A service without build and without healthcheck, in a compose file and project named on the command line."""
    config = write_registry(tmp_path)
    compose_file = tmp_path / "pulled.yml"
    compose_file.write_text(yaml.safe_dump({"services": {"orchestrator": {
        "image": "python:3.11-slim",  # local only: no registry answers here
        "command": ["python3", "-c", SERVER, "${TMT_PORT_ORCHESTRATOR}"],
        "ports": ["127.0.0.1:${TMT_PORT_ORCHESTRATOR}:${TMT_PORT_ORCHESTRATOR}"]}}}))
    project = f"{project_of(config)}-pulled"
    args = ("--compose-file", str(compose_file), "--project-name", project)
    try:
        done = dr(config, *args, "start", timeout=120)
        assert done.returncode == 0, done.stderr
        assert "pull failed, using local images" in done.stderr
        assert "orchestrator: ready" in done.stderr
        status = json.loads(dr(config, *args, "status", "--json").stdout)
        assert status["project"] == project
        assert [(c["service"], c["status"], c["health"]) for c in status["containers"]] == [
            ("orchestrator", "running", None)]
    finally:
        down(config, project, compose_file)


@pytest.mark.parametrize("command", ["status", "start", "stop", "logs"])
def test_no_engine_is_one_clear_line_and_exit_2(tmp_path, command):
    config = write_registry(tmp_path)
    done = dr(config, command, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (
        "error: no Docker engine answers at unix:///nonexistent.sock (DOCKER_HOST) (FileNotFoundError: [Errno 2] No "
        "such file or directory); start it (e.g. `dockerd` or `systemctl start docker`) or point DOCKER_HOST or "
        "DOCKER_CONTEXT at a running engine")
    assert lines[:-1] in ([], ["mode: docker (nothing of this registry runs: the default)"])  # an operation says it


def test_no_compose_is_one_clear_line_and_exit_2(tmp_path):
    config = write_registry(tmp_path)
    done = dr(config, "start", env={"TMT_COMPOSE": "no-such-compose"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: TMT_COMPOSE='no-such-compose' does not answer")
    empty = dr(config, "start", env={"PATH": str(tmp_path)})  # neither docker nor docker-compose on PATH
    assert empty.returncode == 2
    assert "neither `docker compose` (Compose v2) nor `docker-compose` (v1) answers" in empty.stderr


def test_a_missing_compose_file_is_a_configuration_error(tmp_path):
    done = dr(write_registry(tmp_path), "--compose-file", str(tmp_path / "nope.yml"), "start")
    assert done.returncode == 2
    assert f"compose file {tmp_path / 'nope.yml'} not found" in done.stderr


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="Compose v1 (docker-compose) is not installed")
def test_compose_v1_starts_reports_and_stops(project):
    config = project()
    v1 = {"TMT_COMPOSE": "docker-compose"}
    started = dr(config, "start", env=v1, timeout=300)
    assert started.returncode == 0, started.stderr
    status = json.loads(dr(config, "status", "--json", env=v1).stdout)
    assert sorted((c["service"], c["health"]) for c in status["containers"]) == [
        ("dashboard", "healthy"), ("execution-engine", "healthy"), ("market-analysis", "healthy"),
        ("orchestrator", "healthy")]
    assert all(c["container"].startswith(project_of(config) + "_") for c in status["containers"])  # v1 names
    logs = dr(config, "logs", "orchestrator", "--tail", "3", env=v1)
    lines = [li for li in logs.stdout.splitlines() if not li.startswith("Attaching to ")]  # v1 says so on stdout
    assert logs.returncode == 0 and 0 < len(lines) <= 3 and all(li.startswith("orchestrator") for li in lines)
    stopped = dr(config, "stop", env=v1, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert not Engine().container_ids(project_label(project_of(config)))
