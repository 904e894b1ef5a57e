"""The one place that decides colour, streams and the toolkit log; the library itself never prints.

Printer writes human lines (coloured on a terminal unless NO_COLOR is set) to stderr or stdout and copies
them, uncoloured, to logs/tmt-ops.log. Everything it writes passes through the Redactor.

A stream that fails (a closed pipe as in `restart ... | head -3`, a terminal that hung up) is dropped, never
raised: the operation carries on and the toolkit log keeps every line. The failed file descriptor is
pointed at /dev/null, so no later write, not even the interpreter's last flush at exit, can fail on it.

The toolkit log is private (0600, its rotated files too, in a log directory made 0700 when the toolkit makes
it) and only ever a regular file of its own (files.open_append): a FIFO, device, directory or symlink at its
path, or a log that stops being writable half-way (a full disk), is one warning line, and the operation goes
on without the log.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import IO, Sequence

from .redact import Redactor

LOGGER = logging.getLogger("tmt_ops")
# Without an opened toolkit log, warnings must not fall through to logging.lastResort (a second copy on stderr).
LOGGER.addHandler(logging.NullHandler())
STYLES = {"ok": "GREEN", "warn": "YELLOW", "error": "RED", "info": "CYAN", "dim": "WHITE", "bold": ""}
QUIET, NORMAL, VERBOSE = 0, 1, 2  # --quiet: problems and the closing line only; --verbose: details too


def wants_colour(stream: IO) -> bool:
    try:
        return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()
    except ValueError:  # closed
        return False


def silence(stream: IO) -> None:
    """Point a failed stream's descriptor at /dev/null: what is still buffered, and every later write, goes
    nowhere instead of failing again (Python's final flush at exit would otherwise print an error)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # no descriptor (a StringIO), or closed
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def write_out(stream: IO | None, text: str) -> bool:
    """Write and flush; False (and the stream silenced) when its reader has gone, or there is no stream at all
    (a script started with its stdout closed, `>&-`: Python's sys.stdout is then None)."""
    if stream is None:
        return False
    try:
        stream.write(text)
        stream.flush()
        return True
    except (OSError, ValueError):  # EPIPE, EIO after a hang-up, a closed file
        silence(stream)
        return False


STDERR = object()  # Printer's default stream: sys.stderr as it is when the printer is made


class Printer:
    def __init__(self, stream: IO | None | object = STDERR, redactor: Redactor | None = None,
                 colour: bool | None = None):
        # None: no stream (started with it closed); the toolkit log still gets every line
        self.stream: IO | None = sys.stderr if stream is STDERR else stream
        self.redact = redactor or Redactor.from_environment()
        self.colour = wants_colour(self.stream) if colour is None else colour
        self.verbosity = NORMAL
        self.waits = Waits(self)
        if self.colour:
            import colorama
            colorama.just_fix_windows_console()
            self._fore, self._style = colorama.Fore, colorama.Style

    def paint(self, text: str, style: str | None) -> str:
        if not self.colour or not style:
            return text
        code = getattr(self._fore, STYLES[style]) if STYLES[style] else ""
        return f"{code}{self._style.BRIGHT if style in ('bold', 'error') else ''}{text}{self._style.RESET_ALL}"

    def line(self, text: str = "", style: str | None = None, level: int = logging.INFO, shown: int = NORMAL) -> None:
        """One line: to the toolkit log always; to the stream when the verbosity asks for it (warnings and
        errors even with --quiet)."""
        text = self.redact(text)
        LOGGER.log(level, text)
        if level >= logging.WARNING:
            shown = QUIET
        # One write per line: lines printed from several threads (a wave in parallel) never interleave; a live
        # block of waits (a terminal's) is taken away first and drawn again under the line.
        if self.stream is not None and self.verbosity >= shown:
            self.write(self.paint(text, style) + "\n")

    def write(self, text: str) -> None:
        with self.waits.lock:
            if self.stream is not None and not write_out(self.stream, self.waits.around(text)):
                self.stream = None  # its reader has gone; the toolkit log carries on

    def waiting(self, service: str, activity: str, limit: float) -> None:
        """A service's wait begins (its start, its stop), bounded by `limit` seconds: shown as it goes (Waits)."""
        self.waits.begin(service, activity, limit)

    def settled(self, service: str) -> None:
        self.waits.end(service)

    def ok(self, text: str) -> None:
        self.line(text, "ok")

    def info(self, text: str) -> None:
        self.line(text, "info")

    def warn(self, text: str) -> None:
        self.line(text, "warn", logging.WARNING)

    def error(self, text: str) -> None:
        self.line(text, "error", logging.ERROR)

    def closing(self, text: str, kind: str) -> None:
        """A script's closing line, how it ended ("4 service(s) running and healthy", "error: ..."): shown at every
        verbosity, --quiet too, so a quiet run (cron, a pipeline) still says how it ended. kind: ok, warn or error
        (its colour, and its level in the toolkit log)."""
        self.line(text, kind, {"ok": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}[kind], shown=QUIET)

    def detail(self, text: str) -> None:
        """Shown with --verbose only (the log keeps it anyway)."""
        self.line(text, "dim", shown=VERBOSE)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()) -> None:
        """Aligned columns; styles[i] colours row i (padding is computed on the plain text)."""
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        self.line(fmt.format(*header).rstrip(), "bold")
        for i, row in enumerate(rows):
            self.line(fmt.format(*map(str, row)).rstrip(), styles[i] if i < len(styles) else None)


