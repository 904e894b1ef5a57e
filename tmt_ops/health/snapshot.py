"""What system-health.py --serve answers, rendered once per round, so that a request costs no probe and
almost no work: /health (application/health+json; 200 for pass and warn, 503 for fail), /metrics
(Prometheus text), /api/rounds (the status page's data), /api/history (the journal's last operations) and the
facts /readyz judges by.

Memory stays flat: the status page's history is a ring of HISTORY rounds (a few hundred bytes each: each check's
severity, status and response time, none where nothing answered) and of HEALS heal events; nothing else is kept
between rounds.
"""

from __future__ import annotations

import json
import time
from collections import deque

from ..data import dataclass, field
from ..output.healthjson import MEDIA_TYPE, document as health_document
from ..output.prometheus import render as render_metrics

HISTORY = 60  # rounds the status page charts
HEALS = 20  # heal events the status page lists
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
HTTP_STATUS = {"healthy": 200, "warning": 200, "critical": 503}


@dataclass(frozen=True)
class Body:
    status: int
    content_type: str
    data: bytes


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _latency(check: dict) -> float | None:
    """How fast it answered; none where nothing answered: how long a refused connection or a probe that gave up
    took says nothing of the service, and charted beside real answers it reads as one."""
    return check["response_time_ms"] if check["port_open"] and check["probe_status"] != "timeout" else None


@dataclass(frozen=True)
class Snapshot:
    round: int = 0  # 0: no round has finished yet
    overall: str = ""
    made: float = 0.0  # time.monotonic() of the round
    health: Body = Body(503, MEDIA_TYPE, _json({"status": "fail", "output": "no health round has finished yet"}))
    metrics: Body = Body(503, TEXT, b"no health round has finished yet\n")
    rounds: Body = Body(200, JSON, _json({"round": 0, "latest": None, "history": [], "heals": []}))
    changes: Body = Body(200, JSON, _json({"version": 1, "records": [], "error": None}))  # /api/history
    healing: tuple[str, ...] = field(default=())  # a heal runs for these now


def stale_after(interval: float, deadline: float) -> float:
    """When the last round is too old (/readyz, and the alert rule on it): a round may come one interval late, and
    take its deadline."""
    return 2 * interval + deadline


class Publisher:
    """Each round (and heal event) into the Snapshot the server answers from."""

    def __init__(self, interval: float, deadline: float, heal: bool) -> None:
        self.interval, self.heal = interval, heal
        self.stale_after = stale_after(interval, deadline)
        self.history: deque[bytes] = deque(maxlen=HISTORY)
        self.heals: deque[dict] = deque(maxlen=HEALS)
        self.latest = b"null"
        self.snapshot = Snapshot()

    def round(self, number: int, document: dict, gave_up: tuple[str, ...] = (), changes: list[dict] = (),
              changes_error: str | None = None) -> Snapshot:
        """A round's document (redacted already) as every answer about it; with --heal, the services it gave up
        on (a metric); the journal's last records (tmt-ops history), or why it cannot be read."""
        checks = {c["name"]: [c["severity"], c["status"], _latency(c)]
                  for group in ("services", "infrastructure") for c in document[group].values()}
        self.history.append(_json({"round": number, "time": document["timestamp"],
                                   "overall": document["overall_status"], "checks": checks}))
        self.latest = _json(document)
        self.snapshot = Snapshot(
            round=number, overall=document["overall_status"], made=time.monotonic(),
            health=Body(HTTP_STATUS[document["overall_status"]], MEDIA_TYPE, _json(health_document(document))),
            metrics=Body(200, PROMETHEUS, render_metrics(document, gave_up if self.heal else None).encode()),
            rounds=self._rounds(number),
            changes=Body(200, JSON, _json({"version": 1, "records": list(changes), "error": changes_error})))
        return self.snapshot

    def heal_event(self, event: dict) -> Snapshot:
        """A heal event (redacted already): listed on the status page; an attempt marks a heal under way."""
        self.heals.append(event)
        s = self.snapshot
        healing = tuple(event["services"]) if event["event"] == "attempt" else ()
        self.snapshot = Snapshot(s.round, s.overall, s.made, s.health, s.metrics, self._rounds(s.round, healing),
                                 s.changes, healing)
        return self.snapshot

    def _rounds(self, number: int, healing: tuple[str, ...] = ()) -> Body:
        head = _json({"round": number, "interval_seconds": self.interval, "stale_after_seconds": self.stale_after,
                      "heal": self.heal, "healing": list(healing), "heals": list(self.heals)})
        data = head[:-1] + b',"latest":' + self.latest + b',"history":[' + b",".join(self.history) + b"]}"
        return Body(200, JSON, data)


def readiness(snapshot: Snapshot, stale_after: float, now: float) -> Body:
    """/readyz: 200 when the last round is fresh and not critical, else 503; one line says why."""
    if not snapshot.round:
        return Body(503, TEXT, b"not ready: no health round has finished yet\n")
    age = now - snapshot.made
    healing = f"; a heal runs for {', '.join(snapshot.healing)}" if snapshot.healing else ""
    if age > stale_after:
        return Body(503, TEXT, f"not ready: the last round (#{snapshot.round}) is {age:.0f} s old, more than "
                               f"{stale_after:g} s{healing}\n".encode())
    if snapshot.overall == "critical":
        return Body(503, TEXT, f"not ready: round #{snapshot.round} is critical{healing}\n".encode())
    return Body(200, TEXT, f"ready: round #{snapshot.round} is {snapshot.overall}, {age:.1f} s old\n".encode())
