"""The docker-only commands of docker-restart.py: logs (streamed, redacted) and clean (volumes too).

Restart, start and stop are the generic operations (operations.py) over the compose backend.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Callable, TextIO

from .. import operations
from ..backends import Deployment
from ..console import write_out
from ..errors import UsageError
from ..events import Events
from ..interrupts import Interrupts
from ..results import Result
from .project import Project


def logs(project: Project, service: str | None, tail: int | None, follow: bool, redact: Callable[[str], str],
         out: TextIO = sys.stdout) -> int:
    """The project's logs (one service's, by registry or compose name), redacted, to `out`."""
    args = ["logs", "--no-color"] + (["--tail", str(tail)] if tail is not None else []) + (["--follow"] if follow else [])
    args += [project.compose_name(service)] if service else []
    project.engine.ping()
    proc = subprocess.Popen(project.compose.argv(*args), env=dict(project.compose.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        for line in proc.stdout:
            if not write_out(out, redact(line)):  # the reader went away (`| head`): stop following, quietly
                proc.terminate()
                break
    except BaseException:  # Ctrl-C: compose runs in its own session, so only we hear it
        proc.terminate()
        raise
    finally:
        proc.stdout.close()
        code = proc.wait()
    return 1 if code > 0 else 0


def clean(deployment: Deployment, project: Project, events: Events, interrupts: Interrupts, *, yes: bool,
          ask: Callable[[str], str] = input, interactive: bool | None = None) -> Result:
    """Remove this project's containers, networks and volumes (after confirmation), then start it again."""
    project.engine.ping()
    containers = project.containers()
    volumes = project.engine.volumes(project.name)
    networks = project.engine.networks(project.name)
    events.warn(f"clean removes project {project.name} only: {len(containers)} container(s), "
                f"networks: {', '.join(networks) or 'none'}")
    events.warn(f"volumes to delete (their data is lost): {', '.join(volumes) or 'none'}")
    if not yes:
        if not (sys.stdin.isatty() if interactive is None else interactive):
            raise UsageError("clean deletes this project's containers and volumes: pass --yes to confirm "
                             "(no terminal to ask on)")
        if ask("Delete them and restart? [y/N] ").strip().lower() not in ("y", "yes"):
            return Result(1, last="clean cancelled: nothing removed", level="warn")
    services = operations.select(deployment, None, with_infra=True)
    operations.check_and_prepare(deployment, services, None, events)  # a failed build removes nothing
    stopped = operations.stop(deployment, services, operations.Options(), events, interrupts)
    if stopped.exit_code:
        return stopped
    project.compose.run("down", "--volumes", "--remove-orphans")
    # down leaves what belongs to services outside the active profiles; the list shown above goes all the same
    for volume in sorted(set(volumes) & set(project.engine.volumes(project.name))):
        project.engine.remove("volumes", volume)
    for network in sorted(set(networks) & set(project.engine.networks(project.name))):
        project.engine.remove("networks", network)
    return operations.start(deployment, services, operations.Options(), events, interrupts)
