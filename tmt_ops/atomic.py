"""Write a file so that a reader (a later stop, cron mail, node_exporter) sees the old content or the new,
never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OperationFailed


def write_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> None:
    """Temp file in the same directory (same file system), fsync, then rename over the target."""
    target = Path(path)
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OperationFailed(f"cannot write {target}: {exc.strerror or exc} (does {target.parent} exist?)") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)  # mkstemp makes 0600; collectors often run as another user
        os.replace(temp, target)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, (OSError, ValueError)):  # ValueError: text the encoding cannot carry
            raise OperationFailed(f"cannot write {target}: {getattr(exc, 'strerror', None) or exc}") from None
        raise
