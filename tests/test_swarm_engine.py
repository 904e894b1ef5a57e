"""Which engine the scripts talk to: DOCKER_CONTEXT, the current `docker context`, and DOCKER_HOST are honoured
by the toolkit's own engine client and by every docker CLI it runs alike; an engine that is no swarm manager
is one clear line before anything changes."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from engine_proxy import EngineProxy
from support import free_ports, wait_for, write_registry
from swarm_helpers import remove_stack, services, sw, task_ids

from tmt_ops.ports import port_open

pytestmark = pytest.mark.docker

CONTEXT = "tmt-test-context"


@pytest.fixture
def proxy(tmp_path):
    p = EngineProxy(tmp_path / "engine.sock")
    yield p
    p.close()


@pytest.fixture
def docker_config(tmp_path, proxy):
    """A docker configuration of its own with a context whose engine address is the proxy, made by the docker
    CLI itself; the CLI plugins (Compose v2) are the user's."""
    config = tmp_path / "docker-config"
    config.mkdir()
    plugins = Path.home() / ".docker" / "cli-plugins"
    if plugins.is_dir():
        (config / "cli-plugins").symlink_to(plugins)
    subprocess.run(["docker", "context", "create", CONTEXT, "--docker", f"host={proxy.host}"], check=True,
                   capture_output=True, env={**os.environ, "DOCKER_CONFIG": str(config)})
    return config


def test_docker_context_reaches_the_toolkit_and_the_docker_cli_alike(tmp_path, proxy, docker_config):
    config = write_registry(tmp_path)
    env = {"DOCKER_CONFIG": str(docker_config), "DOCKER_CONTEXT": CONTEXT}
    try:
        done = sw(config, "docker-restart.py", "restart", "orchestrator", "--no-deps", env=env)
        assert done.returncode == 0, done.stderr
        assert task_ids(config).keys() == {"orchestrator"}
        # the toolkit's own queries and the docker CLI's deploy went to the context's engine
        assert {"tmt-ops", "Docker-Client"} <= proxy.agents(), proxy.requests[:5]
        assert any(agent.startswith("Docker-Client") and method == "POST" and "/services/" in path
                   for agent, method, path in proxy.requests)
    finally:
        remove_stack(config)


def test_the_current_context_of_docker_context_use_is_honoured(tmp_path, proxy, docker_config):
    subprocess.run(["docker", "context", "use", CONTEXT], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_CONFIG": str(docker_config)})
    config = write_registry(tmp_path)
    env = {"DOCKER_CONFIG": str(docker_config)}
    try:
        status = sw(config, "docker-restart.py", "status", env=env)
        assert status.returncode == 1  # nothing of this stack runs yet
        done = sw(config, "restart-trading-system.py", "--only", "orchestrator", "--no-deps", env=env)
        assert done.returncode == 0, done.stderr
        assert {"tmt-ops", "Docker-Client"} <= proxy.agents()
    finally:
        remove_stack(config)


def test_docker_host_keeps_working_and_wins_over_a_context(tmp_path, proxy, docker_config):
    config = write_registry(tmp_path)
    done = sw(config, "system-health.py", "--json", env={"DOCKER_HOST": proxy.host, "DOCKER_CONTEXT": "nope",
                                                         "DOCKER_CONFIG": str(docker_config)})
    assert json.loads(done.stdout)["deployment_mode"] == "swarm"
    assert "tmt-ops" in proxy.agents()


def test_a_context_that_does_not_exist_is_one_line_and_exit_2(tmp_path, docker_config):
    config = write_registry(tmp_path)
    for script, code in (("docker-restart.py", 2), ("restart-trading-system.py", 2), ("system-health.py", 3)):
        done = sw(config, script, env={"DOCKER_CONFIG": str(docker_config), "DOCKER_CONTEXT": "nope"})
        assert done.returncode == code, (script, done.stderr)
        assert "docker context 'nope' (chosen by DOCKER_CONTEXT) does not exist" in done.stderr.splitlines()[-1]
        assert "Traceback" not in done.stderr


class _NotAManager(http.server.BaseHTTPRequestHandler):
    """An engine that is no swarm manager, as the real one answers then."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/_ping"):
            self._answer(200, b"OK", "text/plain")
        elif self.path.startswith("/info"):
            self._answer(200, json.dumps({"Name": "fake", "Swarm": {"LocalNodeState": "inactive",
                                                                    "ControlAvailable": False}}).encode())
        elif self.path.startswith(("/services", "/tasks", "/nodes")):
            self._answer(503, b'{"message":"This node is not a swarm manager. Use \\"docker swarm init\\"."}')
        else:
            self._answer(404, b'{"message":"page not found"}')

    do_POST = do_DELETE = do_GET

    def _answer(self, code: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def test_an_engine_that_is_no_swarm_manager_is_one_line_before_any_change(tmp_path):
    server = _UnixHTTPServer(str(tmp_path / "fake.sock"), _NotAManager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = write_registry(tmp_path)
        for script in ("restart-trading-system.py", "stop-trading-system.py", "docker-restart.py"):
            done = sw(config, script, env={"DOCKER_HOST": f"unix://{tmp_path / 'fake.sock'}"})
            assert done.returncode == 2, (script, done.stderr)
            assert "is not a swarm manager (swarm: inactive): run `docker swarm init` there" in done.stderr
            assert "Traceback" not in done.stderr
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def image_registry(tmp_path):
    """A container registry of this test's own (Debian's docker-registry) on a free loopback port: the engine
    treats 127.0.0.0/8 registries as insecure (plain HTTP) by default."""
    (port,) = free_ports(1)
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'blobs'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: port_open("127.0.0.1", port, 0.2), 15), "docker-registry did not start"
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_tmt_swarm_push_sends_built_images_to_their_registry_and_deploys_by_digest(tmp_path, image_registry):
    """What a swarm of several nodes needs, shown on one: the image every node can pull by digest."""
    image = f"{image_registry}/tmt-sim:test"
    config = write_registry(tmp_path)
    env = {"TMT_SIM_IMAGE": image, "TMT_SWARM_PUSH": "1"}
    try:
        done = sw(config, "docker-restart.py", "restart", "orchestrator", "--no-deps", env=env)
        assert done.returncode == 0, done.stderr
        assert f"pushing {image}, the image of orchestrator (TMT_SWARM_PUSH=1)" in done.stderr
        with urllib.request.urlopen(f"http://{image_registry}/v2/tmt-sim/tags/list", timeout=5) as answer:
            assert json.load(answer)["tags"] == ["test"]
        spec = services(config)["orchestrator"]["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert spec["Image"].startswith(f"{image}@sha256:")  # pinned by digest: every node runs the same image
        assert task_ids(config).keys() == {"orchestrator"}
    finally:
        remove_stack(config)
        subprocess.run(["docker", "image", "rm", image], capture_output=True)
