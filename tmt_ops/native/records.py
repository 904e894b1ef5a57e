"""Run records: what the toolkit started, one JSON file per service in the state directory.

A record outlives the toolkit process so a later stop can find the service again. It holds only what
identity needs: (pid, create time) proves a live process is still the one started, not a reused pid; the
cgroup and the run tag (native/proof.py) say what that process started. A record is a claim, not a proof
(a state directory may be a copy of another deployment's): discovery checks the process against this state
directory's own cgroup and run tag. No command line and no environment: a secret expanded into an argument
never reaches the state directory; only its position does (secret_args), so that a later run, which may not
hold the variable that held it (cron, systemd), still masks it where it shows the process's command line.
Records are private (0600 in a 0700 directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import psutil

from .. import statedir
from ..bounds import Bound
from ..data import asdict, dataclass, fields, replace
from ..redact import argv_secrets
from .procs import Proc, live

RECORDS = "run"  # sub-directory of the state directory
POSITION = Bound(0, 1 << 17, integer=True)  # of an argument in a command line


@dataclass(frozen=True)
class RunRecord:
    service: str
    pid: int
    pgid: int
    sid: int
    create_time: float  # psutil's, compared with the live process before anything is signalled
    log_file: str
    started_at: float  # wall clock (time.time())
    run_tag: str = ""  # TMT_OPS_RUN of the spawn ("" in records of older versions)
    cgroup: str | None = None  # the service's cgroup directory, where one was made
    secret_args: tuple[int, ...] = ()  # positions in its command holding a secret (Service.secret_args); () in older

    @property
    def leads_group(self) -> bool:
        """The toolkit spawned it in a new session: its process group holds only what it started."""
        return self.pid == self.pgid == self.sid


def write(state_dir: Path, record: RunRecord) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one (statedir.StateError). Not
    fsync'd (it is on each start's critical path): a record describes processes of this boot, which a crash of
    the host ends too, and a record damaged by one is read as damaged (no proof, nothing signalled)."""
    statedir.write(state_dir, RECORDS, record.service, asdict(record), durable=False)


_FIELDS = {f.name for f in fields(RunRecord)}


def _parsed(name: str, data: dict | None) -> RunRecord | None:
    """A record whose fields have the right types and sane values, else None (damaged, or not a record)."""
    if data is None or data.get("service") != name:
        return None
    try:
        record = RunRecord(**{k: v for k, v in data.items() if k in _FIELDS})
        for key in ("pid", "pgid", "sid"):
            statedir.number(data, key, statedir.PID)
        for key in ("create_time", "started_at"):
            statedir.number(data, key, statedir.WALL_CLOCK)
        if not isinstance(record.log_file, str) or not isinstance(record.run_tag, str) or \
                not isinstance(record.cgroup, (str, type(None))) or not isinstance(record.secret_args, (list, tuple)):
            return None
        if any(isinstance(i, bool) or not isinstance(i, int) or POSITION.problem(i) for i in record.secret_args):
            return None
    except (TypeError, ValueError):
        return None
    return replace(record, secret_args=tuple(record.secret_args))


def read_all(state_dir: Path, only: Iterable[str] | None = None) -> dict[str, RunRecord]:
    """Every readable record by service (`only`: of these services); a damaged one is skipped (the identity scan
    still runs), and so is a state directory that cannot be read (discovery proves what runs without records).
    Fields this version does not know (an older version's argv) are ignored."""
    try:
        saved = statedir.read_all(state_dir, RECORDS, only)
    except statedir.StateError:
        return {}
    return {name: record for name, data in saved.items() if (record := _parsed(name, data)) is not None}


def secret_words(state_dir: Path) -> set[str]:
    """The secret words of the live processes the run records name (the same pid and create time): those at
    the recorded secret positions, and those the rules of redact.mask_argv find. For a Redactor: what a service
    was started with may be a value this run's environment no longer holds, and it is then masked wherever it
    shows (a survivor's command line, a wrapper's child that carries it inside one word)."""
    found: set[str] = set()
    for record in read_all(state_dir).values():
        process = live(Proc(record.pid, record.create_time))
        if process is None:
            continue
        try:
            found |= argv_secrets(process.cmdline(), record.secret_args)
        except psutil.Error:  # gone meanwhile, or another user's
            continue
    return found


def remove(state_dir: Path, service: str) -> str | None:
    """Drop a service's record; a warning line when it is there and cannot be removed (it is only a claim:
    the next run checks it against the live process and drops it then)."""
    try:
        statedir.remove(state_dir, RECORDS, service)
    except statedir.StateError as exc:
        return f"{service}: cannot drop its run record ({exc}); the next run checks it again"
    return None
