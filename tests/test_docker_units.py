"""Pure pieces of the docker backend: timestamps, container states, the compose file's services, names."""

from __future__ import annotations

import json

import pytest

from tmt_ops.compose.containers import Container
from tmt_ops.engine import engine_time
from tmt_ops.compose.runner import port_variable
from tmt_ops.compose.stackfile import active_services, built, declared_services, pulled
from tmt_ops.states import ServiceState

from support import SHIPPED

pytestmark = pytest.mark.docker


def test_engine_time_reads_nanoseconds_and_the_zero_time():
    assert engine_time("1970-01-01T00:01:40.5Z") == 100.5
    assert engine_time("1970-01-01T00:01:40.425790881Z") == pytest.approx(100.425790881)
    assert engine_time("0001-01-01T00:00:00Z") is None
    assert engine_time(None) is None


def inspected(status, exit_code=0, health=None):
    state = {"Status": status, "ExitCode": exit_code, "StartedAt": "2026-11-24T00:19:07.4Z"}
    if health:
        state["Health"] = {"Status": health}
    return {"Id": "c0ffee", "Image": "sha256:5eed", "State": state, "Name": "/p-orchestrator-1", "RestartCount": 2, "Config": {
        "Labels": {"com.docker.compose.service": "orchestrator"}, "Image": "tmt-sim:local"},
        "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18000"}], "9/tcp": None}}}


@pytest.mark.parametrize("status, exit_code, health, state", [
    ("running", 0, "healthy", ServiceState.RUNNING), ("running", 0, None, ServiceState.RUNNING),
    ("running", 0, "starting", ServiceState.STARTING), ("running", 0, "unhealthy", ServiceState.RUNNING),
    ("exited", 0, None, ServiceState.STOPPED), ("exited", 137, None, ServiceState.FAILED),
    ("restarting", 1, None, ServiceState.FAILED), ("dead", 0, None, ServiceState.FAILED),
    ("created", 0, None, ServiceState.STOPPED)])
def test_container_state_in_the_toolkit_vocabulary(status, exit_code, health, state):
    c = Container.from_inspect(inspected(status, exit_code, health))
    assert c.state is state
    assert (c.service, c.name, c.restart_count, c.ports) == ("orchestrator", "p-orchestrator-1", 2,
                                                            ("127.0.0.1:18000->8000/tcp",))
    assert c.exit_code == (exit_code if status in ("exited", "dead") else None)
    assert (c.uptime_seconds is not None) == (status == "running")


def test_active_services_follow_compose_profiles(tmp_path):
    path = tmp_path / "compose.yml"
    path.write_text("x-b: &b {build: ., image: one}\nservices:\n  a: *b\n  b: *b\n  c: {build: ., image: two}\n"
                    "  db: {image: postgres, profiles: [infra]}\n")
    declared = declared_services(path)
    assert list(declared) == ["a", "b", "c", "db"]
    assert list(active_services(declared, {})) == ["a", "b", "c"]
    assert list(active_services(declared, {"COMPOSE_PROFILES": "x, infra"})) == ["a", "b", "c", "db"]
    everything = active_services(declared, {"COMPOSE_PROFILES": "infra"})
    assert built(everything) == ["a", "c"]  # a and b share one image: one build
    assert pulled(everything) == ["db"]


def test_compose_file_problems_are_configuration_errors(tmp_path):
    from tmt_ops.errors import ConfigError
    with pytest.raises(ConfigError, match="not found"):
        declared_services(tmp_path / "missing.yml")
    (tmp_path / "empty.yml").write_text("services: {}\n")
    with pytest.raises(ConfigError, match="declares no services"):
        declared_services(tmp_path / "empty.yml")


def test_the_shipped_compose_file_takes_every_registry_port_from_its_variable():
    from tmt_ops.registry import load_registry
    registry = load_registry(SHIPPED)
    text = registry.compose_file.read_text()
    assert port_variable("market-analysis") == "TMT_PORT_MARKET_ANALYSIS"
    for service in registry.services.values():
        assert "${" + port_variable(service.compose_service) in text, service.name
    core = active_services(declared_services(registry.compose_file), {})
    assert set(core) == {s.compose_service for s in registry.managed}
    for service in registry.managed:  # (infrastructure images listen on their own ports inside containers)
        assert str(service.port) not in str(core[service.compose_service]), f"{service.name}: a port literal"


def test_the_bench_reads_both_shapes_of_compose_ps_json():
    """JSON lines (Compose >= 2.21) and one JSON array (before): the bench compares against either."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_docker", SHIPPED.parents[1] / "bench" / "bench_docker.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [{"Name": "p-a-1", "State": "running"}, {"Name": "p-b-1", "State": "exited"}]
    lines = "\n".join(json.dumps(r) for r in rows) + "\n"
    assert bench.parse_ps(lines) == rows
    assert bench.parse_ps(json.dumps(rows)) == rows
    assert bench.parse_ps("") == []
