"""One look at a stack: its services, their tasks and the swarm's nodes, as the engine reports them, and what
that means in the toolkit's vocabulary (ServiceStatus). Everything is asked by the stack's label, so a stack
with the same service names (another project, a decoy) is never seen, let alone touched; the stack's probe relay
(relay.py) is kept apart from its services.

A task is seen with its node's state: one on a node that is down, drained or paused says so ("on node-2
(down)"), and one the swarm gave up on (its node lost or drained) is never taken for running. A service with
fewer running tasks than replicas names the ones missing, each with why; an update or rollback the engine left
paused is said too.
"""

from __future__ import annotations

import time
from typing import Mapping

from ..backends import ServiceStatus
from ..data import dataclass, field
from ..engine import engine_time
from ..engine import Engine
from ..registry import Service
from ..states import ServiceState
from .stackfile import ROLLOUT_LABEL

STACK_LABEL = "com.docker.stack.namespace"
ROLE_LABEL, RELAY_ROLE = "tmt-ops.role", "probe-relay"  # the service label of the stack's probe relay (relay.py)
GATEWAY_NETWORK = "docker_gwbridge"  # every task container on an overlay network has an address here
RESTART_SLACK = 30.0  # seconds past a restart policy's delay for swarm to have made the task it restarts
LIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
ENDED = ("complete", "failed", "shutdown", "rejected", "orphaned", "remove")
LOST = ("down", "unknown", "disconnected")  # Node.note of a node whose tasks cannot run (nor be asked)


def stack_label(stack: str) -> str:
    """The label filter of one stack's services, containers, networks and volumes."""
    return f"{STACK_LABEL}={stack}"


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    address: str
    state: str  # ready / down / unknown / disconnected
    availability: str  # active / pause / drain
    manager: str | None  # leader / reachable / unreachable; None for a worker
    labels: Mapping[str, str] = field(default_factory=dict)  # node.labels (docker node update --label-add)
    engine_labels: Mapping[str, str] = field(default_factory=dict)
    platform: tuple[str, str] = ("", "")  # (os, architecture)

    @property
    def role(self) -> str:
        return "manager" if self.manager else "worker"

    @property
    def usable(self) -> bool:
        """The scheduler places new tasks here."""
        return self.state == "ready" and self.availability == "active"

    @property
    def note(self) -> str:
        """What keeps tasks off it ('' when nothing): 'down', 'drained', 'paused'."""
        if self.state != "ready":
            return self.state
        return {"drain": "drained", "pause": "paused"}.get(self.availability, "")

    def describe(self) -> str:
        return f"{self.hostname} {self.state}/{self.availability}, {self.role}" + \
            (f" ({self.manager})" if self.manager else "")

    def satisfies(self, constraint: str) -> bool:
        """One placement constraint (`ATTRIBUTE == VALUE` or `!=`), matched as swarm matches it (case aside)."""
        attribute, operator, value = constraint.split(None, 2)
        if attribute.startswith("node.labels."):
            have = self.labels.get(attribute[len("node.labels."):])
        elif attribute.startswith("engine.labels."):
            have = self.engine_labels.get(attribute[len("engine.labels."):])
        else:
            have = {"node.id": self.id, "node.hostname": self.hostname, "node.role": self.role,
                    "node.platform.os": self.platform[0], "node.platform.arch": self.platform[1]}.get(attribute)
        equal = have is not None and have.casefold() == value.casefold()
        return equal if operator == "==" else not equal


