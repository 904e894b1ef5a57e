"""--heal, the deciding part (pure, tested without a process): which down services to restart this round.

A managed service is down when its backend says nothing of it runs (stopped or failed: it crashed, was
killed, exited), not when it runs and answers badly, slowly or degraded: a running service is restarted only
by a person, who knows what a restart costs (its finding says how). A down service is healed once it has
been down `after_rounds` rounds in a row, unless
- it was stopped on purpose: said once, never healed (see below);
- a service it depends on is down too: that one is healed first, and brings its dependents back in order;
  infrastructure that the deployment runs is never healed, so a service that depends on such a component that
  is down waits (said once) until a person starts it: its restart would start the component too;
- it waits out its backoff after an attempt (backoff_seconds, doubling, at most backoff_max_seconds);
- it had `max_per_hour` attempts in the last hour: then it gets no more until it is seen running again, and
  is a critical finding every round meanwhile.

Stopped on purpose is an intent that outlives the state it was read from: a stop leaves a marker in the state
directory, and the policy remembers every marker it has seen until it sees that service running again (a
restart or start, which clear the marker, brought it up), so a marker that vanishes with its state directory
(an operator clearing stale records) still holds. And when the state directory read is not the one read the
round before (it vanished, or another took its place: a copy, a new one), the markers of what went down
meanwhile may have gone with it, unseen: every service not seen running at that moment counts as stopped on
purpose (said once) until it is seen running. A state directory missing when the monitor starts is no state at
all, not a lost one (nothing was read from it), and one that appears later is the first one read. A state
directory that cannot be read (a file, a FIFO, no permission) heals nothing until it can be (said once).
Memory stays flat: per service a counter, at most `max_per_hour` attempt times and one reason.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable, Iterable, Mapping, Sequence

from ..data import dataclass
from ..registry import HealSettings
from ..registry import graph

HOUR = 3600.0
# Why a service counts as stopped on purpose when no marker says so: it was not seen running when its state
# directory turned out lost (the words follow "NAME is down and").
STATE_LOST = ("was not seen running when the state directory vanished or was replaced (its stop marker may have "
              "gone with it)")
_NO_STATE_YET = object()  # no state directory read so far


@dataclass(frozen=True)
class Decision:
    heal: tuple[str, ...]  # to restart now, each with its dependents
    newly_marked: tuple[str, ...]  # down and stopped on purpose, first seen so (said once; why: HealPolicy.intended)
    newly_waiting: Mapping[str, tuple[str, ...]]  # down, and waits for this infrastructure (said once)
    newly_given_up: tuple[str, ...]  # past the cap from this round on (said once)
    given_up: tuple[str, ...]  # every service past the cap: a critical finding each round
    lost: tuple[str, ...] = ()  # the state directory was lost this round: these, not seen running, stay down


class HealPolicy:
    def __init__(self, settings: HealSettings, depends_on: Mapping[str, Sequence[str]]):
        """depends_on: every service of the registry (in registry order) -> the names it depends on."""
        self.settings = settings
        self.depends_on = depends_on
        self.down_rounds: dict[str, int] = {}
        self.attempts: dict[str, deque[float]] = {}  # times of the attempts within the last hour
        self.not_before: dict[str, float] = {}  # backoff: no attempt before then
        self.given_up: set[str] = set()
        self.intended: dict[str, str] = {}  # stopped on purpose, until seen running -> why (a marker's words)
        self.state: Hashable = _NO_STATE_YET  # the identity of the state directory last read (None: there was none)
        self.unreadable = False  # the state directory could not be read last time (said once)
        self.told_marked: set[str] = set()
        self.told_waiting: set[str] = set()

    def cannot_read(self) -> bool:
        """The state directory cannot be read: nothing is healed (the caller heals nothing) until it can be.
        True the first time in a row (to be said once)."""
        newly, self.unreadable = not self.unreadable, True
        return newly

    def observe(self, down: Iterable[str], running: Iterable[str], marked: Mapping[str, str],
                state: Hashable) -> tuple[str, ...]:
        """What one look showed: services seen down and seen running (any other was not seen: its backend could
        not be asked), the stop markers read (service -> what it says) and the identity of the state directory
        they were read from (None: there is none). Updates what counts as stopped on purpose; returns, when the
        state directory is not the one read before, the services that count so from now on (to be said once)."""
        down, running = set(down), set(running)
        self.unreadable = False
        for name in running:
            self.intended.pop(name, None)
        self.intended.update({n: why for n, why in marked.items() if n in self.depends_on and n not in running})
        lost = self.state not in (_NO_STATE_YET, None) and state != self.state
        self.state = state
        if not lost:
            return ()
        unseen_running = [n for n in self.depends_on if n not in running and (n in down or n in self.intended)]
        for name in unseen_running:
            self.intended.setdefault(name, STATE_LOST)
        self.told_marked |= set(unseen_running)
        return tuple(unseen_running)

    def decide(self, down: Iterable[str], marked: Mapping[str, str], now: float,
               infrastructure_down: Iterable[str] = (), unseen: Iterable[str] = (), state: Hashable = None) -> Decision:
        """down: the healable services seen down this round; marked: the stop markers read (service -> what it
        says); now: a monotonic clock; infrastructure_down: components the deployment runs that are down (never
        healed); unseen: services whose backend could not be asked (neither down nor running); state: the
        identity of the state directory the markers were read from (None: there is none)."""
        down, infrastructure_down, unseen = set(down), set(infrastructure_down), set(unseen)
        running = set(self.depends_on) - down - unseen - infrastructure_down
        lost = self.observe(down | unseen, running, marked, state)
        self.down_rounds = {name: self.down_rounds.get(name, 0) + 1 for name in down}
        self.given_up -= running  # seen running again (a person restarted it): attempts are allowed again
        on_purpose = set(self.intended)
        self.told_marked &= down & on_purpose
        newly_marked = [n for n in self.depends_on if n in down & on_purpose - self.told_marked]
        self.told_marked |= set(newly_marked)
        needing = {i: graph.dependents(self.depends_on, [i]) for i in self.depends_on if i in infrastructure_down}
        waiting = {}
        for name in down - on_purpose:
            components = tuple(i for i, dependents in needing.items() if name in dependents)
            if components:
                waiting[name] = components
        self.told_waiting &= set(waiting)
        newly_waiting = {n: waiting[n] for n in self.depends_on if n in waiting and n not in self.told_waiting}
        self.told_waiting |= set(newly_waiting)
        heal, newly_given_up = [], []
        for name in self.depends_on:  # registry order
            if name not in down or name in on_purpose or name in self.given_up or name in waiting:
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
                        tuple(n for n in self.depends_on if n in self.given_up), lost)

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
