"""What operations return: an outcome per service and one verdict, for the CLI to render (pipx's shape)."""

from __future__ import annotations

from .data import dataclass, field

UP = ("running", "degraded", "done")  # summary states of a service that serves, or a job that did its work


@dataclass
class Outcome:
    """One row of a summary: what became of one service."""

    service: str
    state: str  # running / degraded / done (a job) / starting / failed / not started / unhealthy / not stopped / untouched
    port: int | None
    runs_as: str | None = None  # "pid 4242" or "container tmt-orchestrator-1"
    ready_seconds: float | None = None
    detail: str = ""

    @property
    def up(self) -> bool:
        return self.state in UP


@dataclass(frozen=True)
class StopResult:
    service: str
    stopped: bool
    detail: str
    survivors: tuple[str, ...] = ()
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()


@dataclass
class Result:
    """An operation's outcome: per-service rows, a last line, and the exit code it stands for."""

    exit_code: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    last: str = ""  # the final line: a summary, or the error
    level: str = "ok"  # ok / warn / error: how the final line is shown


@dataclass(frozen=True)
class Table:
    """Rows for a person: a header, the rows, and how each row is shown (ok / warn / error / dim / None)."""

    header: tuple[str, ...]
    rows: tuple[tuple, ...]
    styles: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class StatusView:
    """What a backend's status says, as data: its --json document (versioned: fields are only ever added), and for
    a person, lines before its table, the table, lines after it; the exit code (0: everything runs)."""

    document: dict
    table: Table | None
    exit_code: int
    before: tuple[tuple[str, str], ...] = ()  # (style, text)
    after: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Blocked:
    """A service that cannot be stopped (or started) as asked: something foreign holds what it needs."""

    why: str
    holds_port: bool = False  # what is in the way holds the service's port (a stop cannot free it)
