"""One container as the engine inspects it, and what that means in the toolkit's vocabulary."""

from __future__ import annotations

import time

from ..data import dataclass
from ..engine import engine_time
from ..states import ServiceState

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


# Set by compose on each container it creates (v1 and v2). An image compose built carries the project and
# service labels too, and every container made from it inherits them (a swarm task, a `docker run`): only
# this one tells compose's own containers from those.
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"


def project_label(project: str) -> str:
    """The label filter of one compose project's volumes and networks."""
    return f"{PROJECT_LABEL}={project}"


def container_labels(project: str) -> tuple[str, str]:
    """The label filters of the containers compose made for one project (and only those)."""
    return project_label(project), CONFIG_HASH_LABEL


@dataclass(frozen=True)
class Container:
    service: str  # the compose service
    id: str
    name: str
    status: str  # the engine's word: created, running, paused, restarting, removing, exited, dead
    health: str | None  # starting / healthy / unhealthy; None without a healthcheck
    ports: tuple[str, ...]  # published, as "HOST_IP:HOST_PORT->PORT/tcp"
    started_at: float | None
    restart_count: int
    exit_code: int | None  # only once it has stopped
    image: str  # as the compose file names it (Config.Image)
    image_id: str  # the image it was made from (sha256:...), whatever its name points at now

    @classmethod
    def from_inspect(cls, data: dict) -> "Container":
        state = data["State"]
        ports = []
        for inside, bindings in sorted((data["NetworkSettings"].get("Ports") or {}).items()):
            for b in bindings or ():
                ports.append(f"{b['HostIp']}:{b['HostPort']}->{inside}")
        status = state["Status"]
        stopped = status in ("exited", "dead")
        return cls(service=data["Config"]["Labels"].get(SERVICE_LABEL, ""), id=data["Id"], name=data["Name"].lstrip("/"),
                   status=status, health=(state.get("Health") or {}).get("Status"), ports=tuple(ports),
                   started_at=engine_time(state.get("StartedAt")),
                   restart_count=data.get("RestartCount", 0),
                   exit_code=state.get("ExitCode") if stopped else None, image=data["Config"]["Image"],
                   image_id=data["Image"])

    def publishes(self, port: int) -> bool:
        """The container runs and publishes `port` on the host (so what answers there is this container)."""
        return self.status == "running" and any(p.split("->")[0].rsplit(":", 1)[-1] == str(port) for p in self.ports)

    @property
    def uptime_seconds(self) -> float | None:
        if self.status != "running" or self.started_at is None:
            return None
        return round(max(0.0, time.time() - self.started_at), 1)

    @property
    def state(self) -> ServiceState:
        if self.status == "running":
            return ServiceState.STARTING if self.health == "starting" else ServiceState.RUNNING
        if self.status in ("restarting", "dead") or self.status == "exited" and self.exit_code:
            return ServiceState.FAILED
        return ServiceState.STOPPED  # created, paused, removing, exited 0

    def as_json(self) -> dict:
        return {"service": self.service, "container": self.name, "status": self.status, "state": self.state.value,
                "health": self.health, "ports": list(self.ports), "uptime_seconds": self.uptime_seconds,
                "restart_count": self.restart_count, "exit_code": self.exit_code, "image": self.image}
