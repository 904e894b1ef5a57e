"""The compose backend's plan steps: the containers to stop and remove, the services to bring up."""

from __future__ import annotations

from typing import ClassVar

from ..data import dataclass
from ..hooks import HookCall, first
from ..registry import Service


BACKEND = "compose"  # the backend that carries these steps out (its lookup name)

@dataclass(frozen=True)
class StopStep:
    service: str
    containers: tuple[tuple[str, str], ...]  # (id, name) of each container of the service, running or not
    grace: float  # seconds between SIGTERM and the engine's SIGKILL
    pre_stop: HookCall | None  # planned only for a running container
    reason: str
    frozen: str | None = None  # why it cannot act on a stop now (a paused container): preflight.unresponsive
    backend: ClassVar[str] = BACKEND

    @property
    def runs_as(self) -> str:
        return f"container {self.containers[0][1]}"

    def describe(self) -> str:
        names = ", ".join(name for _, name in self.containers)
        hook = first(self.pre_stop)
        return (f"{self.service}: {hook}stop container {names} ({self.grace:g}s grace, then the engine kills it), "
                f"then remove it - {self.reason}")


@dataclass(frozen=True)
class StartStep:
    service: Service
    compose_service: str
    restore: str | None = None  # a rollback's start: which image it brings back (operations.py)
    retry: bool = False  # that is what just failed
    image: str | None = None  # a rollback's: the kept image (previous.py) instead of the compose file's
    backend: ClassVar[str] = BACKEND
    replaces: ClassVar[bool] = False  # a restart stops it first (its stop step), never in place

    def describe(self) -> str:
        on = f" on {self.image}" if self.image else ""
        return (f"start {self.service.name}: a new container of compose service {self.compose_service}{on}, "
                f"port {self.service.port}")
