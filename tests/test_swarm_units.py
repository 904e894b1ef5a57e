"""Pure units of swarm mode: the stack file made from `compose config`, and the engine endpoint's choice."""

from __future__ import annotations

import hashlib
import json

import pytest

from support import write_registry

from tmt_ops.engine import endpoint
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry
from tmt_ops.swarm import stackfile

# `docker compose config --format json` of a service, as Compose v2 writes it
V2 = {
    "build": {"context": "/x"}, "container_name": "nope",
    "depends_on": {"orchestrator": {"condition": "service_healthy"}},
    "profiles": ["core"], "restart": "no", "image": "tmt-sim:local", "init": True,
    "command": ["python3", "-c", "print('$HOME')"], "environment": {"DATABASE_URL": "postgresql://u:pa$$w@db/x"},
    "healthcheck": {"test": ["CMD", "true"], "interval": "1s"}, "networks": {"default": None},
    "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8000, "published": "18000", "protocol": "tcp"}],
    "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
}


def registry(tmp_path, **service):
    tmp_path.mkdir(exist_ok=True)

    def edit(data):
        data["services"]["orchestrator"].update(service)
    return load_registry(write_registry(tmp_path, edit=edit))


def model(spec=V2):
    return {"services": {"orchestrator": spec, "market-analysis": dict(spec)},
            "networks": {"default": {"name": "proj_default", "ipam": {}}}, "volumes": {"data": {"name": "proj_data"}}}


def test_a_wave_document_holds_only_its_services_in_swarm_terms(tmp_path):
    orchestrator = registry(tmp_path).service("orchestrator")
    doc = stackfile.wave_document(model(), "proj", [orchestrator], {"orchestrator": 2}, "run-1")
    assert list(doc["services"]) == ["orchestrator"]  # a deploy leaves every service it is not given alone
    svc = doc["services"]["orchestrator"]
    for gone in ("build", "container_name", "depends_on", "profiles", "restart", "ports"):
        assert gone not in svc
    assert svc["deploy"]["replicas"] == 2
    assert svc["deploy"]["restart_policy"] == {"condition": "none"}  # compose's restart: "no"
    assert svc["deploy"]["update_config"]["order"] == "stop-first"  # never two at once
    assert svc["labels"][stackfile.ROLLOUT_LABEL] == "run-1"  # every deploy replaces the tasks
    assert svc["stop_grace_period"] == f"{orchestrator.stop_grace:g}s"
    assert doc["networks"] == {"default": {"ipam": {}}} and doc["volumes"] == {"data": None}  # the stack names them


def test_dollars_are_doubled_so_the_deploy_does_not_interpolate_again(tmp_path):
    orchestrator = registry(tmp_path).service("orchestrator")
    doc = stackfile.wave_document(model(), "proj", [orchestrator], {"orchestrator": 1}, "r")
    svc = doc["services"]["orchestrator"]
    assert svc["environment"]["DATABASE_URL"] == "postgresql://u:pa$$$$w@db/x"
    assert svc["command"][-1] == "print('$$HOME')"


def test_only_a_public_service_is_published_and_then_in_host_mode(tmp_path):
    public = registry(tmp_path, public=True).service("orchestrator")
    doc = stackfile.wave_document(model(), "proj", [public], {"orchestrator": 1}, "r")
    assert doc["services"]["orchestrator"]["ports"] == [{"target": 8000, "published": 18000, "protocol": "tcp",
                                                        "mode": "host"}]
    private = registry(tmp_path / "p", port=18000).service("orchestrator")
    assert stackfile.unpublished(model(), [private]) == ["orchestrator:18000"]
    assert stackfile.unpublished(model(), [public]) == []


@pytest.mark.parametrize("port, expected", [
    ("127.0.0.1:18000:8000/tcp", stackfile.PortMapping(8000, 18000, "127.0.0.1")),  # Compose v1's strings
    ("18000:8000", stackfile.PortMapping(8000, 18000, None)),
    ("8000", stackfile.PortMapping(8000, None, None)),
    ("[::1]:18000:8000/udp", stackfile.PortMapping(8000, 18000, "::1", "udp")),
])
def test_port_mappings_of_both_compose_versions(port, expected):
    assert stackfile.port_mappings({"ports": [port]}) == [expected]


def test_the_target_port_is_the_one_the_registry_port_is_published_from(tmp_path):
    service = registry(tmp_path, port=18000).service("orchestrator")
    assert stackfile.target_port(V2, service) == 8000
    assert stackfile.target_port({}, service) == 18000  # unmapped: it listens on the registry's port


@pytest.mark.parametrize("restart, policy", [
    (None, {"condition": "none"}), ("no", {"condition": "none"}), ("always", {"condition": "any"}),
    ("unless-stopped", {"condition": "any"}), ("on-failure:3", {"condition": "on-failure", "max_attempts": 3}),
])
def test_compose_restart_becomes_a_swarm_restart_policy(tmp_path, restart, policy):
    orchestrator = registry(tmp_path).service("orchestrator")
    doc = stackfile.wave_document(model({**V2, "restart": restart}), "p", [orchestrator], {"orchestrator": 1}, "r")
    assert doc["services"]["orchestrator"]["deploy"]["restart_policy"] == policy


# -- which engine: the docker CLI's own order --------------------------------------------------------------
def write_context(config_dir, name, host, tls=False):
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}}))
    if tls:
        (config_dir / "contexts" / "tls" / digest / "docker").mkdir(parents=True)


def test_endpoint_order_docker_host_then_docker_context_then_current_context(tmp_path):
    write_context(tmp_path, "remote", "tcp://10.0.0.9:2376", tls=True)
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    used = endpoint.resolve(env)
    assert (used.host, used.context, used.tls, used.source) == ("tcp://10.0.0.9:2376", "remote", True,
                                                                "docker context use")
    assert not used.plain  # TLS: the docker SDK's client, from the same context
    assert used.pin({"DOCKER_HOST": "x"}) == {"DOCKER_CONTEXT": "remote"}  # every CLI reaches that engine
    assert endpoint.resolve({**env, "DOCKER_CONTEXT": "default"}).host == endpoint.DEFAULT_HOST
    assert endpoint.resolve({**env, "DOCKER_HOST": "unix:///x.sock", "DOCKER_CONTEXT": "remote"}).host == \
        "unix:///x.sock"
    assert endpoint.resolve({"DOCKER_CONFIG": str(tmp_path / "none")}).host == endpoint.DEFAULT_HOST


def test_a_context_that_does_not_exist_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"docker context 'nope' \(chosen by DOCKER_CONTEXT\) does not exist"):
        endpoint.resolve({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nope"})


def test_the_stack_makes_only_the_networks_compose_would_name_after_its_project(tmp_path):
    orchestrator = registry(tmp_path).service("orchestrator")
    spec = {**V2, "networks": {"default": None, "back": None, "shared": None, "outside": None}}
    networks = {"default": {"name": "proj_default"}, "back": {}, "shared": {"name": "shared-net"},
                "outside": {"name": "outside", "external": True}}
    made = stackfile.stack_networks({**model(spec), "networks": networks}, "proj", "stk", [orchestrator])
    assert made == ["stk_back", "stk_default"]
    assert stackfile.stack_networks(model({**V2, "networks": None}), "proj", "stk", [orchestrator]) == ["stk_default"]
