"""Which processes are ours, which ports are held by someone else.

A process is ours only when it is proven (native/proof.py), strongest proof first:
1. its service's cgroup holds it: the cgroup this state directory's deployment gives the service, never one a
   run record names (an empty cgroup is a service that is gone);
2. the run record's process is alive with its recorded create time (not a reused pid) and carries this
   deployment's run tag for the service; then what it leads: its own process group (the toolkit made it lead
   one) or its process tree;
3. the record's leader is gone but processes started with its run tag, a tag of this deployment's service,
   live on (a wrapper that died and left its server running): exactly those processes, never the old group
   or session as such;
4. no record: a listener on the service's port that carries this service's run tag, or that is (or
   descends from) the service's registered command in its directory (a service started by hand).
A record proves nothing by itself: a copy of another deployment's state directory names that deployment's
live processes. A record whose live process carries neither proof is not trusted (said why, never signalled).
Everything else on a service's port is foreign: provably another deployment's when it carries another
deployment's run tag, sits in another deployment's cgroup, or is (a descendant of) a process named by a record
this deployment does not trust (then it is never signalled, --force or not: a copy of a checkout stopping the
original's services is exactly the mistake to rule out); else an unidentified holder, which only --force stops.
Both are only ever described here, never signalled.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Mapping

import psutil

from ..data import dataclass, field
from ..ports import Holder, describe_holders as describe_port, listeners, port_open
from ..registry import Registry, Service
from . import proof, records
from .identity import service_root
from .procs import SAME_PROCESS, Proc, group_members, leads_session, live, live_pid, tree
from .records import RunRecord

CONNECT_TIMEOUT = 0.2  # a local port either accepts at once or not at all


@dataclass(frozen=True)
class Found:
    """A service's running processes and how to stop them."""

    service: str
    root: Proc | None  # the service's own process; None when only what it started outlived it
    members: tuple[Proc, ...]  # root first where alive, then the rest
    target: str  # "cgroup" (its cgroup), "group" (the group it leads), "tree" (root and descendants), "pids"
    how: str  # why we know it is ours
    pgid: int | None = None  # with target "group"
    cgroup: str | None = None  # with target "cgroup"


@dataclass(frozen=True)
class Discovery:
    ours: Mapping[str, Found] = field(default_factory=dict)
    foreign: Mapping[str, tuple[Holder, ...]] = field(default_factory=dict)  # managed port held by another
    stale: Mapping[str, RunRecord] = field(default_factory=dict)  # records that prove nothing runs (dropped)
    # service -> why its record was not trusted: the process it names lives, but is not provably the service's
    distrusted: Mapping[str, str] = field(default_factory=dict)
    # service -> its port is held by what is provably another deployment's (said why): never signalled here
    others: Mapping[str, str] = field(default_factory=dict)

    def in_the_way(self, service: Service) -> str | None:
        """What holds the service's port though it is not the service, with what to do about it (--force only
        where it may be used), or None."""
        if service.name in self.others:
            return self.others[service.name]
        if service.name in self.foreign:
            return describe_holders(service, self.foreign[service.name]) + ": stop it, or use --force"
        return None


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _in_cgroup(service: str, cgroup: str, record: RunRecord | None) -> Found | None:
    members = [Proc.of(p) for p in map(live_pid, proof.cgroup_pids(cgroup)) if p is not None]
    if not members:
        return None
    root = next((m for m in members if record is not None and m.pid == record.pid and
                 abs(m.create_time - record.create_time) <= SAME_PROCESS), None)
    if root is not None:
        members = [root] + [m for m in members if m is not root]
        how = f"run record: pid {record.pid} started {_clock(record.started_at)}"
    else:
        how = "no run record" if record is None else f"the run record of pid {record.pid} is outdated"
    return Found(service, root, tuple(members), "cgroup", f"{how}; its cgroup holds {len(members)} process(es)",
                 cgroup=cgroup)


def _from_record(state_dir: Path, record: RunRecord) -> tuple[Found | None, str | None]:
    """(what the record proves runs, why the live process it names is not trusted). Its own cgroup was looked
    at first (discover): here only the run tag can prove the process, and only a tag of this deployment's
    service, whatever the record says (its run tag and cgroup are claims, not proofs)."""
    ours = proof.service_prefix(state_dir, record.service)
    started = f"run record: pid {record.pid} started {_clock(record.started_at)}"
    root = live(Proc(record.pid, record.create_time))
    if root is not None:
        tag = proof.tag_of(root.pid)
        if not (tag or "").startswith(ours):
            return None, _untrusted(state_dir, record, tag)
        if record.leads_group and leads_session(root.pid):
            # A live leader the toolkit made: only what it started can be in its group and session.
            rest = [Proc.of(p) for p in group_members(record.pgid) if p.pid != record.pid]
            return Found(record.service, Proc.of(root), (Proc.of(root), *rest), "group", f"{started}, leads its group",
                         pgid=record.pgid), None
        return Found(record.service, Proc.of(root), tuple(tree(root)), "tree", started), None
    if (record.run_tag or "").startswith(ours):
        left = [Proc.of(p) for p in proof.tagged(record.run_tag)]
        if left:
            return Found(record.service, None, tuple(left), "pids",
                         f"run record: leader pid {record.pid} exited; {len(left)} process(es) carry its run tag"), None
    return None, None


