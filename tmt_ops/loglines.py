"""What of a service's own output tells why it failed.

A real service's output is mostly access-log lines: uvicorn writes one per request
(`INFO:     127.0.0.1:41234 - "GET /health HTTP/1.1" 503`), so while it boots the toolkit's own readiness
probes fill its log, and the one line that says why it failed (a settings traceback) sits above them. The rules:
- only this run's lines: a service's log is appended to across runs, and each start writes a marker line
  (MARKER) first; what came before it is an earlier run's;
- the toolkit's own probe requests are left out (a request line for the service's health path);
- error-looking lines (a traceback and what follows it, ERROR / FATAL / CRITICAL / Exception) come first, then
  the last lines, up to the limit, each once, in the order they were written.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from .registry import Service

MARKER = "--- tmt-ops started "  # the first line a start writes into the service's log
ERRORISH = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|FATAL|CRITICAL|Exception|Error)\b|^\s+File \"")


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
    """Up to `limit` lines that tell what happened: the error-looking ones first (the first `limit` of them, so a
    traceback's head is kept), the rest filled with the last lines; in the order they were written."""
    lines = [line for line in this_run(list(lines)) if not is_probe_request(service, line)]
    chosen = [n for n, line in enumerate(lines) if ERRORISH.search(line)][:limit]
    for n in range(len(lines) - 1, -1, -1):
        if len(chosen) >= limit:
            break
        if n not in chosen:
            chosen.append(n)
    return [lines[n] for n in sorted(chosen)]
