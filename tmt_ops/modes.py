"""The ways of running the services, one row each: the one table every list of modes and backends is read from
(the --mode words and their help, the registry's default_mode and a service's own `backend:`, docker-restart.py's
modes, systemd's Requires=, how health joins a probe with a backend's status). Adding a way of running is its
package and one row (register(), as a test's fake backend does). A leaf: it imports nothing of the toolkit.
"""

from __future__ import annotations

import importlib

from .data import dataclass

PROCESSES, CONTAINERS = "processes", "containers"  # what a way runs a service as


@dataclass(frozen=True)
class Way:
    backend: str  # its backend's name: a service's `backend:` value, and the `backend` of its plan steps
    mode: str  # the --mode word that makes it the backend of every service that names none
    words: str  # what --help says it is
    runs: str  # PROCESSES (on this host) or CONTAINERS (of a Docker engine)
    engine: bool  # needs a Docker engine: docker-restart.py serves it, systemd units require docker.service
    own: bool  # a service may name it as its own backend, whatever the mode (PostgreSQL in compose, beside native)
    removable: bool  # has a stack of its own to remove (--remove-stack, docker-restart.py clean)
    path: str  # "package.module:Class" of the backend, imported only when used (a native run loads no engine code)

    def backend_class(self) -> type:
        module, _, name = self.path.partition(":")
        return getattr(importlib.import_module(module), name)


# In the order --mode auto asks them whether something of the registry runs their way.
_WAYS: dict[str, Way] = {way.backend: way for way in (
    Way("native", "native", "native processes", PROCESSES, engine=False, own=True, removable=False,
        path="tmt_ops.native.backend:NativeBackend"),
    Way("compose", "docker", "docker compose", CONTAINERS, engine=True, own=True, removable=True,
        path="tmt_ops.compose.backend:ComposeBackend"),
    Way("swarm", "swarm", "a Docker Swarm stack", CONTAINERS, engine=True, own=False, removable=True,
        path="tmt_ops.swarm.backend:SwarmBackend"),
)}


def register(way: Way) -> None:
    """One more way of running (a row); modes and backends read after this include it."""
    _WAYS[way.backend] = way


def ways() -> tuple[Way, ...]:
    return tuple(_WAYS.values())


def modes(*, engine: bool | None = None) -> tuple[str, ...]:
    """The --mode words besides auto (only those that need an engine, or only those that do not)."""
    return tuple(w.mode for w in _WAYS.values() if engine is None or w.engine == engine)


def own_backends() -> tuple[str, ...]:
    """What a service may name as its own `backend:`."""
    return tuple(w.backend for w in _WAYS.values() if w.own)


def of_backend(name: str) -> Way:
    return _WAYS[name]


def of_mode(mode: str) -> Way | None:
    return next((w for w in _WAYS.values() if w.mode == mode), None)
