"""system-health.py --serve: the monitor's latest round over HTTP, read-only, for monitors and people.

    GET /health        application/health+json (IETF draft): 200 pass or warn, 503 fail
    GET /metrics       Prometheus text
    GET /livez         200 while this server answers
    GET /readyz        200 when the last round is fresh and not critical, else 503
    GET /api/history   the journal's last operations (tmt-ops history --json), read once per round
    GET /              the status page (static files of its own, polling /api/rounds)

GET and HEAD only; anything else is 405. Every answer is a body rendered once per round (snapshot.py) or a
file of the page read once at start, so a request never probes and costs little more than its bytes. HTTP/1.1
keep-alive, in threads of its own: it answers while the monitor probes or heals. Requests are not logged (a
hundred a second would bury the toolkit log).
"""

from __future__ import annotations

import errno
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from .. import __version__
from ..errors import UsageError
from .snapshot import TEXT, Body, Publisher, readiness

DEFAULT_HOST = "127.0.0.1"
IDLE_SECONDS = 30  # a keep-alive connection with no request for this long is closed
PAGE = {"/": ("index.html", "text/html; charset=utf-8"), "/status.css": ("status.css", "text/css; charset=utf-8"),
        "/status.js": ("status.js", "text/javascript; charset=utf-8")}
HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
           ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                       "base-uri 'none'; form-action 'none'"))
LIVE = Body(200, TEXT, b"live\n")
NOT_FOUND = Body(404, TEXT, b"not found: /health, /metrics, /livez, /readyz, /api/rounds, /api/history or / (the "
                           b"status page)\n")
NOT_ALLOWED = Body(405, TEXT, b"read-only: GET and HEAD only\n")
USAGE = "[HOST:]PORT, e.g. 9464, 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464"


def listen_text(host: str, port: int) -> str:
    """(host, port) as --serve takes it: HOST:PORT, [HOST]:PORT for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(text: str) -> tuple[str, int]:
    """[HOST:]PORT -> (host, port); without a host (`9464`, `:9464`) 127.0.0.1. ValueError says what is wrong."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"'{text}': an IPv6 address goes in brackets ({USAGE})")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"'{text}': the port must be a number from 0 to 65535 ({USAGE})")
    return host or DEFAULT_HOST, int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = IDLE_SECONDS
    wbufsize = -1  # headers and body leave in one write (flushed after each request) ...
    disable_nagle_algorithm = True  # ... and at once
    server: "_Server"

    def do_GET(self) -> None:
        self._send(self.server.answer(self.path.split("?", 1)[0]), body=True)

    def do_HEAD(self) -> None:
        self._send(self.server.answer(self.path.split("?", 1)[0]), body=False)

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # every other method: POST, PUT, DELETE, ... or one made up
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self.close_connection = True  # a request body we do not read must not be taken for the next request
        self._send(NOT_ALLOWED, body=True, extra=(("Allow", "GET, HEAD"), ("Connection", "close")))

    def _send(self, answer: Body, body: bool, extra=()) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.data)))
        for key, value in (*HEADERS, *extra):
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(answer.data)

    def version_string(self) -> str:
        return f"tmt-ops/{__version__}"

    def log_message(self, format: str, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # closing must not wait for idle keep-alive connections

    def __init__(self, address: tuple[str, int], publisher: Publisher, pages: dict[str, Body]) -> None:
        self.publisher, self.pages = publisher, pages
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # TCPServer's own bind, without HTTPServer's getfqdn(): a reverse DNS lookup must not delay the start
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def answer(self, path: str) -> Body:
        snapshot = self.publisher.snapshot  # one reference, swapped whole each round: never half a round
        if path == "/health":
            return snapshot.health
        if path == "/metrics":
            return snapshot.metrics
        if path == "/api/rounds":
            return snapshot.rounds
        if path == "/api/history":
            return snapshot.changes
        if path == "/livez":
            return LIVE
        if path == "/readyz":
            return readiness(snapshot, self.publisher.stale_after, time.monotonic())
        return self.pages.get(path, NOT_FOUND)


class _Server6(_Server):
    address_family = socket.AF_INET6


def _pages() -> dict[str, Body]:
    static = resources.files("tmt_ops.health").joinpath("static")
    return {path: Body(200, kind, static.joinpath(name).read_bytes()) for path, (name, kind) in PAGE.items()}


class StatusServer:
    """Bound at once (a port in use is a UsageError, before any round), serving from its own thread."""

    def __init__(self, host: str, port: int, publisher: Publisher) -> None:
        where = listen_text(host, port)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        except socket.gaierror as exc:
            raise UsageError(f"--serve {where}: unknown host ({exc.strerror})") from None
        try:
            self._server = (_Server6 if family == socket.AF_INET6 else _Server)((host, port), publisher, _pages())
        except OSError as exc:
            hint = {errno.EADDRINUSE: ": another process listens there; stop it or choose another port",
                    errno.EACCES: ": ports below 1024 need root; choose another port",
                    errno.EADDRNOTAVAIL: ": no interface of this host has that address"}.get(exc.errno, "")
            raise UsageError(f"--serve {where}: cannot listen there ({exc.strerror}){hint}") from None
        bound_host, self.port = self._server.server_address[:2]
        self.url = f"http://{listen_text(bound_host, self.port)}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="serve", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
