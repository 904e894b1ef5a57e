"""Pure units of swarm mode: the stack file made from `compose config`, and the engine endpoint's choice."""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest

from support import write_registry

from tmt_ops.engine import endpoint
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry
from tmt_ops.states import ServiceState
from tmt_ops.swarm import stackfile, state

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


# -- issue 19: what a swarm of several nodes needs --------------------------------------------------------------
def test_the_registry_says_replicas_placement_and_endpoint_mode_and_overrides_the_compose_file(tmp_path):
    swarm = {"replicas": 2, "placement": ["node.labels.db==true", "node.role != manager"], "endpoint_mode": "vip"}
    orchestrator = registry(tmp_path, swarm=swarm).service("orchestrator")
    assert (orchestrator.swarm.replicas, orchestrator.swarm.placement, orchestrator.swarm.endpoint_mode) == \
        (2, ("node.labels.db == true", "node.role != manager"), "vip")
    given = {**V2, "deploy": {"placement": {"constraints": ["node.hostname == a"], "preferences": [{"spread": "x"}]},
                              "endpoint_mode": "dnsrr", "resources": {"limits": {"cpus": "1"}}}}
    deploy = stackfile.wave_document(model(given), "p", [orchestrator], {"orchestrator": 2}, "r")["services"][
        "orchestrator"]["deploy"]
    assert deploy["placement"] == {"constraints": ["node.labels.db == true", "node.role != manager"],
                                   "preferences": [{"spread": "x"}]}  # the registry's constraints, the rest kept
    assert deploy["endpoint_mode"] == "vip" and deploy["resources"] == {"limits": {"cpus": "1"}}
    # without the registry's keys the compose file's deploy block is what counts; dnsrr is the default
    plain = registry(tmp_path / "plain").service("orchestrator")
    deploy = stackfile.wave_document(model(given), "p", [plain], {"orchestrator": 1}, "r")["services"][
        "orchestrator"]["deploy"]
    assert deploy["placement"]["constraints"] == ["node.hostname == a"] and deploy["endpoint_mode"] == "dnsrr"
    assert stackfile.wave_document(model(), "p", [plain], {"orchestrator": 1}, "r")["services"]["orchestrator"][
        "deploy"]["endpoint_mode"] == "dnsrr"  # no deploy block at all: no virtual IP (it needs IPVS)


