"""What one health round found, as data every part of health reads (the report, its findings and documents, the
monitor, heal): a probe joined with its backend's view (Check), a finding and its steps, the whole report."""

from __future__ import annotations


from ..backends import ServiceStatus
from ..data import dataclass
from ..probes import ProbeResult
from ..registry import Service
from ..states import Health, Overall
from .resources import Resources
from .severity import of_health, worst


@dataclass(frozen=True)
class Step:
    why: str
    command: str


@dataclass(frozen=True)
class Finding:
    severity: Overall
    subject: str  # the service's name, or the resource ("disk /var/log", "memory"); joined: "postgres, redis"
    message: str
    steps: tuple[Step, ...] = ()
    # A finding whose cause other subjects can share says it as `who: cause` (shared()): said_once() joins those
    # with the same cause, severity and steps. Empty: the finding is its subject's own.
    who: str = ""  # how the message names its subject(s): "PostgreSQL (HOST:PORT)"
    cause: str = ""  # what it says of them, naming none of them
    subjects: tuple[str, ...] = ()  # every subject of a joined finding, in order (() for one: the subject)


@dataclass(frozen=True)
class PortHolder:
    pid: int
    name: str
    user: str
    cmdline: str
    ours: bool | None  # is it the service's own process (None: cannot tell, e.g. infrastructure)


@dataclass(frozen=True)
class Check:
    service: Service
    result: ProbeResult
    status: Health  # the probe's verdict, joined with the backend's
    error: str | None
    backend: ServiceStatus | None
    holders: tuple[PortHolder, ...] = ()
    stuck: bool = False  # it runs, but never became ready within its startup_timeout (merge.past_startup)

    @property
    def severity(self) -> Overall:
        return of_health(self.status, self.service.critical)


@dataclass(frozen=True)
class Report:
    timestamp: float
    mode: str
    checks: tuple[Check, ...]
    resources: Resources
    findings: tuple[Finding, ...]
    duration_ms: float

    @property
    def overall(self) -> Overall:
        return worst([*(c.severity for c in self.checks), self.resources.severity,
                      *(f.severity for f in self.findings)])