LIVE_EVERY = 0.2  # seconds between redraws of a terminal's live block
SAID_EVERY = 10.0  # seconds between "still waiting" lines (a pipe, a log)


class Waits:
    """What the run waits for now (a service starting, one stopping), shown as it goes, as compose shows its
    containers: on a terminal, a live line per service with its elapsed time and its limit, under everything else
    printed and gone when it is done; in a pipe, and always in the toolkit log, a plain "still waiting for X
    (starting): 10 s of 60" line every SAID_EVERY seconds at most. A small thread draws; nothing else waits for it."""

    def __init__(self, printer: "Printer") -> None:
        self.printer = printer
        self.lock = threading.RLock()
        self.waits: dict[str, list] = {}  # service -> [activity, began, limit, said]
        self.drawn = 0  # lines of the live block on the terminal now
        self.ticker: threading.Thread | None = None

    @property
    def live(self) -> bool:
        stream = self.printer.stream
        return stream is not None and self.printer.verbosity >= NORMAL and _is_terminal(stream)

    def begin(self, service: str, activity: str, limit: float) -> None:
        with self.lock:
            self.waits[service] = [activity, time.monotonic(), limit, 0]
            if self.ticker is None or not self.ticker.is_alive():
                self.ticker = threading.Thread(target=self._tick, name="waits", daemon=True)
                self.ticker.start()
        self._draw()

    def end(self, service: str) -> None:
        with self.lock:
            if self.waits.pop(service, None) is not None:
                self._draw()

    def around(self, text: str) -> str:
        """`text` written where the live block is, and the block drawn again under it (the lock is held)."""
        return self._erase() + text + self._block()

    def _erase(self) -> str:
        erased, self.drawn = (f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""), 0
        return erased

    def _block(self) -> str:
        if not self.live or not self.waits:
            return ""
        now = time.monotonic()
        lines = [f"  {name}: {activity} {now - began:.1f} s of {limit:g} s"
                 for name, (activity, began, limit, _) in self.waits.items()]
        self.drawn = len(lines)
        return "".join(self.printer.paint(line, "dim") + "\n" for line in lines)

    def _draw(self) -> None:
        with self.lock:
            if self.live and self.printer.stream is not None and (self.drawn or self.waits):
                if not write_out(self.printer.stream, self._erase() + self._block()):
                    self.printer.stream = None

    def _tick(self) -> None:
        while True:
            time.sleep(LIVE_EVERY)
            with self.lock:
                if not self.waits:
                    self._draw()
                    return
                now, said = time.monotonic(), []
                for name, wait in self.waits.items():
                    activity, began, limit, last = wait
                    if now - began >= last + SAID_EVERY:
                        wait[3] = (now - began) // SAID_EVERY * SAID_EVERY
                        said.append(f"still waiting for {name} ({activity}): {wait[3]:.0f} s of {limit:g}")
            for text in said:  # a plain line: in the log always, on a terminal the live line says it already
                LOGGER.info(text)
                if not self.live and self.printer.stream is not None and self.printer.verbosity >= NORMAL:
                    self.printer.write(text + "\n")
            self._draw()


def _is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
