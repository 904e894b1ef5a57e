"""Pure rules: a probe's verdict joined with what the backend says about the same service.

The probe says whether the service answers; the backend says what runs it (a container and its engine
healthcheck, or our process). Where they disagree the report says so, and a service that is merely on its
way up counts as starting rather than down.
"""

from __future__ import annotations

from ..backend import ServiceStatus
from ..probes import ProbeResult
from ..states import Health, ServiceState

NOT_RUNNING = (ServiceState.STOPPED, ServiceState.FAILED)


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _container_words(status: ServiceStatus) -> str:
    if status.container is None:
        return status.detail or "no container"
    words = f"container {status.container} is {status.state.value}"
    if status.exit_code is not None and status.state in NOT_RUNNING:
        words += f" (exit code {status.exit_code})"
    return _join(words, status.detail) or words


def merge_docker(result: ProbeResult, status: ServiceStatus | None, project: str) -> tuple[Health, str | None]:
    answered = result.status is Health.HEALTHY
    if status is None:
        if answered:
            return Health.DEGRADED, f"answers, but no container of compose project '{project}' runs it"
        return result.status, _join(result.error, f"no container of compose project '{project}'")
    if status.state in NOT_RUNNING:
        if answered:
            return Health.DEGRADED, f"answers, but its {_container_words(status)}"
        return result.status, _join(result.error, _container_words(status))
    if status.state is ServiceState.STARTING or status.engine_health == "starting":
        if answered:
            return result.status, result.error
        return Health.STARTING, _join(result.error, "container is starting")
    if status.engine_health == "unhealthy":
        if answered:
            return Health.DEGRADED, "answers, but the engine's healthcheck reports unhealthy"
        return result.status, _join(result.error, "engine healthcheck: unhealthy")
    return result.status, result.error


def merge_native(result: ProbeResult, status: ServiceStatus | None) -> tuple[Health, str | None]:
    if status is None:
        return result.status, result.error
    answered = result.status is Health.HEALTHY
    if status.state is ServiceState.STARTING and not answered:
        return Health.STARTING, _join(result.error, "process is starting")
    if status.state is ServiceState.RUNNING and result.port_open is False and status.pids:
        return result.status, _join(result.error, f"process {status.pids[0]} runs but does not accept connections")
    if status.state is ServiceState.FAILED and not answered:
        return result.status, _join(result.error, status.detail or "process failed")
    return result.status, result.error
