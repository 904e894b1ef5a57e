"""Running a docker CLI (`docker compose`, `docker stack`, `docker service`): to its end, with argument lists, a
time limit and a failure as one line with the CLI's own last words; or its output line by line (logs)."""

from __future__ import annotations

import queue
import subprocess
import threading
from typing import Iterator, Mapping, Sequence

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


def lines(commands: Sequence[Sequence[str]], env: Mapping[str, str], merge_stderr: bool = False) -> Iterator[str]:
    """Run these CLIs at once (`logs --follow` of several services) and yield their output line by line, from
    whichever has one. Closing the generator (the reader went away, Ctrl-C) stops every one; they run in sessions
    of their own, so only the toolkit hears Ctrl-C. Ends when every one has ended; OperationFailed then when one
    failed (its last words)."""
    found: queue.SimpleQueue = queue.SimpleQueue()
    procs = [subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True, errors="replace",
                              start_new_session=True) for argv in commands]

    said: dict[int, str] = {}  # a CLI's stderr, read as it comes (a pipe left unread could fill and block it)

    def copy(proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            found.put(line)
        found.put(None)

    def keep(proc: subprocess.Popen) -> None:
        said[proc.pid] = proc.stderr.read()

    keepers = []
    for proc in procs:
        threading.Thread(target=copy, args=(proc,), daemon=True).start()
        if proc.stderr:
            keepers.append(threading.Thread(target=keep, args=(proc,), daemon=True))
            keepers[-1].start()
    try:
        ended = 0
        while ended < len(procs):
            line = found.get()
            if line is None:
                ended += 1
            else:
                yield line.rstrip("\n")
        failed = [(argv, p) for argv, p in zip(commands, procs) if p.wait() > 0]
        for keeper in keepers:
            keeper.join(5)
        if failed:
            argv, proc = failed[0]
            words = last_line(said.get(proc.pid, ""))
            raise OperationFailed(f"`{' '.join(argv[:3])}` failed (exit {proc.returncode}){': ' + words if words else ''}")
    finally:  # the reader went away, Ctrl-C, or all ended
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
            proc.stdout.close()
