"""--mode swarm on the three-node swarm of .ci/multinode.sh (issue 19): every operation run as a swarm client runs
it (in the manager's network namespace, DOCKER_HOST of the manager), the simulator's image built on the manager
and pushed to the harness's registry under a repository of this module's own.

The first test uses a small stack of its own; the others share one stack in file order (start, status, health,
a killed replica, no relay, preflight, heal, drain, the decoy, a node lost mid-roll, removal), each run alone
getting it started by the `stack` fixture. A decoy stack with the same service names on the same nodes must come
through every operation untouched. The harness is left as it was found: nodes active, the node label removed,
a killed worker started again, stacks, strangers and images removed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import yaml
from health_stack import CALM
from multinode import Harness, multinode  # noqa: F401  (the fixture)
from support import REPO, wait_for, write_registry

from tmt_ops.engine import Engine, endpoint, engine_time
from tmt_ops.registry import load_registry
from tmt_ops.swarm.state import STACK_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.multinode]

SUFFIX = uuid.uuid4().hex[:8]
LABEL = f"tmt-test-{SUFFIX}"  # a node label of this module's own: the placement of the orchestrator
CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]


class Client:
    """The toolkit's scripts as a swarm client runs them, and what the manager says of one registry's stack."""

    def __init__(self, harness: Harness, config, env: dict[str, str]) -> None:
        self.h, self.config, self.env = harness, config, env
        self.stack = load_registry(config).swarm_stack
        self.engine = Engine(where=endpoint.resolve({"DOCKER_HOST": harness.host(harness.manager)}))

    def run(self, script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.h.script(script, "--config", str(self.config), "--mode", "swarm", *args, env=self.env,
                             timeout=timeout)

    def services(self) -> dict[str, dict]:
        """compose service -> its swarm service (the probe relay apart)."""
        return {s["Spec"]["Name"][len(self.stack) + 1:]: s for s in self.engine.services(f"{STACK_LABEL}={self.stack}")
                if s["Spec"]["Name"] != f"{self.stack}_tmt-ops-probe"}

    def tasks(self, service: str) -> list[dict]:
        svc = self.services().get(service)
        return self.engine.tasks([svc["ID"]]) if svc else []

    def running(self) -> dict[str, list[tuple[str, str]]]:
        """compose service -> [(task id, node hostname)] of its running tasks."""
        nodes = {n["ID"]: n["Description"]["Hostname"] for n in self.engine.nodes()}
        return {name: sorted((t["ID"], nodes.get(t["NodeID"], "?")) for t in self.tasks(name)
                             if t["Status"]["State"] == "running" and t["DesiredState"] == "running")
                for name in self.services()}

    def container_of(self, service: str) -> tuple[str, str]:
        """(node hostname, container id) of the service's first running task."""
        nodes = {n["ID"]: n["Description"]["Hostname"] for n in self.engine.nodes()}
        task = next(t for t in self.tasks(service) if t["Status"]["State"] == "running"
                    and t["DesiredState"] == "running")
        return nodes[task["NodeID"]], task["Status"]["ContainerStatus"]["ContainerID"]

    def remove(self) -> None:
        """Teardown: the stack removed, and its containers gone from every node that is up."""
        self.h.docker(self.h.manager, "stack", "rm", self.stack, check=False)
        for node in self.h.nodes:
            wait_for(lambda: not self.h.docker(node, "ps", "-aq", "--filter", f"label={STACK_LABEL}={self.stack}",
                                               check=False).stdout.strip(), 60, 0.5)


def edit_registry(config, change) -> None:
    data = yaml.safe_load(config.read_text())
    change(data)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def image_env(multinode):
    """The simulator's image as every test here names it: a repository of this module's own in the harness's
    registry (so no node has it before this module pushes it); removed from every node and the registry after."""
    repository = f"{multinode.registry}/tmt-mn-swarm-{SUFFIX}"
    yield {"TMT_SWARM_PUSH": "1", "TMT_SIM_IMAGE": f"{repository}:t", "TMT_SIM_START_DELAY": "0.2"}
    multinode.remove_images(repository)