@dataclass(frozen=True)
class Task:
    id: str
    name: str  # STACK_SERVICE.SLOT, as `docker service ps` names it
    node: str  # hostname ("-" before it is scheduled)
    node_id: str
    state: str
    desired: str
    error: str  # the engine's error, else its message
    exit_code: int | None
    container: str | None  # container id, once there is one
    since: float | None  # when it entered its state
    rollout: str | None  # the run that deployed it (stackfile.ROLLOUT_LABEL)
    slot: int | None = None
    addresses: tuple[tuple[str, str], ...] = ()  # (network id, its address there) on the stack's overlay networks
    node_note: str = ""  # Node.note of its node when the snapshot was taken: down, drained, paused
    created: float = 0.0  # when the swarm made it (tasks are listed newest first by this)

    @property
    def live(self) -> bool:
        return self.desired == "running" and self.state in LIVE

    @property
    def where(self) -> str:
        """'tmt-mn-worker1', or 'tmt-mn-worker1 (down)'."""
        return f"{self.node} ({self.node_note})" if self.node_note else self.node

    @property
    def given_up(self) -> bool:
        """The swarm shut it down (its node was lost or drained, or an update moved on) before it ended."""
        return self.desired not in ("running", "ready") and self.state not in ENDED

    def describe(self) -> str:
        text = f"task {self.name} on {self.where}: {self.state}"
        if self.given_up:
            text += f", shut down by the swarm{' (its node is ' + self.node_note + ')' if self.node_note else ''}"
        if self.state in ENDED and self.error:
            text += f" ({self.error}{'' if self.exit_code is None else f', exit code {self.exit_code}'})"
        return text


@dataclass(frozen=True)
class PreviousSpec:
    replicas: int
    rollout: str | None  # the run that deployed it
    same: bool  # its task template is the current one but for the run id: a rollback runs the very same thing


@dataclass(frozen=True)
class SwarmService:
    id: str
    name: str  # STACK_SERVICE
    compose_service: str
    replicas: int  # desired
    healthcheck: bool  # its spec gives its containers a healthcheck (a running task has passed it)
    published: tuple[int, ...]
    tasks: tuple[Task, ...]  # newest first (made last)
    rollout: str | None = None  # the run that deployed its spec (stackfile.ROLLOUT_LABEL)
    previous: PreviousSpec | None = None  # what `docker service rollback` returns to; None: nothing
    constraints: tuple[str, ...] = ()  # its spec's placement constraints
    update: tuple[str, str] | None = None  # (state, message) of its last update or rollback, as the engine says
    networks: tuple[str, ...] = ()  # the ids of the networks its tasks are attached to
    image: str = ""  # as its spec names it (NAME@DIGEST once resolved)
    restart_after: float | None = None  # seconds after a task ends that swarm starts another; None: it never does

    def restarting(self, now: float) -> bool:
        """Swarm's own restart of its newest task is due (its restart policy is not none, and the task ended within
        the policy's delay and RESTART_SLACK): until then, a start by anyone else would make a second task."""
        newest = self.tasks[0] if self.tasks else None
        return (self.restart_after is not None and newest is not None and newest.state in ENDED
                and newest.since is not None and now - newest.since <= self.restart_after + RESTART_SLACK)

    @property
    def update_stuck(self) -> str | None:
        """'update paused: ...' while its last update or rollback is paused (the engine's words), else None."""
        state, message = self.update or ("", "")
        words = {"paused": "update paused", "rollback_paused": "rollback paused", "updating": "update under way",
                 "rollback_started": "rollback under way"}.get(state)
        if words is None:
            return None
        return f"{words}: {message}" if message else words

    def missing(self) -> list[Task]:
        """For each slot of its desired replicas without a running task, the task that tells why (the newest of
        that slot): pending, given up, failed."""
        held = {t.slot for t in self.running}
        out = []
        for slot in range(1, self.replicas + 1):
            if slot not in held:
                newest = next((t for t in self.tasks if t.slot == slot), None)
                if newest is not None:
                    out.append(newest)
        return out

    @property
    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.live and t.state == "running"]

    @property
    def live(self) -> list[Task]:
        return [t for t in self.tasks if t.live]

    @property
    def failed(self) -> list[Task]:
        """Recent tasks that ended with an error (history the engine keeps)."""
        return [t for t in self.tasks if t.state in ("failed", "rejected", "orphaned")]


