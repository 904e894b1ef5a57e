"""--heal, the doing part: between monitor rounds, restart what the policy (heal.py) picks exactly as
`restart-trading-system.py --only NAME` does (the same selection with its dependents, preflight, plans,
executor and health verdict, whatever backend runs it), holding the run lock; every attempt and its result
is an event that the CLI prints, writes as JSON and logs.

It never waits for the lock: a run that holds it is a person at work, so the round's heal is skipped, and
said so. What was stopped on purpose is read each round, and again under the lock, with the identity of the
state directory it was read from (statedir.identity): the policy (heal.py) remembers it, and what a directory
that vanished or was replaced may have taken with it; one that cannot be read heals nothing.

During a heal's restart Ctrl-C and SIGTERM behave as in restart-trading-system.py (the stops in flight
finish, what was stopped is started again; a second one leaves everything as it is), and the monitor ends
afterwards; a hang-up lets the restart finish, then ends the monitor as it would between rounds.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Callable

from .. import operations, statedir, stopped
from ..data import replace
from ..errors import OperationFailed, TmtError
from ..events import Events
from ..interrupts import INTERRUPTED, Interrupts
from ..lock import holder, run_lock
from ..results import Result
from ..states import Overall
from ..health import advice
from ..health.checks import Finding
from ..health.merge import NOT_RUNNING
from ..timefmt import iso
from .policy import HealPolicy

if TYPE_CHECKING:
    from ..backends import Deployment
    from ..registry import Service
    from ..health.checks import Check, Report


def _names(names) -> str:
    return ", ".join(names)


class _HealLines:
    """The restart's own lines, marked as the heal's: shown with --verbose (warnings and errors always), and
    every one in the toolkit log."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def info(self, text: str) -> None:
        self.events.detail(f"heal: {text}")

    def ok(self, text: str) -> None:
        self.info(text)

    def waiting(self, service: str, activity: str, limit: float) -> None:
        """A heal's restart shows no live waits: the monitor's lines are its output."""

    def settled(self, service: str) -> None:
        """(see waiting)"""

    def detail(self, text: str) -> None:
        self.info(text)

    def line(self, text: str = "", style: str | None = None) -> None:
        if text:
            self.info(text)

    def warn(self, text: str) -> None:
        self.events.warn(f"heal: {text}")

    def error(self, text: str) -> None:
        self.events.error(f"heal: {text}")


