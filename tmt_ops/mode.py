"""--mode auto: what runs now decides (native records or processes, else a compose project), else the
registry's default. The docker side is asked only when a Docker engine could be there at all."""

from __future__ import annotations

import os

from .registry import Registry

MODES = ("native", "docker", "auto")


def docker_engine_possible() -> bool:
    return bool(os.environ.get("DOCKER_HOST")) or os.path.exists("/var/run/docker.sock")


def resolve_mode(requested: str, registry: Registry) -> str:
    if requested != "auto":
        return requested
    from . import native
    if native.any_running(registry):
        return "native"
    if docker_engine_possible():
        from . import compose
        if compose.project_running(registry):
            return "docker"
    return registry.default_mode
