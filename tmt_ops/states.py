"""The vocabulary of states every layer shares: backends report them, lifecycle and health read them."""

from enum import Enum


class ServiceState(str, Enum):
    """What a backend says about a service's processes or containers."""

    RUNNING = "running"
    STARTING = "starting"
    STOPPED = "stopped"
    FAILED = "failed"  # exited with an error, or a container that is dead / restarting


class Health(str, Enum):
    """The outcome of one probe; the words are those the existing JSON consumers parse, plus two."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"  # answers, but says it is degraded
    STARTING = "starting"  # answers, not ready yet (503 while initialising, Redis LOADING)
    UNHEALTHY = "unhealthy"  # answers badly, or refuses the connection
    TIMEOUT = "timeout"
    ERROR = "error"  # the probe itself could not run (bad address, protocol garbage)

    @property
    def ok(self) -> bool:
        return self is Health.HEALTHY


SERVING = (Health.HEALTHY, Health.DEGRADED)  # it answers and serves: degraded is reported, never fatal


class Overall(str, Enum):
    """A whole report's verdict, ordered by severity; the value of each is its exit code too."""

    HEALTHY = "healthy"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def exit_code(self) -> int:
        return {"healthy": 0, "warning": 1, "critical": 2}[self.value]
