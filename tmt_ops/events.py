"""Where the library reports progress while an operation runs: lines for a person, said as they happen.

The library never prints; it is handed an Events (the CLI's Printer, which colours, masks secrets and copies
every line to logs/tmt-ops.log) and returns a Result (results.py) that the CLI renders at the end.
"""

from __future__ import annotations

from typing import Protocol


class Events(Protocol):
    def info(self, text: str) -> None: ...

    def ok(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def detail(self, text: str) -> None: ...  # shown with --verbose only

    def line(self, text: str = "", style: str | None = None) -> None: ...

    def waiting(self, service: str, activity: str, limit: float) -> None: ...  # a wait begins: shown as it goes

    def settled(self, service: str) -> None: ...  # ... and is over
