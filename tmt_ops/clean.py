"""docker-restart.py clean: remove everything the deployment is made of, its volumes too (after a
confirmation), then start it again. The same for every container backend: each says what it would remove
(teardown) and removes exactly that (remove), never anything of another project or stack."""

from __future__ import annotations

import sys
from typing import Callable

from . import operations
from .backends import Deployment
from .errors import UsageError
from .events import Events
from .interrupts import Interrupts
from .results import Result


def clean(deployment: Deployment, events: Events, interrupts: Interrupts, *, yes: bool,
          ask: Callable[[str], str] = input, interactive: bool | None = None) -> Result:
    backend = deployment.default
    teardown = backend.teardown()
    events.warn(f"clean removes {teardown.owner} only: {teardown.containers} container(s), "
                f"networks: {', '.join(teardown.networks) or 'none'}")
    events.warn(f"volumes to delete (their data is lost): {', '.join(teardown.volumes) or 'none'}")
    if not yes:
        if not (sys.stdin.isatty() if interactive is None else interactive):
            raise UsageError(f"clean deletes {teardown.owner}'s containers and volumes: pass --yes to confirm "
                             "(no terminal to ask on)")
        try:
            answer = ask("Delete them and restart? [y/N] ")
        except EOFError:  # end of input (Ctrl-D, </dev/null on a terminal) is "no"
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            return Result(1, last="clean cancelled: nothing removed", level="warn")
    services = operations.select(deployment, None, with_infra=True)
    operations.check_and_prepare(deployment, services, None, events)  # a failed build removes nothing
    stopped = operations.stop(deployment, services, operations.Options(), events, interrupts)
    if stopped.exit_code:
        return stopped
    backend.remove(teardown, events)
    return operations.start(deployment, services, operations.Options(), events, interrupts)
