"""--monitor: a health round every interval, a line per round and a line per (debounced) state change; under
systemd (Type=notify) it says READY after its first round, STATUS every round, and feeds the watchdog.

A new state is reported only once it has held for registry.health.state_change_rounds rounds in a row, so
one slow answer does not flap. Nothing accumulates between rounds (flat memory); the CPU sampler spans
the whole interval, so the CPU figure is the load between rounds, not the checker's own start.

With a healer (--heal), each round is reviewed by it before it is reported (a service past the heal cap is a
critical finding of that round), and after it is reported the healer restarts what it chose; meanwhile
systemd's STATUS says so and the watchdog is fed for as long as a restart may take.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Callable, Mapping

from ..data import dataclass
from ..states import Overall
from ..systemd import Notifier, restart_limits
from .report import Report, build
from .resources import CpuSampler

if TYPE_CHECKING:
    from ..backends import Deployment
    from ..heal.runner import Healer


@dataclass(frozen=True)
class StateChange:
    subject: str
    old: str
    new: str
    at: float
    rounds: int  # how many rounds the new state held before it was reported


class Debouncer:
    """Reports a subject's new state after it holds `rounds` consecutive observations."""

    def __init__(self, rounds: int):
        self.rounds = rounds
        self.reported: dict[str, str] = {}
        self.pending: dict[str, tuple[str, int]] = {}

    def observe(self, states: Mapping[str, str], at: float) -> list[StateChange]:
        changes = []
        for subject, state in states.items():
            old = self.reported.setdefault(subject, state)
            if state == old:
                self.pending.pop(subject, None)
                continue
            seen, count = self.pending.get(subject, (state, 0))
            count = count + 1 if seen == state else 1
            if count >= self.rounds:
                changes.append(StateChange(subject, old, state, at, count))
                self.reported[subject] = state
                self.pending.pop(subject, None)
            else:
                self.pending[subject] = (state, count)
        for gone in set(self.reported) - set(states):  # a subject no longer observed: forget it
            self.reported.pop(gone)
            self.pending.pop(gone, None)
        return changes


def states_of(report: Report) -> dict[str, str]:
    """What is watched for changes: every check's status and every resource's severity."""
    states = {c.service.name: c.status.value for c in report.checks}
    states.update({f"system:{name}": sev.value for name, sev in report.resources.severities.items()})
    return states


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop()


def run(deployment: "Deployment", interval: float, on_round: Callable[[int, Report, list[StateChange]], None],
        count: int | None = None, healer: "Healer | None" = None) -> int:
    """Rounds until Ctrl-C, SIGTERM or SIGHUP (or `count` rounds, or the reader of its output goes away, or
    one of those came during a heal); returns the last round's exit code."""
    debouncer = Debouncer(deployment.registry.health.state_change_rounds)
    cpu = CpuSampler()
    systemd = Notifier()  # under systemd (Type=notify): READY, STATUS and the watchdog; else silent
    exit_code = 3  # no round finished: the check could not run
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    n = 0
    try:
        while count is None or n < count:
            n += 1
            round_started = time.monotonic()
            report = build(deployment, cpu)
            if healer is not None:
                report = healer.review(n, report)
            changes = debouncer.observe(states_of(report), report.timestamp)
            exit_code = report.overall.exit_code
            on_round(n, report, changes)
            status = status_line(n, report)
            systemd.send(**({"READY": "1"} if n == 1 else {}), STATUS=status, WATCHDOG="1")
            if healer is not None and healer.pending:
                with systemd.feeding(f"{status}; healing {', '.join(healer.pending)}",
                                     sum(restart_limits(deployment.registry, deployment.mode))):
                    if not healer.act():
                        break
            if count is None or n < count:
                _wait(round_started + interval, systemd)
    except (KeyboardInterrupt, _Stop, BrokenPipeError):  # Ctrl-C, SIGTERM, SIGHUP, or no one reads on
        pass
    finally:
        systemd.send(STOPPING="1")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code


def status_line(n: int, report: Report) -> str:
    """What `systemctl status` shows: the overall state and the count of each severity."""
    counts = {sev: sum(c.severity is sev for c in report.checks) for sev in Overall}
    return (f"{report.overall.value.upper()}: {counts[Overall.HEALTHY]} healthy, {counts[Overall.WARNING]} warning, "
            f"{counts[Overall.CRITICAL]} critical (round {n})")


def _wait(until: float, systemd: Notifier) -> None:
    """Sleep until `until`, feeding systemd's watchdog at least twice per period meanwhile (a hung round, in
    which nothing pings, is what the watchdog is for)."""
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, systemd.watchdog / 2) if systemd.watchdog else left)
        if systemd.watchdog and until - time.monotonic() > 0:
            systemd.send(WATCHDOG="1")
