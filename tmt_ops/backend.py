"""What a backend (native processes or docker compose) reports about one service, in one vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

from .states import ServiceState


@dataclass(frozen=True)
class ServiceStatus:
    service: str  # the registry's name
    state: ServiceState
    pids: tuple[int, ...] = ()  # native: the service's root process first
    container: str | None = None  # docker: container name
    engine_health: str | None = None  # docker: the engine's healthcheck (healthy / unhealthy / starting)
    uptime_seconds: float | None = None
    restart_count: int | None = None
    exit_code: int | None = None
    detail: str = ""
    # Is the service's port answered by the service itself: native, the listening socket is held by one of
    # its processes; docker, its running container publishes the port. None: nothing to say (not running,
    # or nothing listens).
    holds_port: bool | None = None
