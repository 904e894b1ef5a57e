"""docker-restart.py --mode swarm status: each service of the stack with its desired and running replicas, its
tasks with their nodes, its failed tasks and their errors, an update or rollback the engine left paused, and
the swarm's nodes (state, availability, manager or worker) with the stack's tasks on each; a table or --json."""

from __future__ import annotations

import time

from ..results import StatusView, Table
from .state import Snapshot, SwarmService, Task

JSON_VERSION = 1  # only ever add fields
FAILED_SHOWN = 3  # recent failed tasks per service


def _task(t: Task) -> dict:
    return {"id": t.id, "name": t.name, "node": t.node, "state": t.state, "desired_state": t.desired,
            "error": t.error or None, "exit_code": t.exit_code, "container": t.container,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t.since)) if t.since else None}


def _healthy(svc: SwarmService) -> bool:
    return len(svc.running) >= svc.replicas


def _on_node(snap: Snapshot, node_id: str) -> list[Task]:
    """The stack's tasks on one node: those meant to run, and those last seen running that the swarm gave up on
    (a node lost or drained: they may still run there)."""
    return [t for svc in snap.services.values() for t in svc.tasks
            if t.node_id == node_id and (t.live or t.given_up and t.state in ("running", "starting"))]


def _task_here(t: Task) -> str:
    return f"{t.name.split('_', 1)[-1]} {t.state}" + (" (shut down by the swarm)" if t.given_up else "")


def document(snap: Snapshot, registry_names: dict[str, str], wanted: list[str]) -> dict:
    """registry_names: compose service -> registry service; wanted: the compose services the stack should run (one
    not deployed is listed with `deployed: false`). The engine that answered is an active manager: only a manager
    lists a swarm's services."""
    services = [{"service": svc.compose_service, "registry_service": registry_names.get(svc.compose_service),
                 "swarm_service": svc.name, "deployed": True, "desired": svc.replicas, "running": len(svc.running),
                 "healthcheck": svc.healthcheck, "published": list(svc.published), "ready": _healthy(svc),
                 "tasks": [_task(t) for t in svc.live], "failed_tasks": [_task(t) for t in svc.failed],
                 "update": {"state": svc.update[0], "message": svc.update[1] or None} if svc.update else None,
                 "constraints": list(svc.constraints)}
                for svc in snap.services.values()]
    services += [{"service": name, "registry_service": registry_names.get(name), "swarm_service": None,
                  "deployed": False, "desired": 0, "running": 0, "healthcheck": None, "published": [], "ready": False,
                  "tasks": [], "failed_tasks": [], "update": None, "constraints": []}
                 for name in wanted if name not in snap.services]
    return {
        "version": JSON_VERSION, "stack": snap.stack,
        "engine": {"swarm": "active", "manager": True,
                   "nodes": [{"hostname": n.hostname, "address": n.address, "state": n.state,
                              "availability": n.availability, "manager": n.manager, "role": n.role, "id": n.id,
                              "labels": dict(n.labels), "tasks": [_task(t) for t in _on_node(snap, n.id)]}
                             for n in snap.nodes.values()]},
        "services": services,
    }


def view(snap: Snapshot, registry_names: dict[str, str], wanted: list[str]) -> StatusView:
    """docker-restart.py --mode swarm status: the nodes in a line, then each service's replicas and tasks, then an
    update left paused and its recent failed tasks, then each node with the stack's tasks on it; or the --json
    document."""
    nodes = "; ".join(n.describe() for n in snap.nodes.values())
    before = [("info", f"stack {snap.stack} on a swarm of {len(snap.nodes)} node(s): {nodes}")]
    rows, styles = [], []
    for svc in snap.services.values():
        shown = svc.live or list(svc.tasks[:1])  # none meant to run: the newest, which says why
        tasks = ", ".join(f"{t.state}@{t.where}" for t in shown) or "-"
        health = ("healthy" if svc.running else "starting" if svc.live else "-") if svc.healthcheck else "none"
        error = next((f"{t.name}: {t.error}" for t in svc.failed if t.error), "-")
        rows.append((svc.compose_service, f"{len(svc.running)}/{svc.replicas}", tasks, health,
                     ", ".join(map(str, svc.published)) or "-", error))
        styles.append("ok" if _healthy(svc) and svc.replicas else "warn" if svc.live or not svc.replicas else "error")
    for name in wanted:
        if name not in snap.services:
            rows.append((name, "-", "not deployed", "-", "-", "-"))
            styles.append("error")
    if not snap.services:
        before.append(("warn", f"stack {snap.stack}: no services deployed"))
    table = Table(("SERVICE", "REPLICAS", "TASKS", "HEALTH", "PUBLISHED", "LAST FAILURE"), tuple(rows),
                  tuple(styles)) if rows else None
    after = []
    for svc in snap.services.values():
        if svc.update_stuck:
            after.append(("warn", f"{svc.compose_service}: {svc.update_stuck}"))
        after += [("dim", f"  {t.describe()}") for t in svc.failed[:FAILED_SHOWN]]
    return StatusView(document(snap, registry_names, wanted), table, status_code(snap, wanted), tuple(before),
                      (*after, *_nodes(snap)))


def _nodes(snap: Snapshot) -> list[tuple[str, str]]:
    """The nodes as a second table (style, line): role, state, availability, address, the stack's tasks there."""
    header = ("NODE", "ROLE", "STATE", "AVAILABILITY", "ADDRESS", f"TASKS OF {snap.stack}")
    rows, styles = [], []
    for n in snap.nodes.values():
        rows.append((n.hostname, n.role + (f" ({n.manager})" if n.manager else ""), n.state, n.availability,
                     n.address or "-", ", ".join(_task_here(t) for t in _on_node(snap, n.id)) or "-"))
        styles.append("ok" if n.usable else "warn" if n.state == "ready" else "error")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [("bold", line.format(*header).rstrip()),
            *((style, line.format(*row).rstrip()) for row, style in zip(rows, styles))]


def status_code(snap: Snapshot, wanted: list[str]) -> int:
    """0 when every wanted service (compose names) has all its desired replicas running, at least one; else 1."""
    ok = {name for name, svc in snap.services.items() if svc.replicas and _healthy(svc)}
    return 0 if set(wanted) <= ok else 1
