"""What the deployment's backend says about each service, asked in a thread while the probes run.

Native: tmt_ops.native.statuses (process ids, state). Docker: tmt_ops.compose.statuses (container state and
engine health) and the engine's data directory, whose disk usage joins the report. Each import happens in
its own branch, so a native check never loads the docker SDK.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..backend import ServiceStatus
from ..errors import TmtError
from ..registry import Registry

DEFAULT_DOCKER_ROOT = Path("/var/lib/docker")


@dataclass
class BackendView:
    statuses: dict[str, ServiceStatus] | None = None  # None: the backend could not be asked
    problem: str | None = None  # why not (an engine that does not answer is worth a finding)
    disk_paths: list[Path] = field(default_factory=list)


def _native(registry: Registry) -> BackendView:
    from .. import native
    return BackendView(statuses=dict(native.statuses(registry)))


def _docker_root_dir() -> Path:
    from ..compose.engine import Engine
    try:
        return Path(Engine(timeout=2).info().get("DockerRootDir") or DEFAULT_DOCKER_ROOT)
    except TmtError:  # the engine's own answer is a nicety; the default location is right almost always
        return DEFAULT_DOCKER_ROOT


def _docker(registry: Registry) -> BackendView:
    from .. import compose
    view = BackendView(disk_paths=[_docker_root_dir()])
    view.statuses = dict(compose.statuses(registry))
    return view


def _ask(registry: Registry, mode: str) -> BackendView:
    try:
        return _docker(registry) if mode == "docker" else _native(registry)
    except TmtError as exc:
        return BackendView(problem=str(exc))
    except Exception as exc:  # a backend bug must not cost the probes' report
        return BackendView(problem=f"{mode} backend failed: {type(exc).__name__}: {exc}")


class BackendQuery:
    """Starts asking at once; wait() returns what arrived by the round's deadline."""

    def __init__(self, registry: Registry, mode: str):
        self.mode = mode
        self._view: BackendView | None = None
        self._thread = threading.Thread(target=self._run, args=(registry, mode), name="backend", daemon=True)
        self._thread.start()

    def _run(self, registry: Registry, mode: str) -> None:
        self._view = _ask(registry, mode)

    def wait(self, seconds: float) -> BackendView:
        self._thread.join(max(0.0, seconds))
        if self._view is None:
            return BackendView(problem=f"the {self.mode} backend did not answer within the round's deadline")
        return self._view
