"""One compose project of the registry: its name, file, engine view and compose runner, in one place."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from ..registry import Registry, Service
from .containers import Container
from .engine import Engine
from .stackfile import active_services, declared_services

if TYPE_CHECKING:
    from .runner import Compose


class Project:
    def __init__(self, registry: Registry, name: str | None = None, file: Path | None = None):
        self.registry = registry
        self.name = name or registry.compose_project
        self.file = Path(file) if file else registry.compose_file
        self.engine = Engine()

    @functools.cached_property
    def declared(self) -> dict[str, dict]:
        """Every compose service of the file, in its order."""
        return declared_services(self.file)

    @functools.cached_property
    def services(self) -> dict[str, dict]:
        """The compose services a plain `up` starts (active profiles), in the file's order."""
        return active_services(self.declared)

    @functools.cached_property
    def compose(self) -> "Compose":
        # imported here: `status` never runs compose, and it should not pay for subprocess and tempfile
        from .flavour import compose_command
        from .runner import Compose, compose_environment
        return Compose(compose_command(), self.name, self.file, compose_environment(self.registry),
                       self.registry.compose_timeout)

    @functools.cached_property
    def by_compose_name(self) -> dict[str, Service]:
        return {s.compose_service: s for s in self.registry.services.values()}

    def registry_service(self, compose_service: str) -> Service | None:
        return self.by_compose_name.get(compose_service)

    def containers(self) -> list[Container]:
        """Every container of this project (and only this project), by its compose label."""
        found = [Container.from_inspect(c) for c in self.engine.containers(self.name)]
        order = list(self.declared) if self.file.exists() else []
        return sorted(found, key=lambda c: (order.index(c.service) if c.service in order else len(order), c.name))

    def compose_name(self, name: str) -> str:
        """A registry or compose service name -> the compose service (ConfigError for neither)."""
        if name in self.services:
            return name
        return self.registry.service(name).compose_service