@dataclass
class Snapshot:
    stack: str
    services: dict[str, SwarmService]  # compose service -> its swarm service
    nodes: dict[str, Node]
    taken_at: float = field(default_factory=time.monotonic)
    relay: SwarmService | None = None  # the stack's probe relay (relay.py), not a service of the registry
    _gateway: dict[str, str] | None = None

    def status(self, service: Service) -> ServiceStatus:
        svc = self.services.get(service.compose_service)
        if svc is None:
            return ServiceStatus(service.name, ServiceState.STOPPED, detail=f"not deployed in stack {self.stack}")
        running, live = svc.running, svc.live
        words = f"{len(running)}/{svc.replicas} running"
        task = (running or live or list(svc.tasks) or [None])[0]
        where = f"; {task.describe()}" if task is not None else ""
        if running and len(running) >= svc.replicas:
            state = ServiceState.RUNNING
        elif svc.replicas == 0 and not live:
            return ServiceStatus(service.name, ServiceState.STOPPED, detail=f"{svc.name} scaled to 0")
        elif running:
            state = ServiceState.RUNNING  # fewer than desired: the report says how many
        elif live:
            state = ServiceState.STARTING
        elif svc.restarting(time.time()):  # swarm's own restart is due: nothing else may start it (--heal)
            state, where = ServiceState.STARTING, f"{where}; the swarm starts it again (its restart policy)"
        else:
            state = ServiceState.FAILED if svc.failed or svc.tasks else ServiceState.STARTING
        health = None
        if svc.healthcheck:
            health = "healthy" if running else "starting" if live else "unhealthy"
        began = running[0].since if running else None
        missing = svc.missing() if running else []  # the replicas that do not run, each with why
        extra = "".join(f"; not running: {t.describe()}" for t in missing)
        if svc.update_stuck:
            extra += f"; {svc.update_stuck}"
        return ServiceStatus(service.name, state, container=task.name if task else None, engine_health=health,
                             uptime_seconds=round(time.time() - began, 1) if began else None,
                             restart_count=len(svc.failed),
                             exit_code=task.exit_code if task and task.state in ENDED else None,
                             detail=f"{svc.name} {words}{where}{extra}", holds_port=True if running else None)

    def gateway(self, engine: Engine) -> dict[str, str]:
        """container id -> its address on this node's gateway bridge, reachable from this host (asked once)."""
        if self._gateway is None:
            network = engine.network(GATEWAY_NETWORK) or {}
            self._gateway = {cid: c["IPv4Address"].split("/")[0] for cid, c in (network.get("Containers") or {}).items()
                             if c.get("IPv4Address")}
        return self._gateway