def _untrusted(state_dir: Path, record: RunRecord, tag: str | None) -> str:
    """One line: why the live process a record names is not taken for the service."""
    carries = f"run tag {tag}" if tag else "no run tag"
    cgroup = proof.cgroup_dir(state_dir, record.service)
    named = f", and the record names cgroup {record.cgroup}" if record.cgroup and record.cgroup != str(cgroup) else ""
    return (f"run record not trusted: its pid {record.pid} runs, but not as this deployment's {record.service} "
            f"(it carries {carries}{named}; a copy of another deployment's state directory?): nothing of it is "
            "signalled; stop-trading-system.py drops the record")


def _from_listener(registry: Registry, service: Service, holders: Iterable[Holder]) -> Found | None:
    """`holders`: none of them provably another deployment's (a registry with the same command and directory
    must never claim a process another deployment started)."""
    for holder in holders:
        tag = proof.tag_of(holder.pid)
        if tag and tag.startswith(proof.service_prefix(registry.state_dir, service.name)):
            left = [Proc.of(p) for p in proof.tagged(tag)]
            if left:
                return Found(service.name, None, tuple(left), "pids",
                             f"no run record; pid {holder.pid} listens on port {service.port} and carries the "
                             f"run tag of {service.name}")
        root = service_root(service, holder.pid)
        if root is None:
            continue
        try:
            how = f"no run record; pid {root.pid} runs the registered command and listens on port {service.port}"
            if leads_session(root.pid):
                members = (Proc.of(root), *(Proc.of(p) for p in group_members(root.pid) if p.pid != root.pid))
                return Found(service.name, Proc.of(root), members, "group", how, pgid=root.pid)
            return Found(service.name, Proc.of(root), tuple(tree(root)), "tree", how)
        except psutil.NoSuchProcess:
            continue
    return None


def discover(registry: Registry, services: Iterable[Service] | None = None) -> Discovery:
    """Find the given managed services (all managed ones by default). Scans sockets only for a service
    without a live record or cgroup whose port answers, so the common case costs a few file reads."""
    chosen = [s for s in (registry.managed if services is None else services) if s.managed]
    saved = records.read_all(registry.state_dir, [s.name for s in chosen])
    ours: dict[str, Found] = {}
    stale: dict[str, RunRecord] = {}
    distrusted: dict[str, str] = {}
    for service in chosen:
        record = saved.get(service.name)
        found = why = None
        cgroup = proof.cgroup_dir(registry.state_dir, service.name)
        if cgroup is not None:
            found = _in_cgroup(service.name, str(cgroup), record)
        if found is None and record is not None:
            found, why = _from_record(registry.state_dir, record)
        if found is not None:
            ours[service.name] = found
        elif record is not None:
            stale[service.name] = record
            if why:
                distrusted[service.name] = why
    unknown = [s for s in chosen if s.name not in ours and s.port and port_open(s.host, s.port, CONNECT_TIMEOUT)]
    foreign: dict[str, tuple[Holder, ...]] = {}
    others: dict[str, str] = {}
    if unknown:
        held = listeners(s.port for s in unknown)
        named = {saved[n].pid for n in distrusted}  # live processes named by records this deployment does not trust
        for service in unknown:
            holders = tuple(held.get(service.port, ()))
            whose = {h.pid: why for h in holders if (why := _elsewhere(registry.state_dir, h.pid, named))}
            found = _from_listener(registry, service, [h for h in holders if h.pid not in whose])
            if found:
                ours[service.name] = found
                continue
            if whose:
                others[service.name] = (f"{describe_holders(service, holders)}: {next(iter(whose.values()))}: "
                                        "never signalled here, "
                                        "not even with --force; stop it with the toolkit (and registry) that started it")
            else:
                foreign[service.name] = holders
    return Discovery(ours, foreign, stale, distrusted, others)


def _elsewhere(state_dir: Path, pid: int, named: set[int]) -> str | None:
    """Why a process (a holder of a port of ours) is provably another deployment's, else None."""
    tag = proof.tag_of(pid)
    if tag and not tag.startswith(proof.deployment(state_dir) + "/"):
        return f"it carries another tmt-ops deployment's run tag ({tag})"
    cgroup, base = proof.cgroup_of(pid), proof.cgroup_base()
    if cgroup is not None and base is not None and cgroup.is_relative_to(base) and cgroup != base and \
            cgroup.relative_to(base).parts[0] != proof.deployment(state_dir):
        return f"it is in another tmt-ops deployment's cgroup ({cgroup})"
    try:
        lineage = [psutil.Process(pid), *psutil.Process(pid).parents()]
    except psutil.NoSuchProcess:
        return None
    if any(p.pid in named for p in lineage):
        return "a run record this deployment does not trust names it (a copy of another deployment's state?)"
    return None


def describe_holders(service: Service, holders: Iterable[Holder]) -> str:
    """'port N is held by pid 4242 (nginx, user www): nginx -g ..., not a TMT service'."""
    return f"{describe_port(service.port, holders)}, not a TMT service"
