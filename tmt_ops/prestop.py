"""A service's pre-stop hook (e.g. "stop taking orders"): one HTTP call before it is stopped, in any mode.

The call is planned (it is part of a stop step, so --dry-run shows it) and made by the executor before the
step's backend stops the service. A hook that fails never prevents the stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from .probes import http_request
from .registry import Service


@dataclass(frozen=True)
class PreStopCall:
    service: str
    method: str
    path: str
    timeout: float
    host: str
    port: int

    def describe(self) -> str:
        return f"{self.method} {self.path}"


def first(hook: PreStopCall | None) -> str:
    """How a plan line says the hook comes first: 'POST /api/trading/disable, then ' (or nothing)."""
    return f"{hook.describe()}, then " if hook else ""


def planned(service: Service) -> PreStopCall | None:
    """The service's hook as a call to its address, or None when it has none."""
    hook = service.pre_stop
    if hook is None:
        return None
    return PreStopCall(service.name, hook.method, hook.path, hook.timeout, service.host, service.port)


def call(hook: PreStopCall) -> tuple[bool, str]:
    """(whether it answered well, one line saying what happened)."""
    what = f"{hook.service}: pre-stop {hook.method} {hook.path}"
    try:
        status, _ = http_request(hook.host, hook.port, hook.method, hook.path, hook.timeout, body=b"")
    except (OSError, ValueError) as exc:  # ValueError: probes.ProtocolError too
        return False, f"{what} failed ({type(exc).__name__}: {exc}); stopping anyway"
    if status >= 400:
        return False, f"{what} answered HTTP {status}; stopping anyway"
    return True, f"{what} -> HTTP {status}"
