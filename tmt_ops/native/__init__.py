"""Native backend: services as host processes, started detached with run records, stopped by identity.

Cheap to import: the functions below import psutil and the scanners only when called.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..backend import ServiceStatus
    from ..registry import Registry


def any_running(registry: "Registry") -> bool:
    """A live run record, or a managed service's process found by its command on its port."""
    from .discovery import discover
    return bool(discover(registry).ours)


def statuses(registry: "Registry") -> dict[str, "ServiceStatus"]:
    """What runs natively, per managed service, in registry order."""
    from ..backend import ServiceStatus
    from ..ports import held_by, listening_sockets
    from ..states import ServiceState
    from .discovery import describe_holders, discover
    found = discover(registry)
    listening = listening_sockets()
    result = {}
    for service in registry.managed:
        ours = found.ours.get(service.name)
        if ours is not None:
            start = ours.root.create_time if ours.root else min(p.create_time for p in ours.members)
            pids = tuple(p.pid for p in ours.members)
            status = ServiceStatus(service.name, ServiceState.RUNNING, pids, uptime_seconds=round(time.time() - start, 1),
                                   detail=ours.how, holds_port=held_by(service.port, pids, listening))
        elif service.name in found.foreign:
            status = ServiceStatus(service.name, ServiceState.STOPPED,
                                   detail=describe_holders(service, found.foreign[service.name]))
        elif service.name in found.stale:
            status = ServiceStatus(service.name, ServiceState.FAILED,
                                   detail=f"exited without a stop (recorded pid {found.stale[service.name].pid} is gone)")
        else:
            status = ServiceStatus(service.name, ServiceState.STOPPED)
        result[service.name] = status
    return result
