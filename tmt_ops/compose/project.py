"""One compose project of the registry: its name, file, engine view and compose runner, in one place."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OperationFailed, TmtError
from ..registry import Registry, Service
from ..engine import Engine
from .containers import SERVICE_LABEL, Container, container_labels
from .stackfile import active_services, built, declared_services, pulled

if TYPE_CHECKING:
    from ..events import Events
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
    def present(self) -> set[str]:
        """The compose services this project has a container of (running or not), whatever profile started it,
        asked once; none when no engine answers (what needs the engine says so)."""
        try:
            return {c["Labels"].get(SERVICE_LABEL, "") for c in self.engine.listed(*container_labels(self.name))}
        except TmtError:
            return set()

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
        found = [Container.from_inspect(c) for c in self.engine.containers(*container_labels(self.name))]
        order = list(self.declared) if self.file.exists() else []
        return sorted(found, key=lambda c: (order.index(c.service) if c.service in order else len(order), c.name))

    def prepare_images(self, names: list[str], events: "Events", build: bool = True) -> None:
        """Pull what is pulled (offline: a warning, local images are used), then build what is built (unless
        `build` is False: --no-build): before anything stops, so a failed build leaves the running stack alone."""
        services = {name: spec for name, spec in self.declared.items() if name in names}
        to_pull = pulled(services)
        if to_pull:
            try:
                self.compose.run("pull", *to_pull)
            except OperationFailed as exc:
                events.warn(f"pull failed, using local images: {exc}")
        to_build = built(services) if build else []
        if to_build:
            events.info(f"building images of project {self.name} (minutes the first time, seconds when cached)")
            self.compose.run("build", *to_build)

    def compose_name(self, name: str) -> str:
        """A registry or compose service name -> the compose service (ConfigError for neither)."""
        if name in self.services:
            return name
        return self.registry.service(name).compose_service
