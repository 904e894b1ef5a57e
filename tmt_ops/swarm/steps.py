"""The swarm backend's plan steps: a service scaled to zero, a service deployed in its wave."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..data import dataclass
from ..registry import Service

if TYPE_CHECKING:
    from ..hooks import HookCall

BACKEND = "swarm"  # the backend that carries these steps out (its lookup name)
# How a start step brings its service up: a deploy of the compose file's definition (a start, a roll); a restore
# by `docker service rollback` (the previous spec); or a restore that changes nothing (this run did not roll it)
DEPLOY, ROLLBACK, AS_IS = "deploy", "rollback", "as is"


@dataclass(frozen=True)
class StopStep:
    service: str
    swarm_service: str  # STACK_SERVICE
    service_id: str  # what is scaled: the id found under the stack's label, never a name someone else could own
    tasks: tuple[str, ...]  # its live tasks ("task tmt_orchestrator.1 on node-1: running")
    grace: float  # the service's stop_grace_period: SIGTERM, then the engine's SIGKILL
    pre_stop: HookCall | None  # to its first running task (the executor makes it), planned only while one runs
    reason: str
    frozen: str | None = None  # why it cannot act on a stop now (a paused task container): preflight.unresponsive
    more_pre_stops: tuple[HookCall, ...] = ()  # to each of its other running tasks, made before it is scaled
    refused: str | None = None  # why it is not stopped (its pre-stop cannot reach a task): the step fails
    backend: ClassVar[str] = BACKEND

    @property
    def runs_as(self) -> str:
        return f"service {self.swarm_service}"

    def describe(self) -> str:
        from ..hooks import first  # here: a status, which imports these steps, never describes one
        if self.refused:
            return f"{self.service}: {self.refused}"
        hook = first(self.pre_stop)
        if self.more_pre_stops:
            hook = f"{self.pre_stop.describe()} to each of its {1 + len(self.more_pre_stops)} tasks, then "
        return (f"{self.service}: {hook}scale service {self.swarm_service} to 0 ({self.grace:g}s grace, then the "
                f"engine kills its tasks) - {self.reason}")


@dataclass(frozen=True)
class StartStep:
    service: Service
    swarm_service: str
    replicas: int
    roll: bool  # it runs now: its tasks are replaced one by one (stop-first), a rolling restart
    # A roll's hook, called before its tasks are replaced: to each task that runs then, wherever it runs (its
    # address is found when it is called: the probe relay may be deployed by the run's preflight)
    pre_stop: HookCall | None
    restore: str | None = None  # a rollback's start: which definition it brings back (operations.py)
    retry: bool = False  # that is what just failed
    action: str = DEPLOY
    service_id: str | None = None  # ROLLBACK: the service, by the id found under the stack's label
    rollout: str | None = None  # ROLLBACK, AS_IS: the run id the tasks to await carry (stackfile.ROLLOUT_LABEL)
    frozen: str | None = None  # a roll's: why its running task cannot act on a stop now (a paused container)
    tasks: tuple[str, ...] = ()  # a roll's: its running tasks when planned ("task X.1 on node-2: running")
    pin: tuple[str, str] | None = None  # (node id, hostname) it stays on: its data is in a local volume there
    short: str | None = None  # a roll's: which of its replicas do not run now, and why
    backend: ClassVar[str] = BACKEND

    @property
    def replaces(self) -> bool:
        """It replaces a running service in place (a roll), with no stop step before it."""
        return self.roll

    def describe(self) -> str:
        n = f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"
        if self.action == ROLLBACK:
            return f"roll back {self.service.name}: `docker service rollback` of {self.swarm_service} ({n})"
        if self.action == AS_IS:
            return f"await {self.service.name}: its tasks as they run ({self.swarm_service}, {n}): nothing to undo"
        pinned = f", kept on {self.pin[1]} (its data is in a volume there)" if self.pin else ""
        if self.roll:
            hook = (f"{self.pre_stop.describe()} to {'each of its tasks' if len(self.tasks) > 1 else 'its task'} "
                    f"({'; '.join(self.tasks)}), then " if self.pre_stop else "")
            short = f" - {self.short}" if self.short else ""
            return (f"roll {self.service.name}: {hook}deploy service {self.swarm_service} anew ({n}{pinned}, each "
                    f"task stopped, then its replacement started and awaited){short}")
        return (f"start {self.service.name}: deploy service {self.swarm_service} with {n}{pinned}, port "
                f"{self.service.port}")
