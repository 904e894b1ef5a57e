"""The three-node harness itself (.ci/multinode.sh): a stack spread over its three nodes, each task reached
where a swarm client reaches it, and a worker lost and back. Each test names what it proves; the harness is
left as it was found (the stopped worker is started again, the stack and its image removed)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from multinode import Harness, multinode  # noqa: F401  (the fixture)
from support import free_ports, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.multinode]

# A task that says who it is: its container's hostname (the container id's first 12 characters) and its node.
SERVER = """\
import http.server, os, socket, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{socket.gethostname()} {os.environ.get('NODE', '?')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
"""

DOCKERFILE = """\
FROM python:3.11-slim
COPY server.py /srv/server.py
CMD ["python3", "/srv/server.py", "8080"]
"""


class Smoke:
    def __init__(self, harness: Harness, stack: str, image: str, port: int) -> None:
        self.harness, self.stack, self.image, self.port = harness, stack, image, port

    def tasks(self) -> list[dict]:
        """The running tasks of the stack's one service, as the manager reports them."""
        done = self.harness.docker(self.harness.manager, "service", "ps", "--no-trunc", "--filter",
                                   "desired-state=running", "--format", "{{.ID}}", f"{self.stack}_web")
        ids = done.stdout.split()
        if not ids:
            return []
        found = json.loads(self.harness.docker(self.harness.manager, "inspect", *ids).stdout)
        return [t for t in found if t["Status"]["State"] == "running"]

    def by_node(self) -> dict[str, dict]:
        """node hostname -> its running task."""
        names = {}
        for line in self.harness.docker(self.harness.manager, "node", "ls", "--format", "{{.ID}} {{.Hostname}}"
                                        ).stdout.splitlines():
            node_id, hostname = line.split()
            names[node_id] = hostname
        return {names.get(t["NodeID"], t["NodeID"]): t for t in self.tasks()}


def stack_file(image: str, port: int) -> str:
    return json.dumps({
        "version": "3.8",
        "services": {"web": {
            "image": image,
            "environment": {"NODE": "{{.Node.Hostname}}"},
            "ports": [{"target": 8080, "published": port, "mode": "host"}],
            "stop_grace_period": "1s",
            "deploy": {"replicas": 3, "endpoint_mode": "dnsrr",
                       "placement": {"max_replicas_per_node": 1},
                       "restart_policy": {"condition": "any", "delay": "1s"}},
        }},
    })


@pytest.fixture(scope="module")
def smoke(multinode, tmp_path_factory):
    """A tiny image built on the manager and pushed to the harness's registry, deployed as a stack of three
    replicas (one per node, a host-mode port); removed after, with its image."""
    suffix = uuid.uuid4().hex[:8]
    stack, image = f"tmt-mn-test-{suffix}", f"{multinode.registry}/tmt-mn-smoke:{suffix}"
    context = tmp_path_factory.mktemp("smoke")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text(DOCKERFILE)
    m = multinode.manager
    try:
        began = time.monotonic()
        multinode.docker(m, "build", "-q", "-t", image, str(context), timeout=300)
        multinode.docker(m, "push", image, timeout=300)
        pushed = time.monotonic() - began
        port = free_ports(1)[0]  # free here; the nodes are fresh engines
        multinode.docker(m, "stack", "deploy", "--resolve-image", "always", "--compose-file", "-", stack,
                         input=stack_file(image, port))
        found = Smoke(multinode, stack, image, port)
        assert wait_for(lambda: len(found.tasks()) == 3, 120, 0.5), \
            f"3 tasks of {stack}_web do not run: {multinode.docker(m, 'service', 'ps', '--no-trunc', stack + '_web').stdout}"
        print(f"\nsmoke: image built and pushed in {pushed:.1f}s, 3 tasks running {time.monotonic() - began:.1f}s "
              "after the build began")
        yield found
    finally:
        multinode.docker(m, "stack", "rm", stack, check=False)
        for node in multinode.nodes:  # its containers gone from every node, then its image
            wait_for(lambda: not multinode.docker(node, "ps", "-aq", "--filter",
                                                  f"label=com.docker.stack.namespace={stack}").stdout.strip(), 60, 0.5)
        multinode.remove_images(image.rsplit(":", 1)[0])
        wait_for(lambda: not multinode.docker(m, "network", "ls", "-q", "--filter",
                                              f"label=com.docker.stack.namespace={stack}").stdout.strip(), 30, 0.5)


def test_the_harness_is_a_swarm_of_one_manager_and_two_workers(multinode):
    assert multinode.node_states() == {n: ("Ready", "Active") for n in multinode.nodes}
    info = json.loads(multinode.docker(multinode.manager, "info", "--format", "{{json .Swarm}}").stdout)
    assert info["ControlAvailable"] and info["Managers"] == 1 and info["Nodes"] == 3
    assert info["NodeAddr"] == multinode.addr(multinode.manager)  # its bridge address, not the host's
    for node in multinode.nodes:  # each node has the base image, under both names, and trusts the registry
        ids = {multinode.docker(node, "image", "inspect", "-f", "{{.Id}}", name).stdout.strip()
               for name in ("python:3.11-slim", f"{multinode.registry}/python:3.11-slim")}
        assert len(ids) == 1, (node, ids)
        registries = json.loads(multinode.docker(node, "info", "--format", "{{json .RegistryConfig}}").stdout)
        assert any(c.startswith(multinode.registry) for c in registries["IndexConfigs"]), (node, registries)
    # the client's namespace is the manager's own: its address there, and the nested engines' bridges
    done = multinode.client(["ip", "-o", "-4", "addr", "show"])
    assert f"inet {multinode.addr(multinode.manager)}/" in done.stdout, done.stdout


def test_a_stack_spreads_over_the_three_nodes(smoke):
    placed = smoke.by_node()
    assert sorted(placed) == sorted(smoke.harness.nodes), placed


def test_a_worker_task_answers_at_its_node_address(smoke):
    placed = smoke.by_node()
    for worker in smoke.harness.workers:
        task = placed[worker]
        expected = f"{task['Status']['ContainerStatus']['ContainerID'][:12]} {worker}"
        url = f"http://{smoke.harness.addr(worker)}:{smoke.port}/"
        assert smoke.harness.fetch(url) == (True, expected), url  # from the manager's namespace
        assert smoke.harness.fetch(url, from_manager=False) == (True, expected), url  # and from this host


def test_a_manager_task_answers_at_its_gateway_address_from_the_manager_namespace_only(smoke):
    h = smoke.harness
    task = smoke.by_node()[h.manager]
    container = task["Status"]["ContainerStatus"]["ContainerID"]
    gateway = json.loads(h.docker(h.manager, "network", "inspect", "docker_gwbridge").stdout)[0]["Containers"]
    address = gateway[container]["IPv4Address"].split("/")[0]
    # from the client's namespace the address is on the manager's own docker_gwbridge ...
    route = h.client(["ip", "-o", "route", "get", address]).stdout
    assert " dev docker_gwbridge " in route, route
    theirs = h.client(["ip", "-o", "link", "show", "docker_gwbridge"]).stdout.split("link/ether ")[1].split()[0]
    ours = subprocess.run(["ip", "-o", "link", "show", "docker_gwbridge"], capture_output=True, text=True)
    assert ours.returncode != 0 or theirs not in ours.stdout  # ... not this host engine's bridge of that name
    # ... and the task itself answers there (its container id: no other container can say it)
    url = f"http://{address}:8080/"
    assert h.fetch(url) == (True, f"{container[:12]} {h.manager}"), url
    # from this host, the same address is not that task (nothing, or some container of the host engine)
    answered, said = h.fetch(url, timeout=1.5, from_manager=False)
    assert not (answered and said.startswith(container[:12])), said


def test_a_stopped_worker_is_down_then_ready_again_and_gets_its_task_back(smoke):
    h = smoke.harness
    worker = h.workers[-1]
    with h.node_stopped(worker):
        down = h.wait_node(worker, "Down", timeout=60)
        assert worker not in smoke.by_node()  # one replica per node: its task has nowhere else to go
    ready_back = time.monotonic()
    assert wait_for(lambda: sorted(smoke.by_node()) == sorted(h.nodes), 90, 0.5), smoke.by_node()
    print(f"\n{worker}: Down {down:.1f}s after its container stopped; its task running again "
          f"{time.monotonic() - ready_back:.1f}s after it was Ready")
    assert h.node_states()[worker] == ("Ready", "Active")
