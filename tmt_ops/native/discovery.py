"""Which processes are ours, which ports are held by someone else.

Ours: a run record whose (pid, create time) matches a live process; or, with no such record, a listener
on the service's port that is (or descends from) the service's registered command in its directory
(identity.service_root). Everything else is foreign and only ever described, never signalled here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import psutil

from ..ports import Holder, listeners, port_open
from ..registry import Registry, Service
from . import records
from .identity import service_root
from .procs import SAME_PROCESS, Proc, group_members, leads_session, live, tree
from .records import RunRecord

CONNECT_TIMEOUT = 0.2  # a local port either accepts at once or not at all


@dataclass(frozen=True)
class Found:
    """A service's running processes and how to stop them."""

    service: str
    root: Proc | None  # the service's own process; None when only members of its group outlived it
    members: tuple[Proc, ...]  # root first, then descendants or the rest of its group
    pgid: int | None  # the group to signal where the service leads it; None: signal the tree
    how: str  # why we know it is ours


@dataclass(frozen=True)
class Discovery:
    ours: Mapping[str, Found] = field(default_factory=dict)
    foreign: Mapping[str, tuple[Holder, ...]] = field(default_factory=dict)  # managed port held by another
    stale: Mapping[str, RunRecord] = field(default_factory=dict)  # records whose process is gone


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _from_record(record: RunRecord) -> Found | None:
    root = live(Proc(record.pid, record.create_time))
    if root is not None:
        if record.leads_group and leads_session(root.pid):
            members = tuple(Proc.of(p) for p in group_members(record.pgid, record.create_time))
            members = (Proc(record.pid, record.create_time),) + tuple(m for m in members if m.pid != record.pid)
            return Found(record.service, members[0], members, record.pgid,
                         f"run record: pid {record.pid} started {_clock(record.started_at)}, leads its group")
        return Found(record.service, Proc.of(root), tuple(tree(root)), None,
                     f"run record: pid {record.pid} started {_clock(record.started_at)}")
    if record.leads_group and not _pid_reused(record):
        # The leader exited (a wrapper that does not forward signals); what it started may still run.
        # Its group id cannot have been reused while members of the group are alive.
        left = group_members(record.pgid, record.create_time)
        if left:
            return Found(record.service, None, tuple(Proc.of(p) for p in left), record.pgid,
                         f"run record: leader pid {record.pid} exited, {len(left)} process(es) of its group remain")
    return None


def _pid_reused(record: RunRecord) -> bool:
    """Another process now has the record's pid: then neither that pid nor its group is ours."""
    try:
        return abs(psutil.Process(record.pid).create_time() - record.create_time) > SAME_PROCESS
    except psutil.NoSuchProcess:
        return False


def _from_listener(service: Service, holders: Iterable[Holder]) -> Found | None:
    for holder in holders:
        root = service_root(service, holder.pid)
        if root is None:
            continue
        try:
            group = root.pid if leads_session(root.pid) else None
            return Found(service.name, Proc.of(root), tuple(tree(root)), group,
                         f"no run record; pid {root.pid} runs the registered command and listens on port {service.port}")
        except psutil.NoSuchProcess:
            continue
    return None


def discover(registry: Registry, services: Iterable[Service] | None = None) -> Discovery:
    """Find the given managed services (all managed ones by default). Scans sockets only for a service
    without a live record whose port answers, so the common case costs a few stat calls and connects."""
    chosen = [s for s in (registry.managed if services is None else services) if s.managed]
    saved = records.read_all(registry.state_dir)
    ours: dict[str, Found] = {}
    stale: dict[str, RunRecord] = {}
    for service in chosen:
        record = saved.get(service.name)
        if record is None:
            continue
        found = _from_record(record)
        if found:
            ours[service.name] = found
        else:
            stale[service.name] = record
    unknown = [s for s in chosen if s.name not in ours and port_open(s.host, s.port, CONNECT_TIMEOUT)]
    foreign: dict[str, tuple[Holder, ...]] = {}
    if unknown:
        held = listeners(s.port for s in unknown)
        for service in unknown:
            found = _from_listener(service, held.get(service.port, ()))
            if found:
                ours[service.name] = found
            else:
                foreign[service.name] = tuple(held.get(service.port, ()))
    return Discovery(ours, foreign, stale)


def describe_holders(service: Service, holders: Iterable[Holder]) -> str:
    """'port N is held by pid 4242 (nginx, user www): nginx -g ..., not a TMT service'."""
    holders = list(holders)
    who = "; ".join(h.describe() for h in holders) or "a process this user cannot see"
    return f"port {service.port} is held by {who}, not a TMT service"
