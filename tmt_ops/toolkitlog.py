"""The toolkit log's file handler: logging's rotation by size, opening and rotating by the rules of files.py
(a regular file of its own, 0600, never a FIFO, device, directory or symlink at its path, nor at a rotated
one's). Its own module: logging.handlers costs a status command more than the rest of its imports."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import IO

from . import files
from .console import LOGGER, write_out
from .redact import Redactor


class ToolkitLog(logging.handlers.RotatingFileHandler):
    """logging's rotation by size, opening and rotating by the rules of files.py. A failure while logging says
    so once and takes the handler away (logging's own handleError prints a traceback for every line)."""

    tmt_toolkit_log = True

    def __init__(self, path: Path, max_bytes: int, backups: int):
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        for n in range(1, backups + 1):  # an older version's rotated files were 0644
            files.make_private(f"{self.baseFilename}.{n}")

    def _open(self) -> IO[str]:
        return io.TextIOWrapper(files.open_append(self.baseFilename), encoding="utf-8", errors="backslashreplace")

    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None
        files.rotate(self.baseFilename, self.backupCount)
        self.stream = self._open()

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        LOGGER.removeHandler(self)
        write_out(sys.stderr, f"warning: the toolkit log stops here ({exc}); the operation goes on without it\n")
        try:
            self.close()
        except (OSError, ValueError):
            pass


class _RedactFilter(logging.Filter):
    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redactor(record.getMessage()), None
        return True


def open_toolkit_log(log_dir: Path, redactor: Redactor, max_bytes: int, backups: int) -> None:
    """Append the toolkit's own lines to log_dir/tmt-ops.log, rotated by size, from here on. Idempotent for one
    log; one toolkit log per process: a handler for another directory's log is closed first."""
    path = os.path.abspath(log_dir / "tmt-ops.log")
    for handler in [h for h in LOGGER.handlers if getattr(h, "tmt_toolkit_log", False)]:
        if handler.baseFilename == path:
            return
        LOGGER.removeHandler(handler)
        handler.close()
    try:
        files.ensure_dir(log_dir, files.PRIVATE_DIR)
        handler = ToolkitLog(log_dir / "tmt-ops.log", max_bytes, backups)
    except files.FileProblem as exc:  # a read-only log dir, a FIFO at the log's path: it must not stop a stop
        write_out(sys.stderr, f"warning: the toolkit log is not kept ({exc}); the operation goes on without it\n")
        return
    handler.addFilter(_RedactFilter(redactor))
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
