"""The swarm backend: services as the services of one Docker Swarm stack, deployed from the compose file wave
by wave in the registry's dependency order (swarm itself ignores depends_on), restarted in place (rolling,
stop-first), stopped by scaling to zero in reverse waves. Read through the engine by the stack's label;
changed with the docker CLI (`stack deploy`, `service scale`), always naming this stack or a service id
found under its label. Each task is probed and called where it runs (reach.py); on several nodes a run also
checks every node that may run a task (nodes.py).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Iterator

from ..backends import ServiceStatus, Teardown
from ..data import replace
from ..engine import Engine, cli, endpoint
from ..errors import ConfigError, OperationFailed, TmtError
from ..registry import Registry, Service
from ..compose.containers import PROJECT_LABEL
from . import nodes, stackfile
from . import status as status_view
from .reach import Reacher
from .stack import PUSH, Stack
from .state import LIVE, LOST, RELAY_ROLE, ROLE_LABEL, STACK_LABEL, Task, stack_label
from .steps import AS_IS, BACKEND, DEPLOY, ROLLBACK, StartStep, StopStep

if TYPE_CHECKING:  # what only a change needs is imported where the change runs: status and health stay quick
    import threading

    from ..events import Events
    from ..preflight import Problem
    from ..results import Outcome, StatusView, StopResult

STOP_SLACK = 15.0  # seconds past a service's grace for the engine to report its tasks gone


class SwarmBackend:
    name = BACKEND
    restarts_in_place = True  # a restart rolls each running service in its wave: nothing is stopped first
    batches_overlap = False  # one stack deploy per batch (a stop's: one scale to 0)

    def __init__(self, registry: Registry, *, compose_file=None, project_name=None, **_options) -> None:
        self.registry = registry
        self.stack = Stack(registry, compose_file=compose_file, project_name=project_name)
        self._rollouts: set[str] = set()  # the run ids of this run's deploys: what a restore may roll back
        self.reacher = Reacher(self.stack)  # how each task is reached from here (the probe relay)
        self._lost: set[str] = set()  # services whose roll failed on a node lost or drained, not on their definition

    @classmethod
    def detect(cls, registry: Registry) -> bool:
        """A service of this registry's stack wants replicas (False when no swarm manager answers)."""
        try:
            if not endpoint.possible(endpoint.current()):
                return False
            services = Engine(timeout=2).services(stack_label(registry.swarm_stack))
        except TmtError:  # no engine, or not a swarm manager
            return False
        return any(((s["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas") for s in services
                   if (s["Spec"].get("Labels") or {}).get(ROLE_LABEL) != RELAY_ROLE)

    def claims(self, service: Service) -> bool:
        """A service of the active profiles, or one the stack has deployed (under whatever profile)."""
        return service.compose_service in self.stack.project.services or service.compose_service in self.stack.present

    def statuses(self, services: list[Service]) -> dict[str, ServiceStatus]:
        """Each service's tasks in one vocabulary, with what health joins to the probe of its newest running task:
        why no probe reaches that task, and how its other tasks fare (reach.Reacher.judged)."""
        snap = self.stack.snapshot()
        return {s.name: self.reacher.judged(s, snap.status(s)) for s in services}

    # -- plans ------------------------------------------------------------------------------------------
    def plan_stop(self, services: list[Service], *, force: bool) -> dict[str, object]:
        """Each deployed service with tasks or replicas is scaled to 0, after its pre-stop call to each of its
        running tasks. One whose call cannot reach a task is not stopped (Blocked: a trading service that was not
        told to stop taking orders: its step fails, and the waves after it halt), unless `force`: then it is
        stopped without that call, and the plan says so. `force` changes nothing else (the engine kills after the
        grace)."""
        snap = self.stack.snapshot(max_age=0)
        plan: dict[str, object] = {}
        for s in services:
            svc = snap.services.get(s.compose_service)
            if svc is None or not svc.replicas and not svc.live:
                plan[s.name] = None
                continue
            calls, unreached = self.reacher.pre_stops(s, svc.running)
            reason = f"{len(svc.running)}/{svc.replicas} running"
            if unreached and force:
                reason += f"; --force: without its pre-stop where it cannot reach ({unreached})"
            refused = (f"{unreached}: not stopped, since it would stop without being told to stop taking orders "
                       "(--force stops it without that call)") if unreached and not force else None
            plan[s.name] = StopStep(s.name, svc.name, svc.id, tuple(t.describe() for t in svc.live), s.stop_grace,
                                    None if refused else calls[0] if calls else None, reason, self._frozen(svc.live),
                                    () if refused else tuple(calls[1:]), refused)
        return plan

    def plan_start(self, services: list[Service]) -> dict[str, object]:
        """A running service is rolled (its pre-stop hook first, to each of its tasks); any other is deployed with
        its replicas: the registry's swarm.replicas, else those it has, else the compose file's deploy.replicas,
        else 1. A service with its data in a local volume stays on the node that holds it."""
        from .. import hooks
        snap = self.stack.snapshot(max_age=0)
        plan: dict[str, object] = {}
        for s in services:
            svc = snap.services.get(s.compose_service)
            replicas = s.swarm.replicas or (svc.replicas if svc and svc.replicas else
                                            int((self.stack.spec(s).get("deploy") or {}).get("replicas") or 1))
            running = svc.running if svc else []
            missing = svc.missing() if svc and running else []
            short = (f"{len(running)} of {svc.replicas} replicas run ({'; '.join(t.describe() for t in missing)}): "
                     "the roll replaces them too") if missing else None
            plan[s.name] = StartStep(s, self.stack.service_name(s.compose_service), replicas, bool(running),
                                     hooks.pre_stop(s) if running else None, frozen=self._frozen(running),
                                     tasks=tuple(t.describe() for t in running),
                                     pin=nodes.pin(self.stack, s, svc, snap),
                                     short=short)
        return plan

    def _frozen(self, tasks: list[Task]) -> str | None:
        """'task X: its container is paused' for the first of these whose container, on this node, is paused
        (`docker pause`): it answers nothing, not even its pre-stop call. (Another node's are not seen.)"""
        for task in tasks:
            if task.container and task.node_id == self.stack.local_node:
                state = (self.stack.engine.container(task.container) or {}).get("State") or {}
                if state.get("Paused"):
                    return f"task {task.name}: its container {task.container[:12]} is paused (docker pause)"
        return None

    def plan_restore(self, services: list[Service]) -> dict[str, object]:
        """Each service as it ran before this run, after what is left of its failed start: a service this run
        rolled goes back to its previous spec with swarm's own `docker service rollback` (its image by the name
        the spec gives: on one node without a registry, a tag that a rebuild moved names the new image); one it
        did not roll (the roll never began: an interrupt, a failed dependency, a failed deploy) runs as it ran,
        and is only awaited; one this run deployed fresh has nothing to roll back to, and is deployed again as
        the compose file says. `retry`: what it comes back to is what failed (not so when what failed was the node
        its new task was on: the same definition runs elsewhere)."""
        snap = self.stack.snapshot(max_age=0)
        plan: dict[str, object] = {}
        for s in services:
            svc = snap.services.get(s.compose_service)
            if svc is not None and svc.rollout not in self._rollouts:
                plan[s.name] = StartStep(s, svc.name, svc.replicas, False, None, "its tasks as they run (this run did "
                                         "not change its spec)", action=AS_IS, rollout=svc.rollout)
            elif svc is not None and svc.previous and svc.previous.replicas:
                plan[s.name] = StartStep(s, svc.name, svc.previous.replicas, False, None,
                                         "its previous spec (docker service rollback)"
                                         + (", the same definition as the new one" if svc.previous.same else ""),
                                         svc.previous.same and s.name not in self._lost, ROLLBACK, svc.id,
                                         svc.previous.rollout)
            else:
                again = self.plan_start([s])[s.name]
                plan[s.name] = replace(again, retry=True, restore="the compose file's definition (this "
                                                   "run deployed it fresh: there is nothing to roll back to)")
        return plan

    def commit(self, steps: list, events: Events) -> None:
        """Nothing to keep: the engine keeps each service's previous spec for `docker service rollback`."""

    # -- before any change --------------------------------------------------------------------------------
    def preflight(self, starting: list[Service]) -> list[Problem]:
        """An engine answers (ConfigError, exit 2, when none does), it manages a swarm, the compose file reads,
        no public service's port is held here by anything but this stack, no network the stack makes exists as
        someone else's (a compose project of the same name leaves one), and every image nothing builds is on this
        node (one node) or in its registry (several: every node pulls it). On a swarm of several nodes also, for
        every node that may run a task: nodes.problems (the probe relay deployed first, for its checks)."""
        import shutil

        from ..preflight import Problem, ports_taken
        self.stack.engine.ping()
        swarm = self.stack.swarm()
        if not self.stack.manages(swarm):
            return [Problem(self.stack.not_a_manager(swarm), 2)]
        if shutil.which("docker") is None:
            return [Problem("the docker CLI is not on PATH (swarm mode deploys with `docker stack deploy`): install "
                            "it", 2)]
        try:
            model = self.stack.model
        except ConfigError as exc:
            return [Problem(str(exc), 2)]
        stack = self.stack.name  # a public service's port is published on this node too (host mode): it must be free
        problems = ports_taken([s for s in starting if s.public], self.stack.engine, f"stack {stack}",
                               lambda labels: labels.get(STACK_LABEL) == stack)
        for name in stackfile.stack_networks(model, self.stack.project.name, stack, starting):
            network = self.stack.engine.network(name)
            labels = (network or {}).get("Labels") or {}
            if network is not None and labels.get(STACK_LABEL) != stack:  # the deploy would fail on it
                owner = labels.get(PROJECT_LABEL)
                problems.append(Problem(
                    f"network {name} is {f'compose project {owner}' if owner else 'someone'}'s, not stack {stack}'s: "
                    "`docker stack deploy` cannot make the stack's own: remove it (`docker network rm` once nothing "
                    "uses it; a compose project's with `docker-restart.py --mode docker stop --remove-stack`), or "
                    "give the stack another name (project.swarm_stack in the registry)", 1))
        several = (swarm.get("Nodes") or 1) > 1
        for s in starting:
            spec = model["services"].get(s.compose_service) or {}
            image = spec.get("image")
            if "build" in spec or not image:
                continue
            if several:
                try:
                    self.stack.engine.distribution(image)
                except TmtError as exc:
                    problems.append(Problem(f"{s.name}: image {image} cannot be found in its registry ({exc}): the "
                                            "nodes could not pull it; push it there first", 1))
            elif not self.stack.pushes and not self.stack.engine.has_image(image):
                problems.append(Problem(f"{s.name}: image {image} is not on this node and nothing builds it: pull or "
                                        f"build it first (a multi-node swarm pulls it from a registry: {PUSH}=1)", 2))
        if several and not problems:
            self.reacher.ensure_relay()
            problems += nodes.problems(self.stack, self.reacher, starting)
        return problems

    def prepare(self, starting: list[Service], events: Events, build: bool = True) -> None:
        """Build the images the compose file builds (and push each once with TMT_SWARM_PUSH=1), before any change
        (`build` False: --no-build); say which ports stay unpublished, what a swarm of several nodes needs, and
        what this run has no probe relay for."""
        self.stack.project.prepare_images([s.compose_service for s in starting], events, build)
        hidden = stackfile.unpublished(self.stack.model, starting)
        if hidden:
            events.warn(f"swarm: not publishing {', '.join(hidden)}: swarm cannot bind 127.0.0.1 and would open them "
                        "on every interface of every node (give a service `public: true` in the registry to "
                        "publish it); tmt-ops probes each task at its own address")
        count = self.stack.swarm().get("Nodes") or 1
        several = count > 1
        if self.stack.pushes:
            images: dict[str, list[str]] = {}  # one push per image: several services share one
            for s in starting:
                spec = self.stack.spec(s)
                if "build" in spec and spec.get("image"):
                    images.setdefault(spec["image"], []).append(s.name)
            for image, names in images.items():
                events.info(f"pushing {image}, the image of {', '.join(names)} ({PUSH}=1)")
                self.stack.push(image)
        elif several:
            events.warn(f"swarm of {count} nodes: a task placed on another node needs its image from a registry "
                        f"every node can reach: give the compose file registry image names and set {PUSH}=1")
        if self.reacher.relay_note:
            events.warn(f"swarm: no probe relay ({self.reacher.relay_note}): a task on another node that is not "
                        "public cannot be probed; its engine healthcheck is all there is")
        snap = self.stack.snapshot()
        for s in starting:
            spec, svc = self.stack.spec(s), snap.services.get(s.compose_service)
            if several and stackfile.local_volumes(self.stack.model, spec) and not stackfile.constraints(spec, s) \
                    and nodes.pin(self.stack, s, svc, snap) is None:
                events.warn(f"{s.name}: its data is in a local volume, on the node its first task lands on: pin it "
                            "(swarm.placement in the registry, e.g. node.labels.db == true)")

    # -- changes -----------------------------------------------------------------------------------------------
    def execute_stop(self, steps: list[StopStep], events: Events) -> dict[str, StopResult]:
        from .. import hooks
        from ..parallel import run_parallel
        from ..results import StopResult
        calls = {f"{n}-{i}": (lambda h=h: hooks.call(h)) for n, step in enumerate(steps)
                 for i, h in enumerate(step.more_pre_stops)}
        for answered, line in run_parallel(calls).values():  # the executor called each one's first task
            (events.info if answered else events.warn)(line)
        refused = {step.service: StopResult(step.service, False, step.refused, step.tasks)
                   for step in steps if step.refused}
        steps = [step for step in steps if not step.refused]
        started = time.monotonic()
        try:
            if steps:
                self.stack.scale_to_zero(step.service_id for step in steps)
        except TmtError as exc:
            return {**refused, **{step.service: StopResult(step.service, False, f"could not scale it to 0: {exc}",
                                                           step.tasks) for step in steps}}
        return {**refused, **run_parallel({step.service: (lambda s=step: self._gone(s, started)) for step in steps})}

    def _gone(self, step: StopStep, started: float) -> StopResult:
        """Wait until none of its tasks runs (the engine kills what outlives the grace)."""
        from ..results import StopResult
        deadline = started + step.grace + STOP_SLACK
        while True:
            svc = next((v for v in self.stack.snapshot(max_age=0).services.values() if v.id == step.service_id), None)
            left = [t for t in (svc.tasks if svc else ()) if t.state in LIVE]
            took = time.monotonic() - started
            if not left:
                return StopResult(step.service, True, f"scaled to 0, its tasks gone in {took:.2f}s", (), took)
            if time.monotonic() > deadline:
                return StopResult(step.service, False, f"scaled to 0, but {len(left)} task(s) still run after "
                                                       f"{took:.0f}s", tuple(t.describe() for t in left), took)
            time.sleep(0.1)

    def execute_start(self, steps: list[StartStep], events: Events, cancel: threading.Event) -> dict[str, Outcome]:
        """Each roll's pre-stop call to every task it runs now (one that cannot be reached keeps that service as it
        is: it fails, not replaced); one `stack deploy` of the wave's deploys; for a restore, swarm's own rollback
        (or nothing, as is); then every service awaited (ready.py) by the run id its tasks to come carry. A wave
        that fails while a node is not ready says which of the stack's tasks are on it."""
        import uuid

        from .. import hooks
        from ..parallel import run_parallel
        from ..results import Outcome
        from .ready import wait_ready
        failed: dict[str, str] = {}
        rolls = [step for step in steps if step.pre_stop]
        if rolls:
            snap = self.stack.snapshot(max_age=0)
            calls = {}
            for step in rolls:
                svc = snap.services.get(step.service.compose_service)
                found, unreached = self.reacher.pre_stops(step.service, svc.running if svc else [])
                if unreached:
                    failed[step.service.name] = (f"{unreached}: not replaced, it runs on as it was (a trading service "
                                                 "is not replaced without being told to stop taking orders)")
                calls.update({h.service: h for h in found} if not unreached else {})
            for answered, line in run_parallel({n: (lambda h=h: hooks.call(h))
                                                for n, h in calls.items()}).values():  # "stop taking orders" first
                (events.info if answered else events.warn)(line)
        deploys = [step for step in steps if step.action == DEPLOY and step.service.name not in failed]
        replicas = {step.service.name: step.replicas for step in steps}
        rollout = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        rollouts = {step.service.name: rollout if step.action == DEPLOY else step.rollout for step in steps}
        existing = frozenset() if len(deploys) == len(steps) else frozenset(  # a restore's old tasks (ready.py)
            t.id for svc in self.stack.snapshot(max_age=0).services.values() for t in svc.tasks)
        deployed = time.time()
        if deploys:
            self._rollouts.add(rollout)  # before: a deploy that fails half-way may have changed some services
            try:
                self.stack.deploy([step.service for step in deploys], replicas, rollout,
                                  {step.service.name: step.pin[0] for step in deploys if step.pin})
            except TmtError as exc:  # nothing of the wave was replaced: a rolled service runs on as it was
                failed.update({step.service.name: str(exc) + (
                    "; its old task runs on after its pre-stop call: check that it works" if step.pre_stop else "")
                    for step in deploys})
        for step in (s for s in steps if s.action == ROLLBACK):
            try:
                self.stack.rollback(step.service_id)
            except TmtError as exc:
                failed[step.service.name] = f"could not roll it back: {exc}"
        awaited = [step.service for step in steps if step.service.name not in failed]
        waited = wait_ready(self.stack, awaited, replicas, rollouts, deployed, cancel, self._address, existing)
        self._lost |= waited.lost
        results = {}
        for step in steps:
            s = step.service
            if s.name in failed or s.name in waited.failed:
                results[s.name] = Outcome(s.name, "failed", s.port, detail=failed.get(s.name) or waited.failed[s.name])
            elif s.name in waited.ready:
                task = waited.ready[s.name]
                results[s.name] = Outcome(s.name, "done" if s.oneshot else "running", s.port,
                                          f"task {task.name} on {task.node}", waited.seconds[s.name],
                                          "exit 0" if s.oneshot else "rolled" if step.roll else "")
            else:
                results[s.name] = Outcome(s.name, "starting", s.port,
                                          detail="interrupted before it was ready (the swarm carries on with it)")
        if waited.failed:
            for line in nodes.lost(self.stack.snapshot(max_age=0)):
                events.warn(line)
        return results

    def tidy(self) -> None:
        """Nothing outlives a stop here: the engine keeps no record the next run could be misled by."""

    # -- reading ---------------------------------------------------------------------------------------------
    def logs(self, service: Service, tail: int) -> list[str]:
        """Its newest task's own output, wherever it runs (never an older task's, on this node or another): from
        its container where it is on this node, else `docker service logs` of that task alone."""
        svc = self.stack.snapshot(max_age=0).services.get(service.compose_service)
        newest = svc.tasks[0] if svc and svc.tasks else None
        if newest is None:
            return []
        if newest.container and newest.node_id == self.stack.local_node:
            return self.stack.engine.logs(newest.container, tail)
        if newest.node_note in LOST:  # its node cannot be asked
            return []
        try:
            done = self.stack.docker("service", "logs", "--no-trunc", "--raw", "--tail", str(tail), newest.id)
        except TmtError:
            return []
        return (done.stdout + done.stderr).splitlines()[-tail:]

    def _address(self, service: Service, task: Task) -> Service | None:
        """Where a task answers from here (None: nothing reaches it)."""
        return self.reacher.reach(service, task).target

    def address(self, service: Service) -> Service:
        return self.reacher.address(service)

    # -- docker-restart.py's own commands ---------------------------------------------------------------------
    def status_view(self) -> StatusView:
        snap = self.stack.snapshot(max_age=0)  # a snapshot is only had from a manager: no need to ask /info
        wanted = [s.compose_service for s in self.registry.services.values()
                  if s.compose_service in self.stack.project.services and not s.oneshot]
        return status_view.view(snap, {s.compose_service: s.name for s in self.registry.services.values()}, wanted)

    def log_lines(self, services: list[Service], tail: int | None, follow: bool) -> Iterator[str]:
        """The task logs of these services (every deployed service's when none is named). With `tail`, the last
        lines of each service in time order, whichever of its tasks (and nodes) wrote them (`docker service logs
        --tail` gives that many of each task, grouped by task); with `follow`, what comes next, until the
        generator is closed."""
        self.stack.engine.ping()
        names = [s.compose_service for s in services] or list(self.stack.snapshot().services)
        if tail is not None:
            for name in names:
                yield from self._last_lines(self.stack.service_name(name), tail)
            if not follow:
                return
            tail = 0
        args = ["--no-trunc", *(["--tail", str(tail)] if tail is not None else []), *(["--follow"] if follow else [])]
        env = endpoint.current().pin(os.environ)
        yield from cli.lines([["docker", "service", "logs", *args, self.stack.service_name(name)] for name in names],
                             env, merge_stderr=True)

    def _last_lines(self, swarm_service: str, tail: int) -> list[str]:
        """The service's last `tail` lines in time order, as `docker service logs` prints them (task and node first)."""
        from ..engine import engine_time
        try:
            done = self.stack.docker("service", "logs", "--no-trunc", "--timestamps", "--tail", str(tail),
                                     swarm_service)
        except TmtError as exc:
            return [f"{swarm_service}: {exc}"]
        lines = []
        for line in (done.stdout + done.stderr).splitlines():
            stamp, _, text = line.partition(" ")
            when = engine_time(stamp)
            if when is None:  # not a log line (a warning of the CLI): keep it, first
                lines.append((0.0, line))
                continue
            lines.append((when, text))
        return [text for _, text in sorted(lines, key=lambda item: item[0])[-tail:]] if tail else []

    def teardown(self) -> Teardown:
        self.stack.engine.ping()
        label = self.stack.label
        return Teardown(f"stack {self.stack.name}", len(self.stack.engine.listed(label)),
                        tuple(self.stack.engine.volumes(label)), tuple(self.stack.engine.networks(label)))

    def in_the_way(self, teardown: Teardown) -> list[str]:
        """What would make `remove(teardown)` fail half-way: a volume or network of the stack that a container
        other than its tasks uses (engine/in_use.py)."""
        from ..engine.in_use import foreign_users
        stack = self.stack.name
        return foreign_users(self.stack.engine, teardown.owner, teardown.volumes, teardown.networks,
                             lambda labels: labels.get(STACK_LABEL) == stack)

    def remove(self, teardown: Teardown | None, events: Events) -> None:
        """`docker stack rm`, then wait until its containers are gone (volumes are in use until then) and
        remove the volumes `teardown` listed (None: keep every volume). A network of the stack that outlives its
        containers is removed here: `stack rm` tries once, and the engine refuses while a task's endpoint is going."""
        label = self.stack.label
        snap = self.stack.snapshot(max_age=0)
        if snap.services or snap.relay or self.stack.engine.networks(label):
            away = {n.hostname: [t.name for svc in snap.services.values() for t in svc.tasks
                                 if t.node_id == n.id and t.container]
                    for n in snap.nodes.values() if n.state != "ready"}
            self.stack.remove()
            deadline = time.monotonic() + max(s.stop_grace for s in self.registry.services.values()) + STOP_SLACK
            while self.stack.engine.listed(label) or self.stack.engine.networks(label):
                if time.monotonic() > deadline:
                    raise OperationFailed(f"stack {self.stack.name} was removed, but its containers or networks are "
                                          f"still there: see `docker stack ps {self.stack.name}`")
                if not self.stack.engine.listed(label):
                    for network in self.stack.engine.networks(label):
                        try:
                            self.stack.engine.remove("networks", network)
                        except TmtError:  # still in use, or gone meanwhile: asked again
                            pass
                time.sleep(0.2)
            events.ok(f"removed stack {self.stack.name} (its services and networks)")
            for node, tasks in away.items():
                if tasks:  # the swarm cannot reach them: they stay until the node is back (or for good)
                    events.warn(f"node {node} is not ready: the containers of {', '.join(tasks)} stay there; once it "
                                f"is back, check it: docker ps -a --filter label={label}")
        else:
            events.info(f"stack {self.stack.name} is not deployed: nothing to remove")
        for volume in sorted(set(teardown.volumes if teardown else ()) & set(self.stack.engine.volumes(label))):
            self.stack.engine.remove("volumes", volume)

    def extra_disk_paths(self) -> list:
        return [Engine(timeout=2).root_dir()]
