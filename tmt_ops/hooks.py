"""A service's HTTP hooks, in any mode: pre_stop ("stop taking orders") before it is signalled, post_start ("take
orders again") once it is started or restored and ready.

A call is planned (a pre-stop call is part of a stop step, so --dry-run shows it) and made by the executor, to
the address where the service answers. A hook that fails never prevents the stop or undoes the start: it is
said, and what it leaves behind is visible (prestopped.py).
"""

from __future__ import annotations


from .data import dataclass
from .probes import http_request
from .registry import Hook, Service


@dataclass(frozen=True)
class HookCall:
    service: str
    kind: str  # "pre-stop" or "post-start"
    method: str
    path: str
    timeout: float
    host: str
    port: int
    unreached: str | None = None  # why it cannot be made from here (Service.unreached): it is then not made

    def describe(self) -> str:
        return f"{self.method} {self.path}"


def first(hook: HookCall | None) -> str:
    """How a plan line says the hook comes first: 'POST /api/trading/disable, then ' (or nothing)."""
    return f"{hook.describe()}, then " if hook else ""


def _planned(service: Service, kind: str, hook: Hook | None) -> HookCall | None:
    if hook is None:
        return None
    return HookCall(service.name, kind, hook.method, hook.path, hook.timeout, service.host, service.port,
                    service.unreached)


def pre_stop(service: Service) -> HookCall | None:
    """The service's pre-stop hook as a call to `service`'s address (a backend's address of it), or None."""
    return _planned(service, "pre-stop", service.pre_stop)


def post_start(service: Service) -> HookCall | None:
    return _planned(service, "post-start", service.post_start)


def call(hook: HookCall) -> tuple[bool, str]:
    """(whether it answered well, one line saying what happened)."""
    what = f"{hook.service}: {hook.kind} {hook.method} {hook.path}"
    then = "stopping anyway" if hook.kind == "pre-stop" else "it runs on"
    if hook.unreached:
        return False, f"{what} not made: nothing reaches it from here ({hook.unreached}); {then}"
    try:
        status, _ = http_request(hook.host, hook.port, hook.method, hook.path, hook.timeout, body=b"")
    except (OSError, ValueError) as exc:  # ValueError: probes.ProtocolError too
        return False, f"{what} failed ({type(exc).__name__}: {exc}); {then}"
    if status >= 400:
        return False, f"{what} answered HTTP {status}; {then}"
    return True, f"{what} -> HTTP {status}"
