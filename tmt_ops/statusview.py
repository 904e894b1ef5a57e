"""`status` in any mode (like supervisorctl status, pm2 ls, docker compose ps): each service the deployment runs, by
what its own backend says (ServiceStatus), as a table and as a versioned JSON document; exit 0 when every one runs
(a job that ended well counts as done), else 1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from .results import StatusView, Table
from .states import ServiceState

if TYPE_CHECKING:
    from .backends import ServiceStatus
    from .registry import Registry

JSON_VERSION = 1  # only ever add fields
UP = (ServiceState.RUNNING, ServiceState.STARTING)


def uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{minutes:02d}m" if hours else \
        f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _runs_as(status: "ServiceStatus") -> str:
    if status.container:
        return status.container
    if status.pids:
        return "pid " + ", ".join(map(str, status.pids[:4])) + (" ..." if len(status.pids) > 4 else "")
    return "-"


def _done(registry: "Registry", status: "ServiceStatus") -> bool:
    return registry.service(status.service).oneshot and status.exit_code == 0


def view(registry: "Registry", mode: str, statuses: Mapping[str, "ServiceStatus"],
         backends: Mapping[str, str]) -> StatusView:
    """statuses: service -> its backend's word; backends: service -> the backend's name."""
    rows, styles, services = [], [], []
    for name, status in statuses.items():
        service = registry.service(name)
        state = "done" if _done(registry, status) else status.state.value
        health = status.engine_health or "-"
        rows.append((name, state, backends[name], _runs_as(status), service.port or "-", uptime(status.uptime_seconds),
                     "-" if status.restart_count is None else status.restart_count, status.detail or "-"))
        styles.append("ok" if state in ("running", "done") and health in ("-", "healthy") else
                      "warn" if status.state is ServiceState.STARTING or state == "stopped" else "error")
        services.append({"service": name, "state": state, "backend": backends[name], "pids": list(status.pids),
                         "container": status.container, "engine_health": status.engine_health,
                         "uptime_seconds": status.uptime_seconds, "port": service.port,
                         "restarts": status.restart_count, "exit_code": status.exit_code, "detail": status.detail})
    up = all(s.state in UP or _done(registry, s) for s in statuses.values())
    table = Table(("SERVICE", "STATE", "BACKEND", "RUNS AS", "PORT", "UPTIME", "RESTARTS", "DETAIL"), tuple(rows),
                  tuple(styles))
    return StatusView({"version": JSON_VERSION, "mode": mode, "registry": str(registry.path), "services": services},
                      table if rows else None, 0 if up and statuses else 1,
                      () if rows else (("warn", "the registry has no service this deployment runs"),))