class Healer:
    def __init__(self, deployment: "Deployment", events: Events, emit: Callable[[dict], None]) -> None:
        """events: where the restarts' own lines go; emit(event): a heal event (a dict, "type": "heal")."""
        self.deployment, self.events, self.emit = deployment, events, emit
        registry = deployment.registry
        self.settings = registry.heal
        self.policy = HealPolicy(registry.heal, {s.name: [d.name for d in s.depends_on]
                                                 for s in registry.services.values()})
        self.interrupts = Interrupts()  # one for the whole monitor, installed only while a heal runs
        self.pending: tuple[str, ...] = ()  # what act() heals after this round
        self.round = 0

    def review(self, number: int, report: "Report") -> "Report":
        """Decide on round `number`; returns its report with a critical finding for each service past the cap."""
        self.round = number
        now = time.monotonic()
        self.pending = ()
        try:
            state, marked = self._read_state()
        except TmtError as exc:  # what was stopped on purpose cannot be known: nothing is healed
            self._cannot_read(exc)
            return report
        down, unseen = self._seen(report)
        decision = self.policy.decide(down.get("core", ()), marked, now, down.get("infrastructure", ()), unseen, state)
        self.pending = decision.heal
        self._lost(decision.lost, state)
        for name in decision.newly_marked:
            self._event("stopped_on_purpose", [name], "info",
                        f"{name} is down and {self.policy.intended[name]}: not healed; a restart or start of it "
                        "lifts that")
        for name, components in decision.newly_waiting.items():
            self._event("skipped", [name], "warn",
                        f"{name} is down and waits for {_names(components)}: infrastructure, which --heal never "
                        "starts (its restart would); once it runs again, a heal follows")
        for name in decision.newly_given_up:
            self._event("gave_up", [name], "error",
                        f"{name} stays down after {self.settings.max_per_hour} heal attempt(s) within an hour "
                        "(heal.max_per_hour): no more attempts until it runs again; see its finding")
        if not decision.given_up:
            return report
        checks = {c.service.name: c for c in report.checks}
        extra = [self._given_up(checks[name]) for name in decision.given_up]
        return replace(report, findings=tuple(advice.worst_first([*report.findings, *extra])))

    def act(self) -> bool:
        """Heal what review() picked; False when the monitor must end (an interrupt or a hang-up came meanwhile)."""
        roots, self.pending = self.pending, ()
        if not roots:
            return True
        state_dir = self.deployment.registry.state_dir
        with ExitStack() as held:
            try:
                held.enter_context(run_lock(state_dir, lambda text: None, wait=0))
            except OperationFailed as exc:
                who = holder(state_dir)
                self._event("skipped", roots, "warn", f"{_names(roots)} down, not healed this round: "
                            + (f"another run holds the lock ({who})" if who else str(exc)))
                return True
            # Under the lock, what a person did since the round is all there is to see: a stop's markers (written
            # under the lock too), a restart that brought the service back, a state directory removed or replaced.
            try:
                state, marked = self._read_state()
            except TmtError as exc:
                self._cannot_read(exc)
                return True
            looked = self.deployment.registry.select(roots)
            try:
                still_down = {s.name for s in operations.not_running(self.deployment, looked)}
                running = [s for s in looked if s.name not in still_down]
                if running:  # one that runs but never became ready (stuck) is as down as one that is gone
                    from ..health.report import check_services
                    still_down |= {n for n, c in check_services(self.deployment, running).items() if c.stuck}
            except TmtError as exc:  # the backend cannot be asked now: no restart on what cannot be seen
                self._event("skipped", roots, "warn", f"{_names(roots)} down, not healed this round: {exc}")
                return True
            self._lost(self.policy.observe(still_down, {s.name for s in looked} - still_down, marked, state), state)
            on_purpose = set(marked) | set(self.policy.intended)
            roots = tuple(name for name in roots if name in still_down and name not in on_purpose)
            if not roots:
                return True
            return self._heal(roots, [s for s in operations.select(self.deployment, roots)
                                      if s.name not in on_purpose and s.group != "infrastructure"])

    def _heal(self, roots: tuple[str, ...], restarting: list["Service"]) -> bool:
        names = [s.name for s in restarting]
        down_for = max(self.policy.down_rounds.get(n, 0) for n in roots)
        now = time.monotonic()
        self.policy.attempted(roots, names, now)
        attempts = {n: self.policy.attempts_in_the_last_hour(n, now) for n in roots}
        self._event("attempt", roots, "warn",
                    f"{_names(roots)} down for {down_for} rounds: restarting {_names(names)} (attempt "
                    f"{max(attempts.values())} of at most {self.settings.max_per_hour} within an hour)",
                    restarting=names, attempts_last_hour=attempts)
        result = self._restart(restarting)
        seconds = round(time.monotonic() - now, 1)
        healed = result.exit_code == 0 and all(o.up for o in result.outcomes.values())
        if healed:
            text = f"{_names(roots)} healed in {seconds:g} s: {result.last}"
        else:
            text = (f"{_names(roots)} not healed (exit {result.exit_code}, {seconds:g} s): {result.last}; "
                    f"{self._then(roots, result)}")
        self._event("result", roots, "ok" if healed else "error", text, restarting=names, ok=healed,
                    exit_code=result.exit_code, seconds=seconds,
                    states={o.service: o.state for o in result.outcomes.values()})
        return not (self.interrupts.requested.is_set() or self.interrupts.hung_up or result.exit_code == INTERRUPTED)

    def _then(self, roots: tuple[str, ...], result: Result) -> str:
        """What comes after an attempt that did not heal."""
        if result.exit_code == INTERRUPTED:
            return "the monitor ends"
        if max(self.policy.attempts_in_the_last_hour(n, time.monotonic()) for n in roots) >= self.settings.max_per_hour:
            return "that was the last attempt allowed within an hour"
        wait = max(self.policy.next_attempt_in(n, time.monotonic()) for n in roots)
        return (f"next attempt once down {self.settings.after_rounds} more round(s)"
                + (f", and not before {wait:.0f} s" if wait >= 1 else ""))

    def _restart(self, services: list["Service"]) -> Result:
        try:
            with self.interrupts.handling(self.events.warn):
                return operations.restart(self.deployment, services, operations.Options(), _HealLines(self.events),
                                          self.interrupts)
        except KeyboardInterrupt:  # before the first change: nothing to put back
            return Result(INTERRUPTED, last="interrupted before any change: nothing was stopped or started",
                          level="warn")
        except TmtError as exc:  # preflight found a problem (its lines were said), or the backend failed
            return Result(exc.exit_code, last=str(exc), level="error")

    def _read_state(self) -> tuple[tuple | None, dict[str, str]]:
        """The state directory's identity and its stop markers (service -> why it is down), read from that very
        directory: one replaced while its markers were read is read again (StateError when it keeps changing, or
        cannot be read)."""
        state_dir = self.deployment.registry.state_dir
        for _ in range(3):
            before = statedir.identity(state_dir)
            marked = stopped.read(state_dir)
            if statedir.identity(state_dir) == before:
                return before, {name: f"was {marker.describe()}" for name, marker in marked.items()}
        raise statedir.StateError(f"the state directory {state_dir} was replaced each time it was read")

    def _cannot_read(self, exc: TmtError) -> None:
        """Said once, until it can be read again (the report names the problem every round: a finding)."""
        watched = [s.name for s in self.deployment.registry.managed
                   if self.deployment.of(s) is not None and s.group != "infrastructure"]
        if self.policy.cannot_read() and watched:
            self._event("skipped", watched, "warn",
                        f"not healing: {exc}; what was stopped on purpose cannot be known, so nothing is healed "
                        "until it can be read again")

    def _lost(self, names: tuple[str, ...], state) -> None:
        """The policy found the state directory lost: say which services that leaves down, once."""
        if names:
            self._event("stopped_on_purpose", names, "warn",
                        f"the state directory {self.deployment.registry.state_dir} "
                        f"{'vanished' if state is None else 'was replaced'}: {_names(names)}, not seen running now, "
                        f"{'counts' if len(names) == 1 else 'count'} as stopped on purpose until a restart or start "
                        f"brings {'it' if len(names) == 1 else 'them'} up (a stop marker may have gone with it)")

    def _seen(self, report: "Report") -> tuple[dict[str, list[str]], list[str]]:
        """(group -> what the deployment runs of it that is down: nothing of it runs, by its backend's word, or it
        runs but never became ready within its startup_timeout;
        what a heal could restart whose backend could not be asked). What the deployment does not run is neither."""
        down: dict[str, list[str]] = {}
        unseen = []
        for c in report.checks:
            if self.deployment.of(c.service) is None:
                continue
            if c.backend is None:
                if c.service.group != "infrastructure":
                    unseen.append(c.service.name)
            elif c.backend.state in NOT_RUNNING or c.stuck:  # gone, or never became ready
                down.setdefault(c.service.group, []).append(c.service.name)
        return down, unseen

    def _given_up(self, check: "Check") -> Finding:
        s = check.service
        return Finding(Overall.CRITICAL, s.name,
                              f"{s.display_name} stays down after {self.settings.max_per_hour} heal attempt(s) "
                              "within an hour (heal.max_per_hour): --heal stopped trying until it runs again",
                              advice.service_steps(advice.Commands(self.deployment.registry, self.deployment.mode),
                                                  self.deployment, check))

    def _event(self, kind: str, services, level: str, message: str, **fields) -> None:
        self.emit({"type": "heal", "round": self.round, "event": kind, "time": iso(time.time()),
                   "services": list(services), "level": level, "message": message, **fields})
