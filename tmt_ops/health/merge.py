"""Pure rules: a probe's verdict joined with what the backend says about the same service.

The probe says whether something answers on the service's port; the backend says what runs the service
(a container and its engine healthcheck, or our processes) and whether the port is the service's own. An
answer counts for the service only when it is: anything else answering there (a stray process, another
project's container) leaves the service "not running", whatever it said. Where probe and backend disagree
otherwise the report says so, and a service that is merely on its way up counts as starting.

A service the backend has nothing to say about (status None: infrastructure that is not part of the
deployment, such as a database installed on the host) is judged by its probe alone.

A service that says it is starting (HTTP 503 "not initialized") is starting only within its startup_timeout of
its own start (its root process, its container's or task's start): the real orchestrator answers 503 for ever
when its start-up failed, so past that it is unhealthy, "still not ready".

A service that runs on after its pre-stop call ("stop taking orders", prestopped.py) answers as if all were
well: while the very run that got the call is up, it is degraded, and says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backends import ServiceStatus
from ..probes import ProbeResult
from ..states import SERVING, Health, ServiceState

if TYPE_CHECKING:
    from ..prestopped import PreStopped
    from ..registry import Service

NOT_RUNNING = (ServiceState.STOPPED, ServiceState.FAILED)


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def container_words(status: ServiceStatus) -> str:
    if status.container is None:
        return status.detail or "no container"
    words = f"container {status.container} is {status.state.value}"
    if status.exit_code is not None and status.state in NOT_RUNNING:
        words += f" (exit code {status.exit_code})"
    return _join(words, status.detail) or words


def impostor(result: ProbeResult, status: ServiceStatus | None) -> bool:
    """The port accepted a connection, but the backend cannot show that the service is what answers there:
    nothing of the service runs, or the port is held by another process (native) or not published by the
    service's running container (docker). Such an answer never counts for the service."""
    if not result.port_open or status is None:
        return False
    return status.state in NOT_RUNNING or status.holds_port is False


def merge_docker(result: ProbeResult, status: ServiceStatus | None) -> tuple[Health, str | None]:
    health, error = _merge_docker(result, status)
    if status is not None and status.instances:  # its other instances: all must serve for the service to
        return (Health.DEGRADED if health in SERVING else health), _join(error, status.instances)
    return health, error


def _merge_docker(result: ProbeResult, status: ServiceStatus | None) -> tuple[Health, str | None]:
    if status is None:
        return result.status, result.error
    if status.unprobed is not None:  # nothing was probed: the engine's view is all there is, and says so
        return _engine_only(status)
    answered = result.status is Health.HEALTHY
    if status.state in NOT_RUNNING:
        return result.status, _join(result.error, container_words(status))
    if status.state is ServiceState.STARTING or status.engine_health == "starting":
        if answered:
            return result.status, result.error
        return Health.STARTING, _join(result.error, "container is starting")
    if status.engine_health == "unhealthy":
        if answered:
            return Health.DEGRADED, "answers, but the engine's healthcheck reports unhealthy"
        return result.status, _join(result.error, "engine healthcheck: unhealthy")
    return result.status, result.error


def _engine_only(status: ServiceStatus) -> tuple[Health, str | None]:
    """A verdict without a probe (status.unprobed says why): the engine's healthcheck of the instance, marked as
    the only evidence; without one nothing tells whether it works (degraded: not verified)."""
    if status.state in NOT_RUNNING:
        return Health.UNHEALTHY, container_words(status)
    if status.state is ServiceState.STARTING or status.engine_health == "starting":
        return Health.STARTING, f"not probed: {status.unprobed}; it is starting"
    if status.engine_health == "healthy":
        return Health.HEALTHY, (f"not probed: {status.unprobed}; the engine's healthcheck passes: that is the only "
                                "evidence")
    if status.engine_health == "unhealthy":
        return Health.UNHEALTHY, f"not probed: {status.unprobed}; engine healthcheck: unhealthy"
    return Health.DEGRADED, (f"not verified: {status.unprobed}, and it has no healthcheck: nothing tells whether it "
                             "works")


def merge_native(result: ProbeResult, status: ServiceStatus | None) -> tuple[Health, str | None]:
    if status is None:
        return result.status, result.error
    answered = result.status is Health.HEALTHY
    if status.state is ServiceState.STARTING and not answered:
        return Health.STARTING, _join(result.error, "process is starting")
    if status.state is ServiceState.RUNNING and result.port_open is False and status.pids:
        return result.status, _join(result.error, f"process {status.pids[0]} runs but does not accept connections")
    if status.state is ServiceState.FAILED:
        return result.status, _join(result.error, status.detail or "process failed")
    return result.status, result.error


def past_startup(service: "Service", health: Health, error: str | None,
                 status: ServiceStatus | None) -> tuple[Health, str | None, bool]:
    """(verdict, why, stuck): a STARTING verdict of a service up longer than its startup_timeout is UNHEALTHY
    (stuck); a service whose start time is not known stays starting."""
    if health is not Health.STARTING or status is None or status.uptime_seconds is None \
            or status.uptime_seconds <= service.startup_timeout:
        return health, error, False
    return Health.UNHEALTHY, _join(f"still not ready after {status.uptime_seconds:.0f} s (its startup_timeout is "
                                   f"{service.startup_timeout:g} s)", error), True


def after_pre_stop(health: Health, error: str | None, status: ServiceStatus | None, record: "PreStopped | None",
                   asked_at: float) -> tuple[Health, str | None]:
    """A verdict joined with a record that the service ran on after its pre-stop call: a running service that
    serves is degraded by it, unless its backend shows it started after the record (at `asked_at`, wall clock,
    it had been up uptime_seconds): that is another run, which never got the call. Without an uptime the record
    holds (a trading system that may not trade is said, not guessed away)."""
    if record is None or status is None or status.state is not ServiceState.RUNNING or health not in SERVING:
        return health, error
    if record.at is not None and status.uptime_seconds is not None and asked_at - status.uptime_seconds > record.at:
        return health, error
    return Health.DEGRADED, _join(error, record.describe())


def join(runs: str, result: ProbeResult, status: ServiceStatus | None) -> tuple[Health, str | None]:
    """A probe's verdict joined with the status of the backend that runs the service, by what it runs it as
    (modes.Way.runs): processes on this host, or containers."""
    from ..modes import PROCESSES
    return (merge_native if runs == PROCESSES else merge_docker)(result, status)
