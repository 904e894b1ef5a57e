"""Run records: what the toolkit started, one JSON file per service in the state directory.

A record outlives the toolkit process so a later stop can find the service again, and its
(pid, create_time) pair proves a live process is still the one we started, not a reused PID.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import write_atomic

RECORDS = "run"  # sub-directory of the state directory


@dataclass(frozen=True)
class RunRecord:
    service: str
    pid: int
    pgid: int
    sid: int
    create_time: float  # psutil's, compared with the live process before anything is signalled
    argv: tuple[str, ...]
    cwd: str
    log_file: str
    started_at: float  # wall clock (time.time())

    @property
    def leads_group(self) -> bool:
        """The toolkit spawned it in a new session: its process group holds only what it started."""
        return self.pid == self.pgid == self.sid


def _path(state_dir: Path, service: str) -> Path:
    return Path(state_dir) / RECORDS / f"{service}.json"


def write(state_dir: Path, record: RunRecord) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one."""
    path = _path(state_dir, record.service)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(record), indent=1))


def read_all(state_dir: Path) -> dict[str, RunRecord]:
    """Every readable record by service; an unreadable file is skipped (the identity scan still runs)."""
    found = {}
    folder = Path(state_dir) / RECORDS
    if not folder.is_dir():
        return found
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = RunRecord(**{**data, "argv": tuple(data["argv"])})
        except (OSError, ValueError, TypeError, KeyError):
            continue
        found[record.service] = record
    return found


def remove(state_dir: Path, service: str) -> None:
    _path(state_dir, service).unlink(missing_ok=True)
