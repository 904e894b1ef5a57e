"""Run records: what the toolkit started, one JSON file per service in the state directory.

A record outlives the toolkit process so a later stop can find the service again. It holds only what
identity needs: (pid, create time) proves a live process is still the one started, not a reused pid; the
cgroup and the run tag (native/proof.py) say what that process started. A record is a claim, not a proof
(a state directory may be a copy of another deployment's): discovery checks the process against this state
directory's own cgroup and run tag. No command line and no environment: a secret expanded into an argument
never reaches the state directory. Records are private (0600 in a 0700 directory).
"""

from __future__ import annotations

import dataclasses
import json
import os
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
    log_file: str
    started_at: float  # wall clock (time.time())
    run_tag: str = ""  # TMT_OPS_RUN of the spawn ("" in records of older versions)
    cgroup: str | None = None  # the service's cgroup directory, where one was made

    @property
    def leads_group(self) -> bool:
        """The toolkit spawned it in a new session: its process group holds only what it started."""
        return self.pid == self.pgid == self.sid


def _path(state_dir: Path, service: str) -> Path:
    return Path(state_dir) / RECORDS / f"{service}.json"


def write(state_dir: Path, record: RunRecord) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one."""
    path = _path(state_dir, record.service)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    write_atomic(path, json.dumps(asdict(record), indent=1), mode=0o600)


_FIELDS = {f.name for f in dataclasses.fields(RunRecord)}


def read_all(state_dir: Path) -> dict[str, RunRecord]:
    """Every readable record by service; an unreadable file is skipped (the identity scan still runs).
    Fields this version does not know (an older version's argv) are ignored."""
    found = {}
    folder = Path(state_dir) / RECORDS
    if not folder.is_dir():
        return found
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = RunRecord(**{k: v for k, v in data.items() if k in _FIELDS})
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        found[record.service] = record
    return found


def remove(state_dir: Path, service: str) -> None:
    _path(state_dir, service).unlink(missing_ok=True)