@pytest.mark.parametrize("swarm, problem", [
    ({"replicas": 0}, "replicas: must be an integer from 1 to 1000"),
    ({"replicas": "two"}, "replicas: expected"),
    ({"placement": "node.role == worker"}, "placement: expected"),
    ({"placement": ["node.role = worker"]}, "is not a constraint"),
    ({"placement": ["node.rol == worker"]}, "unknown attribute 'node.rol' (did you mean 'node.role'?)"),
    ({"placement": ["node.labels. == x"]}, "unknown attribute"),
    ({"placement": ["node.role == leader"]}, "node.role is manager or worker"),
    ({"endpoint_mode": "dns"}, "endpoint_mode: must be one of vip, dnsrr"),
    ({"replica": 2}, "unknown key 'replica'"),
])
def test_the_swarm_keys_are_checked_when_the_registry_loads(tmp_path, swarm, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        registry(tmp_path, swarm=swarm)


def test_a_service_with_its_data_in_a_local_volume_is_pinned_to_its_node(tmp_path):
    orchestrator = registry(tmp_path).service("orchestrator")
    assert stackfile.local_volumes(model(), V2) == ["data"]
    assert stackfile.local_volumes({**model(), "volumes": {"data": {"driver": "nfs-plugin"}}}, V2) == []
    svc = stackfile.wave_document(model(), "p", [orchestrator], {"orchestrator": 1}, "r", {"orchestrator": "n1"})
    assert svc["services"]["orchestrator"]["deploy"]["placement"] == {"constraints": ["node.id == n1"]}


def node(**kw):
    base = dict(id="n1", hostname="w1", address="10.0.0.1", state="ready", availability="active", manager=None,
                labels={"db": "true"}, engine_labels={}, platform=("linux", "x86_64"))
    return state.Node(**{**base, **kw})


def test_a_node_satisfies_placement_constraints_as_swarm_matches_them():
    w1 = node()
    assert w1.satisfies("node.labels.db == TRUE") and not w1.satisfies("node.labels.db != true")
    assert w1.satisfies("node.role == worker") and not node(manager="leader").satisfies("node.role == worker")
    assert w1.satisfies("node.labels.ssd != true")  # a label it does not have
    assert w1.satisfies("node.hostname == w1") and w1.satisfies("node.platform.os == linux")
    assert (w1.usable, node(availability="drain").note, node(state="down").note) == (True, "drained", "down")


def task(**kw):
    base = dict(id="t1", name="stk_x.1", node="w1", node_id="n1", state="running", desired="running", error="",
                exit_code=None, container="c1", since=100.0, rollout="run-2", slot=1)
    return state.Task(**{**base, **kw})


def test_a_task_of_the_roll_that_the_swarm_gave_up_on_fails_the_wait_at_once(tmp_path):
    """A worker lost mid-roll: its new task is shut down by the swarm before it ran; nothing will bring it up."""
    from tmt_ops.swarm import ready
    orchestrator = registry(tmp_path).service("orchestrator")
    gone = task(state="assigned", desired="shutdown", node_note="down", container=None)
    now = time.time()
    svc = state.SwarmService("s1", "stk_x", "x", 1, True, (), (gone,))
    why, which = ready._verdict(None, orchestrator, svc, 1, "run-2", now, None, frozenset())
    assert which is gone and why == ("task stk_x.1 on w1 (down): assigned, shut down by the swarm (its node is "
                                     "down); nothing will start it")
    # a task of a node not seen down (yet) is awaited; one there before (a rollback's) never fails the wait
    waiting = state.SwarmService("s1", "stk_x", "x", 1, True, (), (task(state="assigned", container=None),))
    assert ready._verdict(None, orchestrator, waiting, 1, "run-2", now, None, frozenset()) == (None, None)
    assert ready._verdict(None, orchestrator, svc, 1, "run-2", now, None, frozenset({"t1"})) == (None, None)


class LosingWorker:
    """An engine whose worker w1 is lost after `after` requests: from then on the node is down and the swarm has
    given up the task it held (in the engine, as in swarmkit, the node is marked down first)."""

    def __init__(self, after):
        self.after, self.asked = after, 0

    def _ask(self):
        self.asked += 1
        return self.asked > self.after

    def services(self, *labels):
        self._ask()
        spec = {"Name": "stk_x", "TaskTemplate": {"ContainerSpec": {"Labels": {stackfile.ROLLOUT_LABEL: "run-2"}}},
                "Mode": {"Replicated": {"Replicas": 1}}}
        return [{"ID": "s1", "Spec": spec}]

    def tasks(self, ids):
        lost = self._ask()
        return [{"ID": "t1", "ServiceID": "s1", "NodeID": "n1", "Slot": 1,
                 "DesiredState": "shutdown" if lost else "running", "Status": {"State": "assigned"},
                 "Spec": {"ContainerSpec": {"Labels": {stackfile.ROLLOUT_LABEL: "run-2"}}}}]

    def nodes(self):
        lost = self._ask()
        return [{"ID": "n1", "Description": {"Hostname": "w1"}, "Status": {"State": "down" if lost else "ready"},
                 "Spec": {"Availability": "active"}}]


@pytest.mark.parametrize("after", [0, 1, 2, 3])
def test_a_task_the_swarm_gave_up_is_seen_with_its_lost_node_whenever_the_loss_falls_between_the_requests(
        tmp_path, after):
    """A snapshot is three requests, not one instant. Whichever two of them the node's loss falls between, a task
    seen given up is seen on a node seen down: the wait's verdict names the lost node, never a node still ready."""
    from tmt_ops.swarm import ready
    orchestrator = registry(tmp_path).service("orchestrator")
    snap = state.take(LosingWorker(after), "stk", ["x"])
    task = snap.services["x"].tasks[0]
    why, _ = ready._verdict(None, orchestrator, snap.services["x"], 1, "run-2", time.time(), None, frozenset())
    if after < 3:  # the loss was seen
        assert task.node_note == "down", task
        assert why.startswith("task stk_x.1 on w1 (down): assigned") and why.endswith("; nothing will start it"), why
    else:
        assert not task.given_up and why is None


def test_a_service_says_which_replicas_do_not_run_and_an_update_the_engine_left_paused():
    running = task(id="a", name="stk_x.1", slot=1)
    killed = task(id="b", name="stk_x.2", slot=2, node="w2", state="failed", error="task: non-zero exit (137)",
                  exit_code=137)
    svc = state.SwarmService("s1", "stk_x", "x", 2, True, (), (running, killed),
                             update=("paused", "update paused due to failure"))
    assert svc.missing() == [killed]
    assert svc.update_stuck == "update paused: update paused due to failure"
    assert state.SwarmService("s1", "stk_x", "x", 1, True, (), (), update=("completed", "")).update_stuck is None


def test_while_swarms_own_restart_is_due_the_service_is_starting_so_heal_does_not_start_a_second_task(tmp_path):
    """A service whose compose file asks for swarm's restarts (`restart: always`): its task just ended, the swarm
    makes another after the policy's delay. Until then it is starting, not down; with policy none it is down."""
    orchestrator = registry(tmp_path).service("orchestrator")
    ended = task(state="failed", desired="shutdown", since=time.time() - 2, exit_code=137)

    def snapshot(restart_after):
        svc = state.SwarmService("s1", "stk_orchestrator", "orchestrator", 1, True, (), (ended,),
                                 restart_after=restart_after)
        return state.Snapshot("stk", {"orchestrator": svc}, {})
    assert snapshot(5.0).status(orchestrator).state is ServiceState.STARTING
    assert "the swarm starts it again" in snapshot(5.0).status(orchestrator).detail
    assert snapshot(None).status(orchestrator).state is ServiceState.FAILED
    assert state._restart_after({"Condition": "none"}) is None
    assert state._restart_after({"Condition": "on-failure", "Delay": 1_000_000_000}) == 1.0


def test_a_service_no_probe_reaches_is_neither_probed_nor_called_and_says_why(tmp_path):
    """A backend's address() may mark a service unreached (swarm: a task on another node, no probe relay): whatever
    listens at its address here is a stranger, so nothing connects, and probe and hook carry the reason."""
    import socket

    from tmt_ops import hooks
    from tmt_ops.data import replace
    from tmt_ops.probes import Health, probe

    stranger = socket.socket()
    stranger.bind(("127.0.0.1", 0))
    stranger.listen()
    stranger.setblocking(False)
    with stranger:
        service = registry(tmp_path).service("orchestrator")
        unreached = replace(service, port=stranger.getsockname()[1],
                                        unreached="task o.1 on worker1: no probe relay runs on this node")
        answer = probe(unreached)
        assert answer.status == Health.UNHEALTHY
        assert answer.error == "no probe reaches it from here: task o.1 on worker1: no probe relay runs on this node"
        made, line = hooks.call(hooks.post_start(replace(unreached, post_start=service.pre_stop)))
        assert not made and "not made: nothing reaches it from here (task o.1 on worker1" in line
        with pytest.raises(BlockingIOError):
            stranger.accept()  # the stranger on the port was never contacted
