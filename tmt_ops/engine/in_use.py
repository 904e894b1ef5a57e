"""What stands in the way of removing a deployment's volumes and networks: a container that is not the
deployment's own and uses one of them. The engine refuses to remove a volume or network in use (HTTP 409); the
deployment's own containers go first, but anyone else's would make the removal fail half-way, after everything
was stopped. So it is found before."""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from .client import Engine


def foreign_users(engine: Engine, owner: str, volumes: Iterable[str], networks: Iterable[str],
                  ours: Callable[[Mapping[str, str]], bool]) -> list[str]:
    """One line per volume or network of `owner` ("project tmt") that a container not its own uses (`ours`,
    given a container's labels, tells its own)."""
    found = []
    for kind, names in (("volume", volumes), ("network", networks)):
        for name in names:
            others = [c["Names"][0].lstrip("/") for c in engine.users(kind, name) if not ours(c.get("Labels") or {})]
            if others:
                undo = "" if kind == "volume" else f", or disconnect it (`docker network disconnect {name} CONTAINER`)"
                found.append(f"{kind} {name} is used by container {', '.join(others)}, which is not {owner}'s: the "
                             f"engine would refuse to remove it: remove that container first{undo}")
    return found
