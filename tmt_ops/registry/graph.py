"""Dependency-graph queries over plain data (name -> names it depends on): pure, tested without processes."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Iterable, Mapping, Sequence


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One dependency cycle as [a, b, ..., a], or None when the graph is acyclic."""
    try:
        TopologicalSorter(deps).prepare()
    except CycleError as exc:
        cycle = list(exc.args[1])
        # graphlib lists the cycle from dependency to dependent; read it the way depends_on is written.
        return cycle[::-1]
    return None


def start_waves(deps: Mapping[str, Sequence[str]], order: Sequence[str]) -> list[list[str]]:
    """Services grouped in waves: each wave depends only on earlier ones. Within a wave, `order` decides.

    Dependencies outside `deps` (not selected) count as already met.
    """
    rank = {name: i for i, name in enumerate(order)}
    sorter = TopologicalSorter({name: [d for d in ds if d in deps] for name, ds in deps.items()})
    sorter.prepare()
    waves = []
    while sorter.is_active():
        wave = sorted(sorter.get_ready(), key=rank.__getitem__)
        waves.append(wave)
        sorter.done(*wave)
    return waves


def dependents(deps: Mapping[str, Sequence[str]], roots: Iterable[str]) -> set[str]:
    """Every service that depends, directly or transitively, on one of `roots` (roots excluded)."""
    reverse: dict[str, list[str]] = {}
    for name, ds in deps.items():
        for d in ds:
            reverse.setdefault(d, []).append(name)
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        for dependent in reverse.get(stack.pop(), ()):
            if dependent not in seen:
                seen.add(dependent)
                stack.append(dependent)
    return seen - set(roots)
