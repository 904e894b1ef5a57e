"""docker-restart.py clean: remove everything the deployment is made of, its volumes too (after a
confirmation), then start it again. The same for every container backend: each says what it would remove
(teardown: what exists, whatever profile started it), what would make that fail (in_the_way: someone else's
container using one of its volumes or networks), and removes exactly that (remove), never anything of another
project or stack.

What cannot be done is refused before anything is touched. A failure once the stop has begun (a service that
would not stop, the engine refusing a removal, an interrupt) starts again what the clean stopped, and the
summary says what runs and what does not."""

from __future__ import annotations

import sys
from typing import Callable

from . import operations
from .backends import Deployment
from .errors import TmtError, UsageError
from .events import Events
from .interrupts import INTERRUPTED, Interrupts
from .registry import Service
from .results import Result


def clean(deployment: Deployment, events: Events, interrupts: Interrupts, *, yes: bool,
          ask: Callable[[str], str] = input, interactive: bool | None = None) -> Result:
    backend = deployment.default
    teardown = backend.teardown()
    events.warn(f"clean removes {teardown.owner} only: {teardown.containers} container(s), "
                f"networks: {', '.join(teardown.networks) or 'none'}")
    events.warn(f"volumes to delete (their data is lost): {', '.join(teardown.volumes) or 'none'}")
    blocked = backend.in_the_way(teardown)
    if blocked:
        for line in blocked:
            events.error(f"clean: {line}")
        return Result(1, last="clean refused: nothing was stopped or removed", level="error")
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
        return _start_again(deployment, services, events, interrupts, stopped.last, stopped.exit_code)
    try:
        backend.remove(teardown, events)
    except TmtError as exc:
        return _start_again(deployment, services, events, interrupts, f"removing {teardown.owner} failed: {exc}", 1)
    if interrupts.requested.is_set():  # it was removed in full meanwhile: the nearest safe state is running
        return _start_again(deployment, services, events, interrupts, "interrupted", INTERRUPTED)
    return operations.start(deployment, services, operations.Options(), events, interrupts)


def _start_again(deployment: Deployment, services: list[Service], events: Events, interrupts: Interrupts, why: str,
                 code: int) -> Result:
    """What the clean stopped is started again (with whatever of its volumes is left); only a second interrupt
    stops that."""
    events.error(f"clean failed: {why}")
    interrupts.then = "starting again what clean stopped (a second interrupt leaves things as they are)"
    started = operations.start(deployment, services, operations.Options(), events, Interrupts())
    return Result(code, started.outcomes, f"clean failed ({why}); started again what it stopped: {started.last}",
                  "error" if code != INTERRUPTED else "warn")
