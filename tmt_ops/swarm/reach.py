"""How the toolkit reaches each task of a stack from here, and what a verdict about a service is made of.

A verdict comes from the tasks themselves, each where it runs (relay.py says why so): on this node, at the task
container's own address on the gateway bridge; a `public` service's task on another node, at that node's address
on its host-mode port; any other task on another node, at its overlay address through the stack's probe relay.
An answer is then the task's, never a stranger's on a published port. Every running task of a service is judged
(a replica that fails or is missing is named, with its node); a task no probe can reach is said to be, and the
engine's healthcheck of it is the only evidence, marked as such. The same addresses carry the pre-stop calls: to
every task, or the call says which task it cannot reach and why.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..data import dataclass, replace
from ..errors import TmtError
from ..registry import Service
from . import relay, stackfile
from .stack import Stack
from .state import Snapshot, Task

if TYPE_CHECKING:
    from ..backends import ServiceStatus
    from ..hooks import HookCall

RELAY_WAIT = 30.0  # seconds a run's preflight waits for the probe relay it deployed to run
# The address of a service no probe reaches (address(): unreached, so nothing contacts it; were anything to, nothing
# listens on port 0): the verdict is the engine's (judged(): ServiceStatus.unprobed), never whatever holds the
# registry's port here.
NOWHERE = ("127.0.0.1", 0)


@dataclass(frozen=True)
class Reach:
    """How a probe made here reaches one task: its address (None: it cannot) and how, or why not."""

    target: Service | None
    how: str


class Reacher:
    """The tasks of one stack as probes and hooks reach them, for one run."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.relay_note: str | None = None  # why this run has no probe relay
        self._forwards: dict[tuple[str, str, int], int] = {}  # (relay container, task address, port) -> its port

    # -- the relay --------------------------------------------------------------------------------------------
    def relay_task(self, snap: Snapshot) -> Task | None:
        """The relay's running task on this node, with an address here; None when there is none."""
        tasks = snap.relay.running if snap.relay else ()
        task = next((t for t in tasks if t.node_id == self.stack.local_node and t.container), None)
        return task if task is not None and snap.gateway(self.stack.engine).get(task.container) else None

    def ensure_relay(self) -> None:
        """The stack's probe relay runs on this node, from the image it should (deployed, then awaited, when not),
        or relay_note says why not."""
        image = relay.image()
        snap = self.stack.snapshot(max_age=0)
        here = [f"node.id=={self.stack.local_node}"]
        if self.relay_task(snap) is not None and snap.relay.image.split("@")[0] == image and \
                [c.replace(" ", "") for c in snap.relay.constraints] == here:
            return
        if not self.stack.engine.has_image(image):
            self.relay_note = (f"image {image} is not on this node (set {relay.IMAGE_VARIABLE} to an image with "
                               "python3 that is)")
            return
        try:
            self.stack.deploy_relay()
        except TmtError as exc:
            self.relay_note = f"its deploy failed: {exc}"
            return
        deadline = time.monotonic() + RELAY_WAIT
        while self.relay_task(self.stack.snapshot(max_age=0)) is None:
            if time.monotonic() > deadline:
                snap = self.stack.snapshot()
                task = next(iter(snap.relay.tasks), None) if snap.relay else None
                self.relay_note = f"it did not start within {RELAY_WAIT:g}s" + (f" ({task.describe()})" if task else "")
                return
            time.sleep(0.2)

    # -- one task ---------------------------------------------------------------------------------------------
    def reach(self, service: Service, task: Task) -> Reach:
        """How a probe made here reaches this task: its container's address on this node's gateway bridge; a
        public service's task on another node at that node's address, on its host-mode port; any other through
        the stack's probe relay, at its overlay address."""
        port = stackfile.target_port(self.stack.spec(service), service)
        snap = self.stack.snapshot()
        gateway = snap.gateway(self.stack.engine)
        if task.node_id == self.stack.local_node:
            ip = gateway.get(task.container or "")
            if ip:
                return Reach(replace(service, host=ip, port=port), "at its container's address")
            return Reach(None, "its container has no address on this node's gateway bridge")
        node = snap.nodes.get(task.node_id)
        if service.public and node is not None and node.address:
            return Reach(replace(service, host=node.address), f"at its node's address {node.address}")
        relay_task = self.relay_task(snap)
        if relay_task is None:
            return Reach(None, "no probe relay of the stack runs on this node (a start or restart deploys it)"
                         + (f"; {self.relay_note}" if self.relay_note else ""))
        address = relay.shared_address(task.addresses, snap.relay.networks)
        if address is None:
            return Reach(None, "it shares no network with the probe relay")
        key = (relay_task.container, address, port)
        if key not in self._forwards:
            try:
                self._forwards[key] = relay.forwarder(gateway[relay_task.container], address, port)
            except OSError as exc:
                return Reach(None, f"the probe relay does not answer ({exc})")
        return Reach(replace(service, host=gateway[relay_task.container], port=self._forwards[key]),
                     f"at {address}:{port} on the stack's network, through the probe relay")

    def pre_stops(self, service: Service, tasks: list[Task]) -> tuple[list[HookCall], str | None]:
        """The pre-stop call to each of these tasks where it runs, and why one of them cannot be reached (None:
        every one can, or the service has no pre-stop hook)."""
        from .. import hooks
        if service.pre_stop is None:
            return [], None
        calls = []
        for task in tasks:
            reach = self.reach(service, task)
            if reach.target is None:
                return calls, (f"its pre-stop {service.pre_stop.describe()} cannot reach task {task.name} on "
                               f"{task.where}: {reach.how}")
            calls.append(replace(hooks.pre_stop(reach.target),
                                             service=f"{service.name} (task {task.name} on {task.node})"))
        return calls, None

    # -- a service's verdict: what health joins to its probe ---------------------------------------------------
    def address(self, service: Service) -> Service:
        """Its newest running task as a probe reaches it. When nothing of it runs, or nothing reaches it, the
        service marked unreached, with why (probes and hooks then say so and contact nothing), at a place where
        nothing answers besides (NOWHERE): whatever answers on its registry port here is not it. judged() joins
        the same reason to its status (health then has the engine's view alone)."""
        svc = self.stack.snapshot().services.get(service.compose_service)
        task = svc.running[0] if svc and svc.running else None
        reach = self.reach(service, task) if task else None
        if reach and reach.target:
            return reach.target
        why = f"task {task.name} on {task.where}: {reach.how}" if task else "no task of it runs"
        return replace(service, host=NOWHERE[0], port=NOWHERE[1], unreached=why)

    def judged(self, service: Service, status: ServiceStatus) -> ServiceStatus:
        """Its status with what health joins to the probe of the task address() gives: why no probe reaches that
        task (ServiceStatus.unprobed), and its other tasks, each probed where it runs, that do not serve or do not
        run, named with their nodes (ServiceStatus.instances)."""
        from ..probes import probe_all
        from ..states import SERVING
        svc = self.stack.snapshot().services.get(service.compose_service)
        running = svc.running if svc else []
        if not running:
            return replace(status, unprobed="no task of it runs")
        task, others = running[0], running[1:]
        reach = self.reach(service, task)
        unprobed = None if reach.target else f"no probe reaches task {task.name} on {task.where} ({reach.how})"
        reaches = {t.id: self.reach(service, t) for t in others}
        answers = probe_all([replace(r.target, name=tid) for tid, r in reaches.items() if r.target],
                            service.probe.timeout) if others else {}
        failing = []  # the other running tasks that do not serve, or cannot be told to
        for t in others:
            answer = answers.get(t.id)
            if answer is None:  # no probe reaches it: the engine's healthcheck, if any, is all there is
                if not svc.healthcheck:
                    failing.append(f"task {t.name} on {t.where} not verified ({reaches[t.id].how})")
            elif answer.status not in SERVING:
                failing.append(f"task {t.name} on {t.where} ({reaches[t.id].how}): "
                               f"{answer.error or answer.status.value}")
        missing = [f"not running: {t.describe()}" for t in svc.missing()]
        instances = "; ".join([f"{len(running) - len(failing)} of {svc.replicas} task(s) run and serve", *failing,
                               *missing]) if failing or missing else None
        return replace(status, unprobed=unprobed, instances=instances)
