"""Ctrl-C, SIGTERM and SIGHUP while a script changes the system.

- Until the first change (discovery, preflight, waiting for the lock), Ctrl-C or SIGTERM aborts at once:
  nothing was touched.
- Once changes have begun, the first Ctrl-C or SIGTERM asks the operation to wind down safely (`requested`):
  the stops in flight finish, what this run stopped is started again, the summary is printed, exit
  130. A second one leaves everything as it is and exits 130 at once.
- SIGHUP (the operator's terminal or ssh connection went away) never ends an operation: writes to the
  terminal fail and are dropped by the Printer, logs/tmt-ops.log keeps every line.
- A long-running process that changes the system now and then (system-health.py --monitor --heal) takes
  these rules only while it changes something (`handling`), and learns afterwards what arrived meanwhile.

The handlers only set flags and queue a note (SimpleQueue is safe to use from a signal handler); a small
thread prints the notes, so no waiting loop has to, and no handler ever writes into a stream it may have
interrupted in the middle of a write.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

INTERRUPTED = 130


class Interrupts:
    def __init__(self) -> None:
        self.requested = threading.Event()  # the operation should wind down (checked by the executors)
        self.changing = False  # set by begin_changes(): from then on, the first interrupt does not abort
        self.then = "stopping"  # what the operation does when interrupted now; set as its phase changes
        self.hung_up = False  # a SIGHUP arrived (the operation carried on)
        self._notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._announcer: threading.Thread | None = None

    def install(self, say: Callable[[str], None]) -> "Interrupts":
        """Take over SIGINT, SIGTERM and SIGHUP for the rest of the process; `say` prints one warning line."""
        signal.signal(signal.SIGINT, self._on_interrupt)
        signal.signal(signal.SIGTERM, self._on_interrupt)
        signal.signal(signal.SIGHUP, self._on_hangup)
        if self._announcer is None:  # one per object, however often it is installed
            self._announcer = threading.Thread(target=self._announce, args=(say,), name="interrupts", daemon=True)
            self._announcer.start()
        return self

    @contextmanager
    def handling(self, say: Callable[[str], None]) -> Iterator["Interrupts"]:
        """These rules for one operation only, from its first step (nothing changed yet); the handlers that were
        there before are put back after it. `requested` and `hung_up` tell what arrived meanwhile."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        self.changing, self.then = False, "stopping"
        self.install(say)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def begin_changes(self, then: str) -> None:
        self.changing = True
        self.then = then

    def _announce(self, say: Callable[[str], None]) -> None:
        while True:
            say(self._notes.get())

    def _on_interrupt(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if not self.changing:
            raise KeyboardInterrupt  # nothing was changed yet: stop here
        if self.requested.is_set():
            try:
                os.write(2, f"{name} again: leaving everything as it is\n".encode())
            except OSError:
                pass
            os._exit(INTERRUPTED)
        self.requested.set()
        self._notes.put(f"{name}: {self.then} (interrupt again to leave everything as it is)")

    def _on_hangup(self, signum: int, frame) -> None:
        self.hung_up = True
        self._notes.put("SIGHUP: the terminal went away; carrying on (logs/tmt-ops.log keeps every line)")
