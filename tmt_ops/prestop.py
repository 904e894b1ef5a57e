"""A service's pre-stop hook (e.g. "stop taking orders"): one HTTP call before it is stopped, in either mode."""

from __future__ import annotations

import http.client

from .probes import http_request
from .registry import Service


def call_pre_stop(service: Service) -> tuple[bool, str] | None:
    """None when the service has no hook; else (whether it answered well, one line saying what happened).
    A hook that fails never prevents the stop: the line says "stopping anyway"."""
    hook = service.pre_stop
    if hook is None:
        return None
    what = f"{service.name}: pre-stop {hook.method} {hook.path}"
    try:
        status, _ = http_request(service.host, service.port, hook.method, hook.path, hook.timeout, body=b"")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return False, f"{what} failed ({type(exc).__name__}: {exc}); stopping anyway"
    if status >= 400:
        return False, f"{what} answered HTTP {status}; stopping anyway"
    return True, f"{what} -> HTTP {status}"