def main_registry(data: dict) -> None:
    """Placements that make the tests deterministic: what execution-engine needs stays on the manager, so a
    worker lost under execution-engine takes nothing it needs along."""
    s = data["services"]
    s["orchestrator"]["swarm"] = {"placement": [f"node.labels.{LABEL} == db"]}  # pinned by a node label
    s["market-analysis"].update(public=True, swarm={"placement": ["node.role == manager"]})  # a host-mode port
    s["execution-engine"]["swarm"] = {"placement": ["node.role == worker"]}
    s["dashboard"]["swarm"] = {"replicas": 2, "placement": ["node.role == worker"]}
    data["health"].update(monitor_interval=1, thresholds=dict(CALM))
    data["heal"] = {"after_rounds": 1, "backoff_seconds": 1}


@pytest.fixture(scope="module")
def decoy(multinode, image_env, tmp_path_factory):
    """Another stack of the same compose file, with the same service names, on the same nodes, started first;
    yields (client, {service: its spec's version}, {service: its running tasks})."""
    client = Client(multinode, write_registry(tmp_path_factory.mktemp("decoy")), image_env)
    try:
        done = client.run("docker-restart.py", "start")
        assert done.returncode == 0, done.stderr
        yield client, {n: s["Version"]["Index"] for n, s in client.services().items()}, client.running()
    finally:
        client.remove()


@pytest.fixture(scope="module")
def shared(multinode, image_env, decoy, tmp_path_factory):
    """The stack the tests share (main_registry); the label that pins its orchestrator is on the manager."""
    multinode.docker(multinode.manager, "node", "update", "--label-add", f"{LABEL}=db", multinode.manager)
    client = Client(multinode, write_registry(tmp_path_factory.mktemp("stack"), edit=main_registry), image_env)
    try:
        yield client
    finally:
        client.remove()
        multinode.docker(multinode.manager, "node", "update", "--label-rm", LABEL, multinode.manager, check=False)
        for node in multinode.workers:
            multinode.docker(multinode.manager, "node", "update", "--availability", "active", node, check=False)


@pytest.fixture
def stack(shared):
    """The shared stack, running in full: started (or put right) here unless it is."""
    running = shared.running()
    if sorted(n for n, tasks in running.items() if tasks) != sorted(CORE) or len(running["dashboard"]) != 2:
        done = shared.run("restart-trading-system.py")
        assert done.returncode == 0, done.stderr
    return shared


@contextmanager
def stranger(harness: Harness, node: str, port: int):
    """A plain HTTP server that answers /health with 200, publishing `port` on a node (someone else's)."""
    name = f"tmt-mn-stranger-{uuid.uuid4().hex[:6]}"
    harness.docker(node, "run", "-d", "--name", name, "-p", f"{port}:8080", "python:3.11-slim", "sh", "-c",
                   "echo ok > /health; cd /; exec python3 -m http.server 8080")
    try:
        assert wait_for(lambda: harness.fetch(f"http://{harness.addr(node)}:{port}/health", 1)[0], 30), "no stranger"
        yield name
    finally:
        harness.docker(node, "rm", "-f", name, check=False)


def health(client: Client) -> dict[str, dict]:
    done = client.run("system-health.py", "--json")
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)["services"]


