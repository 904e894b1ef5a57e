"""The image each compose service ran before a restart, kept until its new container is healthy: what a restart
whose new start fails rolls the service back to.

A rebuild moves the compose file's tag (the four simulator services share one image, tmt-sim): the image they
ran is left untagged, and anything that prunes images may delete it. So before anything changes (before the
build), the image of each running container of a service to start is tagged `tmt-ops-previous:PROJECT.SERVICE`:
a name of the toolkit's own, one per project and service, that a rollback names and that keeps the image from
being pruned (a tag takes every character compose allows in a project or service name; a repository path would
refuse a service's upper case). Once the service's new container is ready and healthy the tag is dropped, and
the old image goes the way compose leaves it: untagged, or deleted when nothing else names or uses it. A
container brought back by a rollback runs under that very tag, its image's only name: the tag stays while the
container runs, and goes with the next healthy start that replaces it.

A rollback restores the image only: the service comes back under the compose file as it is now (command,
environment, ports), on the image it ran before. What the compose file or the environment changed (a new
command, a TMT_SIM_ARGS_* knob) is not undone: when the kept image runs the same as the one that failed (nothing
was rebuilt, or rebuilt the same), the rollback would run exactly what failed, and says so (retry). The image
is what compose keeps no copy of; the compose file is the operator's, and under version control.
"""

from __future__ import annotations

import time
from typing import Iterable

from ..data import dataclass
from ..engine import engine_time
from ..engine.client import Refused
from ..errors import TmtError
from .project import Project

REPOSITORY = "tmt-ops-previous"
KEPT_STATES = ("running", "paused")  # a container that ran until now (a paused one too): its image is what ran
# What of an image decides what runs: its layers and these of its config. Not its id: Compose v2 labels each
# image it builds with the project and the service it built it for, so the same build gets a new id.
RUNS = ("Entrypoint", "Cmd", "Env", "WorkingDir", "User")


def _tag(project: str, compose_service: str) -> str:
    return f"{project}.{compose_service}"


def reference(project: str, compose_service: str) -> str:
    return f"{REPOSITORY}:{_tag(project, compose_service)}"


def short(image_id: str) -> str:
    """sha256:0123456789ab, as `docker images` shows an id (12 hex digits)."""
    algorithm, _, digest = image_id.partition(":")
    return f"{algorithm}:{digest[:12]}" if digest else image_id[:12]


def runs(image: dict) -> tuple:
    """What of an inspected image decides what a container of it runs (RUNS)."""
    config = image.get("Config") or {}
    return (tuple((image.get("RootFS") or {}).get("Layers") or ()),
            tuple(repr(config.get(key)) for key in RUNS))


@dataclass(frozen=True)
class Kept:
    reference: str  # the toolkit's tag of it
    image_id: str
    at: float | None  # when it was last tagged (the engine's LastTagTime)
    runs: tuple  # runs(): what a container of it runs

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.at)) if self.at else "by an earlier run"
        return f"its previous image {short(self.image_id)} (kept {when})"


def keep(project: Project, compose_services: Iterable[str]) -> list[str]:
    """Tag the image of each running container of these services; a warning for each that cannot be kept. A
    service without a running container keeps what an earlier run kept, if any: the image it last ran before
    a run that did not end healthy."""
    wanted = set(compose_services)
    warnings = []
    for c in project.containers():
        if c.service in wanted and c.status in KEPT_STATES:
            wanted.discard(c.service)  # one per service: its containers come from one image
            try:
                project.engine.tag(c.image_id, REPOSITORY, _tag(project.name, c.service))
            except TmtError as exc:
                warnings.append(f"{c.service}: cannot keep its image {short(c.image_id)} for a rollback ({exc}): "
                                "if its new start fails, it cannot be brought back as it ran")
    return warnings


def kept(project: Project, compose_service: str) -> Kept | None:
    ref = reference(project.name, compose_service)
    data = project.engine.image(ref)
    if data is None:
        return None
    return Kept(ref, data["Id"], engine_time((data.get("Metadata") or {}).get("LastTagTime")), runs(data))


def release(project: Project, compose_service: str) -> None:
    """The service's new container is healthy: its previous image is no longer kept (unless a container runs
    under the tag itself, HTTP 409: the one a rollback brought back)."""
    try:
        project.engine.untag(reference(project.name, compose_service))
    except Refused as exc:
        if exc.status != 409:
            raise


def drop_all(project: Project) -> None:
    """Every image this project keeps (its services' containers are gone: nothing to roll back to)."""
    prefix = reference(project.name, "")
    for image in project.engine.images(f"{prefix}*"):
        for tag in image.get("RepoTags") or ():
            if tag.startswith(prefix):
                project.engine.untag(tag)
