"""A running `system-health.py --monitor` (or --serve) process for tests: its output read as it comes (so it
never blocks on a full pipe), its HTTP answers when it serves, and a clean end."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from support import REPO

SERVING = re.compile(r"serving (http://\S+/) ")


class Monitor:
    def __init__(self, cfg: Path, *args: str, env: dict | None = None, serve: str | None = "127.0.0.1:0",
                 follow_stdout: bool = True, mode: str = "native"):
        """follow_stdout False: stdout's first line (text mode: the serving line) is read, the rest is left to the
        test (which may close it, as `| head -1` does)."""
        argv = [sys.executable, str(REPO / "system-health.py"), "--config", str(cfg), "--mode", mode, *args]
        if serve is not None:
            argv += ["--serve", serve]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                     stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1", **(env or {})})
        self.out: list[str] = [] if follow_stdout else [self.proc.stdout.readline().rstrip("\n")]
        self.err: list[str] = []
        followed = ((self.proc.stdout, self.out), (self.proc.stderr, self.err))[0 if follow_stdout else 1:]
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in followed]
        for reader in self._readers:
            reader.start()
        self.url = None
        if serve is not None:
            found = self.wait_line(lambda line: SERVING.search(line), timeout=20, streams=("out", "err"))
            assert found, f"no serving line: {self.text()}"
            self.url = SERVING.search(found).group(1)
            self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.out) + "\n--- stderr ---\n" + "\n".join(self.err)

    def wait_line(self, predicate, timeout: float = 30, streams=("out",)) -> str | None:
        """The first line (of stdout, or of the streams named) for which predicate(line) is true."""
        end = time.monotonic() + timeout
        while True:
            ended = not any(r.is_alive() for r in self._readers)  # before the scan: it then sees every line
            for line in [line for name in streams for line in list(getattr(self, name))]:
                if predicate(line):
                    return line
            if ended or time.monotonic() > end:
                return None
            time.sleep(0.05)

    def events(self) -> list[dict]:
        """The JSON lines of stdout (with --json)."""
        return [json.loads(line) for line in list(self.out) if line.startswith("{")]

    def wait_event(self, predicate, timeout: float = 30) -> dict | None:
        line = self.wait_line(lambda l: l.startswith("{") and predicate(json.loads(l)), timeout)
        return json.loads(line) if line else None

    # -- HTTP ------------------------------------------------------------------------------------------------
    def request(self, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body)
            answer = conn.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            conn.close()

    def get_json(self, path: str) -> dict:
        status, _, body = self.request(path)
        return json.loads(body)

    def wait_http(self, path: str, predicate, timeout: float = 30):
        """The first answer (status, headers, body) to GET path for which predicate(status, body) holds."""
        end = time.monotonic() + timeout
        while True:
            status, headers, body = self.request(path)
            if predicate(status, body):
                return status, headers, body
            if time.monotonic() > end:
                raise AssertionError(f"{path} never satisfied the test; last {status}: {body[:500]!r}\n{self.text()}")
            time.sleep(0.1)

    # -- the end -----------------------------------------------------------------------------------------------
    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.kill()
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
