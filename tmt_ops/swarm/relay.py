"""The stack's probe relay: how a probe made on the manager reaches a task on any node, and only that task.

A verdict about a task must come from the task itself. On the manager's own node a task answers at its
container's address on the gateway bridge (docker_gwbridge), and a `public` service's task answers at its node's
address on its host-mode port. Any other task on another node has one address only: on the stack's overlay
network, which the manager's host cannot route to (only containers attached to it can). Ways considered:
- the ingress mesh or a service's virtual IP: they need the kernel's IPVS, which not every host has, and they
  answer from any task of the service, not a chosen one;
- `docker exec` into the task's container through its node's engine: a swarm client usually has the manager's
  API only, and an exec per probe costs a process start in the task;
- publishing every port: swarm opens a published port on every interface of every node;
- a relay: one small container of the stack, on the manager's node, attached to every network of the stack.
  The toolkit reaches it at its gateway-bridge address (as any task on this node) and asks it for a forwarder
  to one task's overlay address and port; the relay then passes bytes, nothing else, and only for the host
  and only towards the stack's own networks (PROGRAM: never an open forwarder). The probe, its verdict
  rules and the hooks are the toolkit's own, unchanged, and they talk to the task the snapshot names, by its
  own address: never to whatever holds a port. Only the manager's API is used, to deploy it.
So a relay. It is a service of the stack (`STACK_tmt-ops-probe`, label tmt-ops.role=probe-relay), never of the
registry: `docker stack rm` removes it with the stack, and it is never a service the toolkit reports, starts or
stops. A run that changes the stack deploys it in its preflight, before its checks (`system-health.py` only
reads: it uses the relay when there is one); on one node it is not needed and not made. It runs `python3` of
TMT_SWARM_PROBE_IMAGE (default python:3.11-slim, the simulator's base), which must be on the manager (it is
never pulled: --resolve-image never). A target the relay cannot connect to gets its connection reset, which
the probe reports as a failure of that task.

Where no probe can reach a task (no relay, no network in common), the toolkit says so, and the engine's
healthcheck of that task is the only evidence, marked as such (backend.py).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Collection, Iterable

IMAGE_VARIABLE = "TMT_SWARM_PROBE_IMAGE"
DEFAULT_IMAGE = "python:3.11-slim"
SERVICE = "tmt-ops-probe"  # the relay's name in the stack: STACK_tmt-ops-probe
CONTROL_PORT = 7000  # in the relay's own network namespace
ASK_TIMEOUT = 2.0  # seconds for the relay to open a forwarder
UPSTREAM_TIMEOUT = 5  # seconds the relay gives a task to accept a connection

# The relay itself: a control port that answers "HOST PORT" with the port of a forwarder to HOST:PORT (one per
# target, kept), and forwarders that pass bytes both ways. Standard library only. Only the host, where the toolkit
# runs, is served (its address on the gateway bridge: the relay's default gateway), and only to an address on one
# of the stack's own networks (those the relay is attached to, the gateway bridge's aside): never an open
# forwarder for a task of the stack, nor into anything that is not the stack's.
PROGRAM = f"""\
import socket, struct, sys, threading
forwarders, lock = {{}}, threading.Lock()
def routes():
    gateway, nets = None, []
    with open("/proc/net/route") as table:
        for line in list(table)[1:]:
            dest, gw, mask = (int(line.split()[i], 16) for i in (1, 2, 7))
            if dest == 0 and gw:
                gateway = gw
            elif not gw:
                nets.append((dest, mask))
    return gateway, [(d, m) for d, m in nets if gateway is None or gateway & m != d]
GATEWAY, NETS = routes()
def address(text):
    return struct.unpack("=I", socket.inet_aton(text))[0]
def from_host(peer):
    return GATEWAY is not None and address(peer[0]) == GATEWAY
def on_stack(host):
    return any(address(host) & m == d for d, m in NETS)
def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def relay(client, target):
    try:
        upstream = socket.create_connection(target, timeout={UPSTREAM_TIMEOUT})
    except OSError:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        return
    for s in (client, upstream):
        s.settimeout(300)
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join(300)
    client.close()
    upstream.close()
def serve(listener, target):
    while True:
        client, peer = listener.accept()
        if not from_host(peer):
            client.close()
            continue
        threading.Thread(target=relay, args=(client, target), daemon=True).start()
def forwarder(target):
    with lock:
        if target not in forwarders:
            listener = socket.socket()
            listener.bind(("0.0.0.0", 0))
            listener.listen(64)
            forwarders[target] = listener.getsockname()[1]
            threading.Thread(target=serve, args=(listener, target), daemon=True).start()
        return forwarders[target]
control = socket.socket()
control.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
control.bind(("0.0.0.0", {CONTROL_PORT}))
control.listen(64)
print("tmt-ops probe relay: ready", flush=True)
while True:
    conn, peer = control.accept()
    with conn:
        if not from_host(peer):
            continue
        conn.settimeout(5)
        try:
            host, port = conn.makefile().readline().split()
            if not on_stack(host):
                conn.sendall(b"refused: not an address on the stack's networks\\n")
                continue
            conn.sendall(("%d\\n" % forwarder((host, int(port)))).encode())
        except (OSError, ValueError):
            pass
"""


def image() -> str:
    return os.environ.get(IMAGE_VARIABLE) or DEFAULT_IMAGE


def service_spec(node_id: str, networks: list[str], role_label: tuple[str, str]) -> dict[str, Any]:
    """The relay as a service of a stack file: one task on this manager's node, on these networks (the stack
    file's keys). Nothing in it changes from one deploy to the next, so deploying it again restarts nothing."""
    return {
        "image": image(),
        "command": ["python3", "-c", PROGRAM],
        "networks": networks,
        "labels": dict([role_label]),
        "stop_grace_period": "1s",
        "deploy": {"replicas": 1, "endpoint_mode": "dnsrr", "labels": dict([role_label]),
                   "placement": {"constraints": [f"node.id == {node_id}"]},
                   "restart_policy": {"condition": "any", "delay": "1s"}},
    }


def forwarder(relay: str, host: str, port: int) -> int:
    """Ask the relay at `relay` (its gateway-bridge address) for a forwarder to host:port; its port there.
    OSError when the relay does not answer as one."""
    with socket.create_connection((relay, CONTROL_PORT), timeout=ASK_TIMEOUT) as conn:
        conn.sendall(f"{host} {port}\n".encode())
        conn.settimeout(ASK_TIMEOUT)
        answer = conn.makefile().readline().strip()
    if not answer.isdigit():
        raise OSError(f"the probe relay at {relay} answered {answer[:40]!r}")
    return int(answer)


def shared_address(task_addresses: Iterable[tuple[str, str]], relay_networks: Collection[str]) -> str | None:
    """The task's address on a network the relay is attached to (network ids), else None."""
    return next((ip for network, ip in task_addresses if network in relay_networks), None)
