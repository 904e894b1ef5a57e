"""Running a docker CLI (`docker compose`, `docker stack`, `docker service`): to its end, with argument lists, a
time limit and a failure as one line with the CLI's own last words; or streaming its output (logs)."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Callable, Mapping, Sequence, TextIO

from ..console import write_out
from ..errors import OperationFailed


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float, *, limit: str, shown: Sequence[str] = (),
        stdin: str | None = None) -> subprocess.CompletedProcess:
    """Output captured; `stdin` is written to it (a stack file: its secrets never reach an argument list or a
    file). `limit` names the setting behind `timeout`, for the message when it runs out; `shown`, the words
    of the command a message names (default: all of them).

    The CLI runs in a session of its own: a terminal's hang-up or Ctrl-C reaches only the toolkit, which
    decides (interrupts.py) whether the call in flight finishes."""
    shown = list(shown or argv)
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    try:
        done = subprocess.run(list(argv), env=dict(env), text=True, timeout=timeout, capture_output=True,
                              start_new_session=True, **feed)
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"`{' '.join(shown[:3])}` did not finish within {timeout:g}s ({limit})") from None
    except FileNotFoundError:
        raise OperationFailed(f"`{argv[0]}` is not installed (not on PATH): install the Docker CLI") from None
    if done.returncode != 0:
        raise OperationFailed(f"`{' '.join(shown)}` failed (exit {done.returncode})"
                              f"{': ' + last_line(done.stderr) if done.stderr.strip() else ''}")
    return done


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def stream(commands: Sequence[Sequence[str]], env: Mapping[str, str], redact: Callable[[str], str],
           out: TextIO | None = None, merge_stderr: bool = False) -> int:
    """Run these CLIs at once (`logs --follow` of several services) and copy their output to `out` line by
    line, redacted, one line at a time from whichever has one. When the reader goes away (`| head`) every one
    is stopped, quietly; on Ctrl-C too (they run in sessions of their own: only the toolkit hears it).
    0 when every one ended well, else 1."""
    out = out or sys.stdout
    gone = threading.Event()
    lock = threading.Lock()
    procs = [subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge_stderr else None, text=True, errors="replace",
                              start_new_session=True) for argv in commands]

    def copy(proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            with lock:
                if gone.is_set() or not write_out(out, redact(line)):
                    gone.set()
                    break

    readers = [threading.Thread(target=copy, args=(p,), daemon=True) for p in procs]
    try:
        for reader in readers:
            reader.start()
        while any(r.is_alive() for r in readers) and not gone.is_set():
            for reader in readers:
                reader.join(0.1)
    finally:  # the reader went away, Ctrl-C, or all ended
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        codes = [proc.wait() for proc in procs]
        for proc in procs:
            proc.stdout.close()
    return 1 if any(code > 0 for code in codes) else 0
