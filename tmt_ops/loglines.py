"""What of a service's own output tells why it failed.

A real service's output is mostly access-log lines: uvicorn writes one per request
(`INFO:     127.0.0.1:41234 - "GET /health HTTP/1.1" 503`), so while it boots the toolkit's own readiness
probes fill its log, and the one line that says why it failed (a settings traceback) sits above them. The rules:
- only this run's lines: a service's log is appended to across runs, and each start writes a marker line
  (MARKER) first; what came before it is an earlier run's;
- the toolkit's own probe requests are left out (a request line for the service's health path);
- error-looking lines come first: a line that says ERROR / FATAL / CRITICAL / Exception or starts a traceback,
  with the lines that continue it (up to the next line that starts a log record of its own), in the order they
  were written; then the last of the other lines, up to the limit, each once.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from .registry import Service

MARKER = "--- tmt-ops started "  # the first line a start writes into the service's log
ERRORISH = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|FATAL|CRITICAL|Exception|Error)\b")
# A line that starts a log record of its own (a time stamp, a level as uvicorn writes it, "name[pid]:"), which
# ends what an error line began; anything else after an error line continues it (a traceback's frames).
RECORD_HEAD = re.compile(r"^(\d{4}-\d\d-\d\d|[A-Z]+:\s|\S+\[\d+\]:|--- )")


def is_probe_request(service: Service, line: str) -> bool:
    """An access-log line of a request for the service's health path (the toolkit's probe, or a monitor's)."""
    return bool(service.probe.path) and f'"GET {service.probe.path} ' in line


def this_run(lines: Sequence[str]) -> list[str]:
    """The lines after the last start marker (all of them when there is none in view)."""
    for n in range(len(lines) - 1, -1, -1):
        if lines[n].startswith(MARKER):
            return list(lines[n + 1:])
    return list(lines)


def telling(service: Service, lines: Iterable[str], limit: int) -> list[str]:
    """Up to `limit` lines that tell what happened: the error-looking ones and their continuations first (the
    first `limit` of them, so a traceback's head is kept), then the last of the others; each part in the order
    it was written."""
    lines = [line for line in this_run(list(lines)) if not is_probe_request(service, line)]
    errors, in_error = [], False
    for n, line in enumerate(lines):
        in_error = bool(ERRORISH.search(line)) or in_error and not RECORD_HEAD.match(line)
        if in_error:
            errors.append(n)
    errors = errors[:limit]
    rest = [n for n in range(len(lines)) if n not in set(errors)][-(limit - len(errors)):] if len(errors) < limit else []
    return [lines[n] for n in errors + rest]
