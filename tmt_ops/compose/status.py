"""The project's containers as data: the ServiceStatus contract, the status table and the --json document."""

from __future__ import annotations

from ..backends import ServiceStatus
from ..results import StatusView, Table
from ..statusview import uptime
from ..states import ServiceState
from .containers import Container
from .project import Project

JSON_VERSION = 1  # only ever add fields


def service_statuses(project: Project, services) -> dict[str, ServiceStatus]:
    """Each of these registry services (run by this project) by its container; STOPPED without one."""
    by_service = {c.service: c for c in project.containers()}
    found = {}
    for service in services:
        c = by_service.get(service.compose_service)
        if c is None:
            found[service.name] = ServiceStatus(service.name, ServiceState.STOPPED, detail="no container")
            continue
        found[service.name] = ServiceStatus(service.name, c.state, container=c.name, engine_health=c.health,
                                            uptime_seconds=c.uptime_seconds, restart_count=c.restart_count,
                                            exit_code=c.exit_code, detail=c.status,
                                            holds_port=c.publishes(service.port))
    return found


def document(project: Project, containers: list[Container]) -> dict:
    return {"version": JSON_VERSION, "project": project.name, "compose_file": str(project.file),
            "containers": [dict(c.as_json(), registry_service=getattr(project.registry_service(c.service), "name", None))
                           for c in containers]}


def _style(c: Container) -> str:
    if c.status == "running" and c.health in (None, "healthy"):
        return "ok"
    return "warn" if c.state is ServiceState.STARTING or c.state is ServiceState.STOPPED else "error"


def view(project: Project) -> StatusView:
    """docker-restart.py status: the project's containers, as a table and as its --json document."""
    containers = project.containers()
    rows = tuple((c.service, c.name, c.status, c.health or "-", ", ".join(c.ports) or "-", uptime(c.uptime_seconds),
                  c.restart_count, "-" if c.exit_code is None else c.exit_code) for c in containers)
    table = Table(("SERVICE", "CONTAINER", "STATE", "HEALTH", "PORTS", "UPTIME", "RESTARTS", "EXIT"), rows,
                  tuple(_style(c) for c in containers)) if containers else None
    return StatusView(document(project, containers), table, status_code(containers, project),
                      () if containers else (("warn", f"project {project.name}: no containers"),))


def status_code(containers: list[Container], project: Project) -> int:
    """0 when every service of the stack has a running container, healthy where it has a healthcheck, and no
    job (a registry `type: oneshot`) has failed; else 1. A job whose container exited 0 is done, not down."""
    jobs = {name for name in project.services if getattr(project.registry_service(name), "oneshot", False)}
    running = {c.service for c in containers if c.status == "running" and c.health in (None, "healthy")}
    failed_job = any(c.service in jobs and c.state is ServiceState.FAILED for c in containers)
    return 0 if set(project.services) - jobs <= running and not failed_job else 1
