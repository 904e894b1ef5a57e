"""Docker mode under faults, on a real engine: a restart checks the compose file and what it depends on
before anything stops, an interrupt or a hang-up during the stop still brings the stack back, a failed start
says exactly what runs, and health counts only what the service's own container answers."""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys

import pytest

import realservers as rs
from docker_helpers import CORE, dr, healthy_containers, project_of, stack, stack_config  # noqa: F401  (fixtures)
from support import REPO, free_ports, run_script, variant, wait_for

from tmt_ops.compose.containers import container_labels
from tmt_ops.engine import Engine
from tmt_ops.registry import load_registry

pytestmark = pytest.mark.docker
RESTART = str(REPO / "restart-trading-system.py")


def container_ids(config):
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Id"]
            for c in Engine().containers(*container_labels(project_of(config)))}


def in_down(config):
    """True once the stop has begun: a container of the project is no longer running."""
    return any(not c["State"]["Running"] for c in Engine().containers(*container_labels(project_of(config))))


def test_an_invalid_compose_file_is_found_before_anything_stops(stack, tmp_path):
    broken = tmp_path / "invalid.yml"
    broken.write_text("services:\n  orchestrator:\n    image: python:3.11-slim\n    ports: 8000\n")
    before = container_ids(stack)
    done = dr(stack, "--compose-file", str(broken), "restart", timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"preflight: compose file {broken} is not valid" in done.stderr
    assert container_ids(stack) == before


def test_a_required_dependency_on_the_host_that_is_down_stops_nothing(stack):
    def require_postgres(data):
        data["services"]["orchestrator"]["depends_on"]["postgres"] = "required"
    config = variant(stack, require_postgres, "requires-postgres.yaml")
    before = container_ids(stack)
    for done in (run_script("restart-trading-system.py", "--mode", "docker", "--config", str(config), timeout=300),
                 dr(config, "restart", timeout=300)):
        assert done.returncode == 1, done.stderr
        assert "preflight: PostgreSQL at 127.0.0.1:" in done.stderr and "orchestrator cannot run without it" in done.stderr
        assert container_ids(stack) == before


def test_an_interrupt_during_down_lets_it_finish_and_starts_the_stack_again(stack):
    proc = subprocess.Popen([sys.executable, RESTART, "--mode", "docker", "--config", str(stack)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        assert wait_for(lambda: in_down(stack), 120, 0.02)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "finishing the stops in flight, then starting again what this run stopped" in out
    assert "interrupted: what this run stopped was started again" in out
    assert sorted(healthy_containers(stack)) == sorted(CORE)


def test_a_hang_up_during_down_does_not_abort_the_restart(stack):
    before = container_ids(stack)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["NO_COLOR"] = "1"
        os.execv(sys.executable, [sys.executable, RESTART, "--mode", "docker", "--config", str(stack)])
    try:
        assert wait_for(lambda: in_down(stack), 120, 0.02)
    finally:
        os.close(fd)  # the terminal hangs up mid-`down`
    assert wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 300)
    after = healthy_containers(stack)
    assert sorted(after) == sorted(CORE) and all(after[n] != before[n] for n in CORE)


def test_a_failed_start_after_down_says_exactly_what_runs(stack):
    def short_startup(data):
        data["services"]["market-analysis"]["startup_timeout"] = 3
    config = variant(stack, short_startup, "short-startup.yaml")
    done = dr(config, "restart", env={"TMT_SIM_ARGS_MARKET_ANALYSIS": "--hang-health"}, timeout=300)
    assert done.returncode == 1, done.stderr
    line = next(li for li in done.stderr.splitlines() if li.startswith("now running: "))
    assert line == ("now running: orchestrator, market-analysis (starting); not running: execution-engine (stopped), "
                    "dashboard (stopped)"), line
    # and back, for the tests after this one: its hung container does not answer, so only --force stops it
    back = run_script("restart-trading-system.py", "--mode", "docker", "--config", str(stack), "--force", timeout=300)
    assert back.returncode == 0, back.stderr


def test_host_infrastructure_is_judged_by_its_probe_alone(stack, tmp_path):
    port = free_ports(1)[0]
    redis = rs.start_redis(tmp_path, port)
    try:
        config = variant(stack, lambda d: d["services"]["redis"].__setitem__("port", port), "host-redis.yaml")
        report = json.loads(run_script("system-health.py", "--mode", "docker", "--json", "--config", str(config)).stdout)
    finally:
        redis.stop()
    check = report["infrastructure"]["redis"]
    assert (check["status"], check["severity"], check["backend"]) == ("healthy", "healthy", None), check


def test_a_healthy_answer_on_a_port_whose_container_is_stopped_is_not_the_service(stack, tmp_path):
    port = load_registry(stack).service("orchestrator").port
    container = next(c for c in Engine().containers(*container_labels(project_of(stack)))
                     if c["Config"]["Labels"]["com.docker.compose.service"] == "orchestrator")
    subprocess.run(["docker", "stop", "-t", "1", container["Id"]], check=True, capture_output=True, timeout=60)
    stranger = rs.start_impostor(port, tmp_path / "impostor.log")
    try:
        done = run_script("system-health.py", "--mode", "docker", "--json", "--config", str(stack))
    finally:
        stranger.stop()
    check = json.loads(done.stdout)["services"]["orchestrator"]
    assert (check["status"], check["severity"]) == ("unhealthy", "critical"), check
    assert f"answered by pid {stranger.pid}" in check["error"] and "is stopped" in check["error"]
    assert [(h["pid"], h["ours"]) for h in check["port_holders"]] == [(stranger.pid, False)]
    assert done.returncode == 2
    assert dr(stack, "start", timeout=300).returncode == 0


@pytest.mark.parametrize("holder", ["process", "container"])
def test_a_port_taken_while_its_service_is_stopped_stops_the_restart_before_anything_stops(stack, holder):
    """Found only at `up`, the taken port would leave the service and everything that needs it down: the
    restart refuses first, naming the holder, and the services that ran run on, untouched."""
    assert dr(stack, "stop", "orchestrator", "--no-deps", timeout=120).returncode == 0
    before = container_ids(stack)
    port = load_registry(stack).service("orchestrator").port
    name = f"{project_of(stack)}-port-taker"
    taker = socket.socket()
    try:
        if holder == "process":  # as a server does: the stopped container's connections may linger in TIME_WAIT
            taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taker.bind(("127.0.0.1", port))
            taker.listen()
            expected = f"port {port} is held by pid {os.getpid()} ("
        else:
            image = Engine().container(before["market-analysis"])["Config"]["Image"]
            subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:9", image, "python3", "-c",
                            "import time; time.sleep(600)"], capture_output=True, text=True, check=True)
            expected = f"port {port} is published by container {name}"
        for done in (dr(stack, "restart", timeout=300),
                     run_script("restart-trading-system.py", "--mode", "docker", "--config", str(stack), timeout=300)):
            assert done.returncode == 1, done.stderr
            assert f"preflight: orchestrator: {expected}" in done.stderr, done.stderr
            assert f"not a container of compose project {project_of(stack)}" in done.stderr
            assert container_ids(stack) == before and "orchestrator" not in before
            assert sorted(healthy_containers(stack)) == ["dashboard", "execution-engine", "market-analysis"]
    finally:
        taker.close()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert dr(stack, "start", timeout=300).returncode == 0  # and back, for the tests after this one