# -- images ---------------------------------------------------------------------------------------------------
def test_a_node_that_cannot_pull_fails_the_roll_with_the_engines_error_and_swarm_rolls_it_back(multinode, image_env,
                                                                                               tmp_path):
    """Built on the manager, pushed, deployed by digest; a worker that cannot reach the registry leaves its task
    rejected with the engine's error, the roll stops, and swarm's own rollback brings the old task back."""
    def on(where):
        return lambda data: data["services"]["orchestrator"].update(swarm={"placement": [where]})
    config = write_registry(tmp_path, edit=on("node.role == manager"))
    client = Client(multinode, config, image_env)
    worker = multinode.workers[0]
    node_sh = ["docker", "exec", worker, "sh", "-c"]
    try:
        done = client.run("restart-trading-system.py", "--only", "orchestrator", "--no-deps")
        assert done.returncode == 0, done.stderr
        assert f"pushing {image_env['TMT_SIM_IMAGE']}, the image of orchestrator (TMT_SWARM_PUSH=1)" in done.stderr
        image = client.services()["orchestrator"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert image.startswith(f"{image_env['TMT_SIM_IMAGE']}@sha256:")  # by digest: every node runs this image
        (before,) = client.running()["orchestrator"]
        assert before[1] == multinode.manager
        subprocess.run([*node_sh, "cp /etc/hosts /tmp/hosts.tmt && echo '127.0.0.1 registry' >> /etc/hosts"],
                       check=True, capture_output=True)
        edit_registry(config, on(f"node.hostname == {worker}"))
        done = client.run("restart-trading-system.py", "--only", "orchestrator", "--no-deps")
        assert done.returncode == 1, done.stderr
        assert f"orchestrator: task {client.stack}_orchestrator.1 on {worker}: rejected (" in done.stderr
        assert "rolled back to its previous spec (docker service rollback)" in done.stderr
        (after,) = client.running()["orchestrator"]
        assert after[1] == multinode.manager and after != before  # the old spec runs again, where it could
    finally:
        subprocess.run([*node_sh, "test -f /tmp/hosts.tmt && cat /tmp/hosts.tmt > /etc/hosts"], capture_output=True)
        client.remove()


def test_a_service_with_its_data_in_a_local_volume_is_never_moved_off_its_node(multinode, image_env, tmp_path):
    """No placement said, a volume of the stack mounted: each roll keeps it on the node that holds its data."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    orchestrator = compose["services"]["orchestrator"]
    orchestrator["build"]["context"] = str(REPO / "tmt_sim")
    orchestrator["volumes"] = ["orchestrator-data:/data"]
    compose["volumes"]["orchestrator-data"] = {}
    (tmp_path / "compose.yml").write_text(yaml.safe_dump(compose, sort_keys=False))
    config = write_registry(tmp_path, edit=lambda data: data["project"].update(compose_file=str(tmp_path /
                                                                                                 "compose.yml")))
    client = Client(multinode, config, image_env)
    try:
        done = client.run("restart-trading-system.py", "--only", "orchestrator", "--no-deps")
        assert done.returncode == 0, done.stderr
        assert "orchestrator: its data is in a local volume, on the node its first task lands on: pin it" in done.stderr
        ((_, node),) = client.running()["orchestrator"]
        node_id = next(n["ID"] for n in client.engine.nodes() if n["Description"]["Hostname"] == node)
        plan = client.run("restart-trading-system.py", "--only", "orchestrator", "--no-deps", "--dry-run")
        assert f"kept on {node} (its data is in a volume there)" in plan.stderr, plan.stderr
        for _ in range(2):
            done = client.run("restart-trading-system.py", "--only", "orchestrator", "--no-deps")
            assert done.returncode == 0, done.stderr
            assert [n for _, n in client.running()["orchestrator"]] == [node]
        placement = client.services()["orchestrator"]["Spec"]["TaskTemplate"]["Placement"]
        assert placement["Constraints"] == [f"node.id == {node_id}"]
    finally:
        client.remove()
        for name in multinode.nodes:
            multinode.docker(name, "volume", "rm", "-f", f"{client.stack}_orchestrator-data", check=False)


# -- the shared stack -------------------------------------------------------------------------------------------
def test_start_pushes_each_image_once_places_tasks_as_the_registry_says_and_is_healthy(multinode, shared, image_env):
    """Four services share one image: it is pushed once. The orchestrator lands on the node with the label, the
    dashboard's two replicas on the workers; every task is probed where it runs (a task on a worker through the
    probe relay, where it ran on the manager's 127.0.0.1 before), and the start is healthy (exit 0)."""
    done = shared.run("docker-restart.py", "start")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("pushing ") == 1
    assert (f"pushing {image_env['TMT_SIM_IMAGE']}, the image of orchestrator, market-analysis, execution-engine, "
            "dashboard") in done.stderr
    running = shared.running()
    assert [node for _, node in running["orchestrator"]] == [multinode.manager]
    assert sorted(node for _, node in running["dashboard"]) == sorted(multinode.workers)
    assert [node for _, node in running["execution-engine"]][0] in multinode.workers
    assert "4 service(s) running and healthy" in done.stderr


def test_status_lists_the_nodes_and_the_tasks_on_each(multinode, stack):
    done = stack.run("docker-restart.py", "status", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    nodes = {n["hostname"]: n for n in doc["engine"]["nodes"]}
    assert sorted(nodes) == sorted(multinode.nodes)
    assert [(nodes[n]["role"], nodes[n]["state"], nodes[n]["availability"]) for n in multinode.nodes] == \
        [("manager", "ready", "active")] + [("worker", "ready", "active")] * 2
    placed = {(t["name"].split("_", 1)[1].rsplit(".", 1)[0], n) for n in nodes for t in nodes[n]["tasks"]}
    expected = {(name, node) for name, tasks in stack.running().items() for _, node in tasks}
    assert placed == expected and len(expected) == 5  # each task on its node, the dashboard's two included
    table = stack.run("docker-restart.py", "status")
    assert table.returncode == 0
    worker, _ = stack.container_of("execution-engine")
    row = next(line for line in table.stdout.splitlines() if line.startswith(worker))
    assert "worker" in row and "ready" in row and "active" in row and "execution-engine.1 running" in row


def test_logs_tail_is_the_last_lines_of_the_service_in_time_order_whichever_task_wrote_them(stack):
    done = stack.run("docker-restart.py", "logs", "dashboard", "--tail", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(f"{stack.stack}_dashboard." in line for line in lines), lines  # not 3 per task


def test_health_comes_from_each_task_where_it_runs_never_from_a_stranger(multinode, stack):
    """A stranger publishing execution-engine's registry port on the manager, where the toolkit runs, is not what
    the probe reaches: the task on its worker is reached through the probe relay (the stranger used to answer)."""
    engine = load_registry(stack.config).service("execution-engine")
    with stranger(multinode, multinode.manager, engine.port):
        checks = health(stack)
    for name in CORE:
        assert checks[name]["status"] == "healthy", checks[name]
    relay = multinode.docker(multinode.manager, "ps", "-q", "--no-trunc", "--filter",
                             f"name={stack.stack}_tmt-ops-probe").stdout.split()
    gateway = json.loads(multinode.docker(multinode.manager, "network", "inspect", "docker_gwbridge").stdout)[0]
    address = gateway["Containers"][relay[0]]["IPv4Address"].split("/")[0]
    assert checks["execution-engine"]["url"].startswith(f"http://{address}:")  # the relay, on the manager
    assert f":{engine.port}/" not in checks["execution-engine"]["url"]  # not the stranger's port


ASK_RELAY = """
import sys
from tmt_ops.swarm import relay
try:
    print(relay.forwarder(sys.argv[1], sys.argv[2], int(sys.argv[3])))
except OSError as exc:
    print("refused:", exc)
"""
KNOCK = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(sys.argv[3].encode() + b"\\n")
    try:
        print(repr(s.recv(100)))
    except ConnectionResetError:  # closed with the request unread
        print("reset")
"""


def test_the_probe_relay_serves_only_the_host_and_only_towards_the_stack(multinode, stack):
    """The relay forwards from the host (where the toolkit runs) to addresses on the stack's own networks, nothing
    else: asked for any other address it refuses, and a task of the stack (any container on its networks) that
    knocks on it gets no forwarder, let alone one out of the stack."""
    health(stack)  # the relay runs
    relay_id = multinode.docker(multinode.manager, "ps", "-q", "--no-trunc", "--filter",
                                f"name={stack.stack}_tmt-ops-probe").stdout.split()[0]
    networks = json.loads(multinode.docker(multinode.manager, "inspect", relay_id).stdout)[0]["NetworkSettings"][
        "Networks"]  # the stack's own (the gateway bridge is not listed there)
    on_stack = next(n["IPAddress"] for n in networks.values())
    bridge = json.loads(multinode.docker(multinode.manager, "network", "inspect", "docker_gwbridge").stdout)[0]
    at_host = bridge["Containers"][relay_id]["IPv4Address"].split("/")[0]
    gateway = bridge["IPAM"]["Config"][0]["Gateway"]

    def ask(host: str) -> str:
        done = multinode.client([sys.executable, "-c", ASK_RELAY, at_host, host, "80"], cwd=REPO)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert ask(on_stack).isdigit()  # an address on the stack's network: a forwarder's port
    for outside in (gateway, "1.1.1.1", "127.0.0.1"):  # the host itself, anywhere, the relay's own loopback
        assert ask(outside).startswith("refused:") and "not an address on the stack" in ask(outside)
    node, task = stack.container_of("market-analysis")
    knocked = multinode.docker(node, "exec", task, "python3", "-c", KNOCK, on_stack, "7000", f"{gateway} 22")
    assert knocked.stdout.strip() in ("b''", "reset"), knocked.stdout  # closed unanswered: no forwarder for a task


def test_a_killed_replica_is_reported_with_its_node_and_the_plan_says_so(multinode, stack):
    node, container = stack.container_of("dashboard")
    multinode.docker(node, "kill", container)
    assert wait_for(lambda: len(stack.running()["dashboard"]) == 1, 30)
    check = health(stack)["dashboard"]
    assert check["status"] == "degraded", check
    assert "1 of 2 task(s) run and serve" in check["error"] and f"on {node}: failed (" in check["error"], check["error"]
    status = stack.run("docker-restart.py", "status")
    assert status.returncode == 1 and "1/2" in status.stdout
    plan = stack.run("restart-trading-system.py", "--only", "dashboard", "--dry-run")
    assert plan.returncode == 0 and "1 of 2 replicas run (" in plan.stderr and f"on {node}: failed" in plan.stderr


def test_without_a_relay_the_engine_is_the_only_evidence_and_a_pre_stop_that_cannot_reach_waits(multinode, stack):
    """With the probe relay gone, a worker's task is judged by the engine's healthcheck alone, and says so; the stop
    of a service whose pre-stop cannot reach its task is refused (exit 1), and it keeps running. The next restart
    deploys the relay again in its preflight, and the pre-stop reaches the task on its worker."""
    multinode.docker(multinode.manager, "service", "scale", "--detach", f"{stack.stack}_tmt-ops-probe=0")
    assert wait_for(lambda: not multinode.docker(multinode.manager, "ps", "-q", "--filter",
                                                 f"name={stack.stack}_tmt-ops-probe").stdout.strip(), 30)
    check = health(stack)["execution-engine"]
    assert check["status"] == "healthy", check
    assert check["error"].startswith(f"not probed: no probe reaches task {stack.stack}_execution-engine.1 on ")
    assert "(no probe relay of the stack runs on this node" in check["error"]
    assert check["error"].endswith("the engine's healthcheck passes: that is the only evidence"), check["error"]
    before = stack.running()["execution-engine"]
    done = stack.run("stop-trading-system.py", "--only", "execution-engine", "--no-deps")
    assert done.returncode == 1
    assert "execution-engine: its pre-stop POST /api/trading/disable cannot reach task" in done.stderr
    assert stack.running()["execution-engine"] == before
    done = stack.run("restart-trading-system.py", "--only", "execution-engine")
    assert done.returncode == 0, done.stderr
    worker = before[0][1]
    assert (f"execution-engine (task {stack.stack}_execution-engine.1 on {worker}): pre-stop POST "
            "/api/trading/disable -> HTTP 200") in done.stderr


def test_pre_stop_reaches_every_task_of_a_service_on_any_node(multinode, stack):
    """execution-engine with two replicas on the workers: its stop calls the pre-stop of each, by its own address."""
    def two(data):
        data["services"]["execution-engine"]["swarm"]["replicas"] = 2
    edit_registry(stack.config, two)
    try:
        done = stack.run("restart-trading-system.py", "--only", "execution-engine", "--no-deps")
        assert done.returncode == 0, done.stderr
        tasks = stack.running()["execution-engine"]
        assert len(tasks) == 2
        done = stack.run("stop-trading-system.py", "--only", "execution-engine", "--no-deps")
        assert done.returncode == 0, done.stderr
        called = [line for line in done.stderr.splitlines() if "pre-stop POST /api/trading/disable -> HTTP 200" in line]
        assert sorted(line.split(" on ")[1].split(")")[0] for line in called) == sorted(n for _, n in tasks), called
    finally:
        edit_registry(stack.config, main_registry)
    done = stack.run("restart-trading-system.py", "--only", "execution-engine")
    assert done.returncode == 0, done.stderr
    assert len(stack.running()["execution-engine"]) == 1


def test_preflight_checks_the_port_of_a_public_service_on_every_node_that_may_run_it(multinode, stack):
    """market-analysis (public) runs on the manager; let it run on the workers too, and a stranger holds its port on
    one of them: its task could land there and fail, so the restart is refused before anything changes."""
    market = load_registry(stack.config).service("market-analysis")
    other = multinode.workers[0]
    before = stack.running()
    edit_registry(stack.config, lambda data: data["services"]["market-analysis"].update(swarm={}))
    try:
        with stranger(multinode, other, market.port):
            done = stack.run("restart-trading-system.py", "--only", "market-analysis")
    finally:
        edit_registry(stack.config, main_registry)
    assert done.returncode == 1
    assert f"market-analysis: port {market.port} answers on node {other} ({multinode.addr(other)})" in done.stderr
    assert stack.running() == before  # nothing changed


def test_heal_brings_back_a_killed_task_on_a_worker_once(multinode, stack):
    node, container = stack.container_of("execution-engine")
    assert node in multinode.workers
    monitor = ClientMonitor(multinode, stack)
    try:
        assert monitor.wait_event(lambda e: e["type"] == "round", 60), monitor.text()
        killed = time.time()
        multinode.docker(node, "kill", container)
        result = monitor.wait_event(lambda e: e["type"] == "heal" and e["event"] == "result", 240)
        assert result and result["ok"], monitor.text()
    finally:
        monitor.stop()
    made = [t for t in stack.tasks("execution-engine") if engine_time(t["CreatedAt"]) > killed]
    assert len(made) == 1, made  # one start: the heal's (swarm starts none: restart policy none)
    assert [t for t, _ in stack.running()["execution-engine"]] == [made[0]["ID"]]


def test_the_decoy_stack_came_through_every_operation_untouched(decoy):
    client, versions, running = decoy
    assert {n: s["Version"]["Index"] for n, s in client.services().items()} == versions
    assert client.running() == running


def test_drain_shows_the_tasks_gone_never_healthy_and_a_restart_moves_them(multinode, stack):
    worker = multinode.workers[0]
    there = [name for name, tasks in stack.running().items() for _, node in tasks if node == worker]
    assert there, stack.running()
    try:
        multinode.docker(multinode.manager, "node", "update", "--availability", "drain", worker)
        assert wait_for(lambda: not any(n == worker for ts in stack.running().values() for _, n in ts), 60)
        status = stack.run("docker-restart.py", "status")
        assert status.returncode == 1
        row = next(line for line in status.stdout.splitlines() if line.startswith(worker))
        assert "drain" in row
        checks = health(stack)
        for name in there:
            assert checks[name]["status"] != "healthy", checks[name]
            assert f"on {worker} (drained): " in checks[name]["error"], checks[name]  # shutting down, or shut down
        done = stack.run("restart-trading-system.py", "--only", *sorted(set(there)))
        assert done.returncode == 0, done.stderr
        moved = stack.running()
        assert not any(n == worker for ts in moved.values() for _, n in ts)
        assert all(moved[name] for name in there) and len(moved["dashboard"]) == 2
    finally:
        multinode.docker(multinode.manager, "node", "update", "--availability", "active", worker)


def test_a_worker_lost_mid_roll_stops_the_roll_says_where_tasks_are_and_a_restart_completes_once_it_is_back(
        multinode, stack):
    """The worker that the rolled execution-engine's new task is assigned to is killed: the swarm gives that task up
    once it sees the node down, the wait ends at once (not after its timeouts), the dashboard is not rolled, and
    execution-engine is rolled back (swarm's own rollback) onto a node that runs. Back, a restart completes."""
    before = {t["ID"] for t in stack.tasks("execution-engine")}
    began = time.monotonic()
    proc = subprocess.Popen(["nsenter", f"--net=/proc/{multinode.manager_pid()}/ns/net", "--", sys.executable,
                             str(REPO / "restart-trading-system.py"), "--config", str(stack.config), "--mode", "swarm",
                             "--only", "execution-engine"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=multinode.client_env(stack.env), stdin=subprocess.DEVNULL)
    lost = None
    try:
        while lost is None and proc.poll() is None and time.monotonic() - began < 120:
            new = [t for t in stack.tasks("execution-engine") if t["ID"] not in before and t.get("NodeID")]
            if new:
                lost = next(n["Description"]["Hostname"] for n in stack.engine.nodes() if n["ID"] == new[0]["NodeID"])
                assert lost in multinode.workers  # placement: node.role == worker
                subprocess.run(["docker", "kill", lost], check=True, capture_output=True, timeout=60)
            time.sleep(0.1)
        out, err = proc.communicate(timeout=300)
        took = time.monotonic() - began
        assert lost, err
        assert proc.returncode == 1, err
        assert took < 75, f"{took:.0f}s"  # the loss is seen in 7-14 s; no 90 s wait on a task that cannot start
        head = f"execution-engine: task {stack.stack}_execution-engine.1 on {lost} (down): "
        failure = next(line for line in err.splitlines() if line.startswith(head))
        assert failure.endswith("; nothing will start it"), failure  # the node seen down, or the task given up
        assert "its output" not in failure  # the lost task has none here; another task's is not shown as its own
        assert f"node {lost} is down: tasks of stack {stack.stack} there: " in err
        assert "dashboard: not started: requires execution-engine, which failed" in err
        assert "rolled back to its previous spec (docker service rollback)" in err
        assert [n for _, n in stack.running()["execution-engine"]] != [lost]
    finally:
        if proc.poll() is None:
            proc.kill()
        if lost:
            subprocess.run(["docker", "start", lost], check=True, capture_output=True, timeout=60)
            assert wait_for(lambda: multinode.docker(lost, "version", check=False, timeout=10).returncode == 0, 60)
            multinode.wait_node(lost, "Ready")
    done = stack.run("restart-trading-system.py")
    assert done.returncode == 0, done.stderr
    assert sorted(n for n, tasks in stack.running().items() if tasks) == sorted(CORE)


def test_remove_stack_leaves_nothing_of_it_on_any_node_and_the_decoy_runs_on(multinode, stack, decoy):
    done = stack.run("stop-trading-system.py", "--remove-stack")
    assert done.returncode == 0, done.stderr
    assert not stack.engine.services(f"{STACK_LABEL}={stack.stack}")  # the relay too
    for node in multinode.nodes:
        left = multinode.docker(node, "ps", "-a", "--format", "{{.Names}} {{.Status}}", "--filter",
                                f"label={STACK_LABEL}={stack.stack}").stdout.strip()
        assert not left, (node, left)
    client, versions, _ = decoy
    assert {n: s["Version"]["Index"] for n, s in client.services().items()} == versions


class ClientMonitor:
    """`system-health.py --monitor --heal --json` run as a swarm client; its JSON lines read as they come."""

    def __init__(self, harness: Harness, client: Client) -> None:
        argv = ["nsenter", f"--net=/proc/{harness.manager_pid()}/ns/net", "--", sys.executable,
                str(REPO / "system-health.py"), "--config", str(client.config), "--mode", "swarm", "--monitor",
                "--heal", "--json", "--interval", "1"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=harness.client_env(client.env), stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_event(self, predicate, timeout: float) -> dict | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            for line in list(self.lines):
                if line.startswith("{") and predicate(json.loads(line)):
                    return json.loads(line)
            time.sleep(0.1)
        return None

    def text(self) -> str:
        return "\n".join(self.lines[-40:]) + "\n--- stderr ---\n" + "\n".join(self.err[-40:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