def _task(data: dict, nodes: dict[str, Node], service: str) -> Task:
    status = data.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    node = nodes.get(data.get("NodeID", ""))
    labels = ((data.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
    addresses = tuple((a["Network"]["ID"], address.split("/")[0]) for a in data.get("NetworksAttachments") or ()
                      for address in a.get("Addresses") or () if (a.get("Network") or {}).get("ID"))
    return Task(id=data["ID"], name=f"{service}.{data.get('Slot', '')}".rstrip("."),
                node=node.hostname if node else "-",
                node_id=data.get("NodeID", ""), state=status.get("State", "unknown"),
                desired=data.get("DesiredState", ""), error=status.get("Err") or status.get("Message") or "",
                exit_code=container.get("ExitCode") if status.get("State") in ENDED and container.get("ContainerID")
                else None,
                container=container.get("ContainerID") or None, since=engine_time(status.get("Timestamp")),
                rollout=labels.get(ROLLOUT_LABEL), slot=data.get("Slot"), addresses=addresses,
                node_note=node.note if node else "", created=engine_time(data.get("CreatedAt")) or 0.0)


def _node(data: dict) -> Node:
    manager = data.get("ManagerStatus") or {}
    role = "leader" if manager.get("Leader") else manager.get("Reachability") if manager else None
    description = data.get("Description") or {}
    platform = description.get("Platform") or {}
    return Node(data["ID"], description.get("Hostname", data["ID"][:12]),
                (data.get("Status") or {}).get("Addr", ""), (data.get("Status") or {}).get("State", "unknown"),
                (data.get("Spec") or {}).get("Availability", "unknown"), role,
                dict((data.get("Spec") or {}).get("Labels") or {}),
                dict((description.get("Engine") or {}).get("Labels") or {}),
                (platform.get("OS", ""), platform.get("Architecture", "")))


def _restart_after(policy: dict) -> float | None:
    """Seconds after a task ends that swarm starts another, by the spec's restart policy (None: never; the
    engine's default when a spec has no policy is `any`, with a delay of 5 s)."""
    if policy.get("Condition", "any") == "none":
        return None
    return (policy.get("Delay") if policy.get("Delay") is not None else 5_000_000_000) / 1e9


def _replicas(spec: dict) -> int:
    return ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0)


def _template(spec: dict) -> tuple[dict, str | None]:
    """(its task template without the run id, the run id)."""
    template = dict(spec["TaskTemplate"])
    container = dict(template.get("ContainerSpec") or {})
    labels = dict(container.get("Labels") or {})
    rollout = labels.pop(ROLLOUT_LABEL, None)
    template["ContainerSpec"] = {**container, "Labels": labels}
    template.pop("ForceUpdate", None)
    return template, rollout


def _previous(spec: dict | None, template: dict) -> PreviousSpec | None:
    """The previous spec, compared with the current one's task template (`template`, without its run id)."""
    if not spec:
        return None
    its, rollout = _template(spec)
    return PreviousSpec(_replicas(spec), rollout, its == template)


def take(engine: Engine, stack: str, order: list[str]) -> Snapshot:
    """Three requests: the stack's services (by label), their tasks, the nodes. `order`: the compose file's
    services, in the order the snapshot lists them (others after them). The probe relay is kept apart.

    The nodes are asked after the tasks: a node is marked down (or drained) before the swarm gives up its tasks,
    so a task seen given up is always seen with the note of the node that caused it, never with a node that was
    still ready a moment earlier."""
    services = engine.services(stack_label(stack))
    names = {s["ID"]: s["Spec"]["Name"] for s in services}
    listed = engine.tasks(list(names))
    nodes = {n["ID"]: _node(n) for n in engine.nodes()}
    tasks: dict[str, list[Task]] = {}
    for t in listed:
        if t.get("ServiceID") in names:
            tasks.setdefault(t["ServiceID"], []).append(_task(t, nodes, names[t["ServiceID"]]))
    found, relay = {}, None
    for s in services:
        spec, previous = s["Spec"], s.get("PreviousSpec")
        template, rollout = _template(spec)
        container = spec["TaskTemplate"].get("ContainerSpec") or {}
        test = (container.get("Healthcheck") or {}).get("Test") or []
        ports = (s.get("Endpoint") or {}).get("Ports") or (spec.get("EndpointSpec") or {}).get("Ports") or []
        compose_service = spec["Name"][len(stack) + 1:] if spec["Name"].startswith(f"{stack}_") else spec["Name"]
        update = s.get("UpdateStatus") or {}
        networks = spec["TaskTemplate"].get("Networks") or spec.get("Networks") or ()
        svc = SwarmService(
            id=s["ID"], name=spec["Name"], compose_service=compose_service,
            replicas=_replicas(spec), healthcheck=bool(test) and test[0] != "NONE",
            published=tuple(p["PublishedPort"] for p in ports if p.get("PublishedPort")),
            tasks=tuple(sorted(tasks.get(s["ID"], []), key=lambda t: (-t.created, -(t.since or 0)))), rollout=rollout,
            previous=_previous(previous, template),
            constraints=tuple(((spec["TaskTemplate"].get("Placement") or {}).get("Constraints")) or ()),
            update=(update.get("State", ""), update.get("Message", "")) if update else None,
            networks=tuple(n["Target"] for n in networks if n.get("Target")), image=str(container.get("Image", "")),
            restart_after=_restart_after(spec["TaskTemplate"].get("RestartPolicy") or {}))
        if (spec.get("Labels") or {}).get(ROLE_LABEL) == RELAY_ROLE:
            relay = svc
        else:
            found[compose_service] = svc
    rank = {name: n for n, name in enumerate(order)}
    return Snapshot(stack, dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))),
                    nodes, relay=relay)