@pytest.mark.parametrize("args", [("status", "--json"), ("status",), ("logs", "--tail", "50")])
def test_output_into_a_closed_pipe_ends_quietly(stack, args):
    proc = subprocess.Popen([sys.executable, str(REPO / "docker-restart.py"), "--config", str(stack), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) in (0, 1), err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_container_made_from_the_projects_image_outside_compose_is_not_the_projects(stack):
    """An image compose built carries the project's and a service's labels, and every container made from it
    inherits them: an operator's `docker run` of the image is not a container of the stack, never stopped."""
    project = project_of(stack)
    image = Engine().container(container_ids(stack)["orchestrator"])["Config"]["Image"]
    name = f"{project}-stranger"
    subprocess.run(  # the labels as an image built by this project gives them
        ["docker", "run", "-d", "--name", name, "--label", f"com.docker.compose.project={project}",
         "--label", "com.docker.compose.service=orchestrator", image, "python3", "-c", "import time; time.sleep(600)"],
        capture_output=True, text=True, check=True)
    try:
        status = json.loads(dr(stack, "status", "--json").stdout)
        assert name not in [c["container"] for c in status["containers"]] and len(status["containers"]) == len(CORE)
        plan = dr(stack, "stop", "--dry-run")
        assert plan.returncode == 0 and name not in plan.stderr
        health = json.loads(run_script("system-health.py", "--config", str(stack), "--mode", "docker", "--json").stdout)
        assert health["services"]["orchestrator"]["status"] == "healthy"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
