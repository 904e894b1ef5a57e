"""The nodes of a swarm of several, as a run must see them before and while it changes the stack: where each service
may run, what would make its task fail on a node, which service must stay on its node (its data), and what is
on a node that is lost.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from ..registry import Service
from . import stackfile
from .reach import Reacher
from .stack import Stack
from .state import Snapshot, SwarmService

if TYPE_CHECKING:
    from ..preflight import Problem

PORT_CHECK = 0.5  # seconds to connect to a node's published port (something answers: it is taken)


def pin(stack: Stack, service: Service, svc: SwarmService | None, snap: Snapshot) -> tuple[str, str] | None:
    """(node id, hostname) a service must stay on: on a swarm of several nodes, one that keeps its data in a local
    volume and whose placement the registry and compose file leave open stays where its task runs (or where its
    last deploy pinned it). A database never moves away from its data; None for anything else."""
    spec = stack.spec(service)
    if len(snap.nodes) < 2 or not stackfile.local_volumes(stack.model, spec) or stackfile.constraints(spec, service):
        return None
    node_id = next((t.node_id for t in (svc.running if svc else ()) if t.node_id), None)
    if node_id is None:
        pinned = [c.split("==", 1)[1].strip() for c in (svc.constraints if svc else ())
                  if c.replace(" ", "").startswith("node.id==")]
        node_id = pinned[0] if pinned else None
    if node_id is None:
        return None
    node = snap.nodes.get(node_id)
    return node_id, node.hostname if node else node_id


def problems(stack: Stack, reacher: Reacher, starting: list[Service]) -> list[Problem]:
    """For a swarm of several nodes, each line a reason the run would end with a service down: no node may run
    one (its constraints, the nodes' state); a public service's host-mode port answered on a node that may run its
    task (the task would fail there: "port is already allocated"), or more replicas than such nodes; a task last
    seen running on a node that is down and not drained (it may still run there, cut off: a start elsewhere could
    run the service twice); a roll whose pre-stop call cannot reach one of its tasks."""
    from ..preflight import Problem
    snap = stack.snapshot(max_age=0)
    found = []
    for s in starting:
        svc = snap.services.get(s.compose_service)
        spec = stack.spec(s)
        kept = pin(stack, s, svc, snap)
        wanted = stackfile.constraints(spec, s) + ([f"node.id == {kept[0]}"] if kept else [])
        eligible = [n for n in snap.nodes.values() if n.usable and all(n.satisfies(c) for c in wanted)]
        replicas = s.swarm.replicas or (svc.replicas if svc and svc.replicas else
                                        int((spec.get("deploy") or {}).get("replicas") or 1))
        if not eligible:
            where = f"its placement ({', '.join(wanted)})" if wanted else "placement"
            nodes = "; ".join(n.describe() for n in snap.nodes.values())
            found.append(Problem(f"{s.name}: no node may run it: {where} and the nodes' state leave none ({nodes})", 1))
            continue
        if s.public and s.port:
            ours = {t.node_id for t in (svc.running if svc else ())}
            taken = [n for n in eligible if n.id != stack.local_node and n.id not in ours
                     and n.address and _answers(n.address, s.port)]
            for n in taken:
                found.append(Problem(f"{s.name}: port {s.port} answers on node {n.hostname} ({n.address}), where no "
                                     f"task of stack {stack.name} holds it: a task placed there would fail (port is "
                                     "already allocated): free it, or keep the service off that node "
                                     "(swarm.placement in the registry)", 1))
            if len(eligible) - len(taken) < replicas:
                found.append(Problem(f"{s.name}: {replicas} replicas publish port {s.port} in host mode, one task per "
                                     f"node, and only {len(eligible) - len(taken)} node(s) may run one", 1))
        lost = next(((t, snap.nodes[t.node_id]) for t in (svc.tasks if svc else ())
                     if t.state in ("running", "starting") and t.node_id in snap.nodes
                     and snap.nodes[t.node_id].state != "ready" and snap.nodes[t.node_id].availability != "drain"),
                    None)
        if lost:
            task, node = lost
            found.append(Problem(
                f"{s.name}: task {task.name} was last seen {task.state} on {node.hostname}, which is {node.state}: it "
                f"may still run there, cut off from the swarm, and a start elsewhere could run {s.name} twice. Once "
                f"{node.hostname} is known to be gone, drain it (docker node update --availability drain "
                f"{node.hostname}) and run this again; or wait until it is back", 1))
        if svc is not None and svc.running:
            unreached = reacher.pre_stops(s, svc.running)[1]
            if unreached:
                found.append(Problem(f"{s.name}: {unreached}: a roll would replace it without telling it to stop "
                                     "taking orders", 1))
    return found


def lost(snap: Snapshot) -> list[str]:
    """One line per node that is not ready, naming the stack's tasks on it: those meant to run, and those the swarm
    gave up on (they may still run there)."""
    lines = []
    for node in (n for n in snap.nodes.values() if n.state != "ready"):
        there = [f"{t.name} ({t.state}{', shut down by the swarm' if t.given_up else ''})"
                 for svc in snap.services.values() for t in svc.tasks
                 if t.node_id == node.id and (t.live or t.given_up)]
        said = f"tasks of stack {snap.stack} there: {', '.join(there)}" if there else \
            f"no task of stack {snap.stack} there"
        lines.append(f"node {node.hostname} is {node.state}: {said}")
    return lines


def _answers(host: str, port: int) -> bool:
    """Something accepts a connection at host:port."""
    try:
        with socket.create_connection((host, port), timeout=PORT_CHECK):
            return True
    except OSError:
        return False
