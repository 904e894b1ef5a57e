"""A local webhook receiver for the tests: a real HTTP server on a free port, in a thread, recording every request
it gets (Slack's incoming webhooks, a generic JSON webhook, Alertmanager's webhook receiver). It can also hang
(read the request and never answer) or answer with an error status."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, mode: str = "ok", status: int = 200):
        """mode "ok": answers `status` (200: Slack's "ok"); "hang": reads the request, then says nothing until
        closed."""
        self.mode, self.status = mode, status
        self.requests: list[dict] = []
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "json": data, "at": time.monotonic()})
                if receiver.mode == "hang":
                    receiver._release.wait(60)
                    return
                answer = b"ok" if receiver.status < 300 else b"no_service"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def messages(self, path: str | None = None) -> list[dict]:
        """The JSON bodies received (at `path` only, if given)."""
        return [r["json"] for r in list(self.requests) if path is None or r["path"] == path]

    def wait(self, predicate, timeout: float = 10.0, path: str | None = None) -> dict | None:
        """The first JSON body (at `path`) for which predicate holds, waiting up to `timeout`."""
        end = time.monotonic() + timeout
        while True:
            for message in self.messages(path):
                if message is not None and predicate(message):
                    return message
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
