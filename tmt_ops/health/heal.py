"""--heal, the deciding part (pure, tested without a process): which down services to restart this round.

A managed service is down when its backend says nothing of it runs (stopped or failed: it crashed, was
killed, exited), not when it runs and answers badly, slowly or degraded: a running service is restarted only
by a person, who knows what a restart costs (its finding says how). A down service is healed once it has
been down `after_rounds` rounds in a row, unless
- it was stopped on purpose (a stop marker): said once, never healed;
- a service it depends on is down too: that one is healed first, and brings its dependents back in order;
  infrastructure that the deployment runs is never healed, so a service that depends on such a component that
  is down waits (said once) until a person starts it: its restart would start the component too;
- it waits out its backoff after an attempt (backoff_seconds, doubling, at most backoff_max_seconds);
- it had `max_per_hour` attempts in the last hour: then it gets no more until it is seen running again, and
  is a critical finding every round meanwhile.
Memory stays flat: per service a counter and at most `max_per_hour` attempt times.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..registry import HealSettings
from ..registry import graph

HOUR = 3600.0


@dataclass(frozen=True)
class Decision:
    heal: tuple[str, ...]  # to restart now, each with its dependents
    newly_marked: tuple[str, ...]  # down and stopped on purpose, first seen so (said once)
    newly_waiting: Mapping[str, tuple[str, ...]]  # down, and waits for this infrastructure (said once)
    newly_given_up: tuple[str, ...]  # past the cap from this round on (said once)
    given_up: tuple[str, ...]  # every service past the cap: a critical finding each round


class HealPolicy:
    def __init__(self, settings: HealSettings, depends_on: Mapping[str, Sequence[str]]):
        """depends_on: every service of the registry (in registry order) -> the names it depends on."""
        self.settings = settings
        self.depends_on = depends_on
        self.down_rounds: dict[str, int] = {}
        self.attempts: dict[str, deque[float]] = {}  # times of the attempts within the last hour
        self.not_before: dict[str, float] = {}  # backoff: no attempt before then
        self.given_up: set[str] = set()
        self.told_marked: set[str] = set()
        self.told_waiting: set[str] = set()

    def decide(self, down: Iterable[str], marked: Iterable[str], now: float,
               infrastructure_down: Iterable[str] = ()) -> Decision:
        """down: the healable services seen down this round; marked: services stopped on purpose; now: a
        monotonic clock; infrastructure_down: components the deployment runs that are down (never healed)."""
        down, marked, infrastructure_down = set(down), set(marked), set(infrastructure_down)
        self.down_rounds = {name: self.down_rounds.get(name, 0) + 1 for name in down}
        self.given_up &= down  # seen running again (a person restarted it): attempts are allowed again
        self.told_marked &= down & marked
        newly_marked = [n for n in self.depends_on if n in down & marked - self.told_marked]
        self.told_marked |= set(newly_marked)
        needing = {i: graph.dependents(self.depends_on, [i]) for i in self.depends_on if i in infrastructure_down}
        waiting = {}
        for name in down - marked:
            components = tuple(i for i, dependents in needing.items() if name in dependents)
            if components:
                waiting[name] = components
        self.told_waiting &= set(waiting)
        newly_waiting = {n: waiting[n] for n in self.depends_on if n in waiting and n not in self.told_waiting}
        self.told_waiting |= set(newly_waiting)
        heal, newly_given_up = [], []
        for name in self.depends_on:  # registry order
            if name not in down or name in marked or name in self.given_up or name in waiting:
                continue
            if self.down_rounds[name] < self.settings.after_rounds:
                continue
            if name in graph.dependents(self.depends_on, down - {name}):
                continue  # a dependency is down: its own heal brings this one back
            if len(self._recent(name, now)) >= self.settings.max_per_hour:
                self.given_up.add(name)
                newly_given_up.append(name)
            elif now >= self.not_before.get(name, now):
                heal.append(name)
        return Decision(tuple(heal), tuple(newly_marked), newly_waiting, tuple(newly_given_up),
                        tuple(n for n in self.depends_on if n in self.given_up))

    def attempted(self, roots: Iterable[str], restarted: Iterable[str], now: float) -> None:
        """An attempt for `roots` began, restarting `restarted` (the roots and their dependents): each root's
        attempt counts and sets its backoff; every restarted service must be seen down afresh."""
        for name in roots:
            recent = self._recent(name, now)
            recent.append(now)
            backoff = self.settings.backoff_seconds * 2 ** min(len(recent) - 1, 32)  # 2**32: past any maximum
            self.not_before[name] = now + min(backoff, self.settings.backoff_max_seconds)
        for name in restarted:
            self.down_rounds.pop(name, None)

    def attempts_in_the_last_hour(self, name: str, now: float) -> int:
        return len(self._recent(name, now))

    def next_attempt_in(self, name: str, now: float) -> float:
        return max(0.0, self.not_before.get(name, now) - now)

    def _recent(self, name: str, now: float) -> deque[float]:
        recent = self.attempts.setdefault(name, deque())
        while recent and recent[0] <= now - HOUR:
            recent.popleft()
        return recent
