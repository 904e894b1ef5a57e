"""tmt_ops/http10.py against scripted servers on real sockets: what a health endpoint may answer (whole, by
length, until it closes, in chunks, cut short, not HTTP at all, without end) and what the request says."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tmt_ops import http10
from tmt_ops.probes import probe
from tmt_ops.states import Health
from test_probes import make_service


class Scripted:
    """Accepts connections on a free port; to each, once its request head is in, sends `parts` (bytes, or a float:
    seconds to wait), then closes unless `hold`. `requests`: the request heads (and bodies) it got."""

    def __init__(self, *parts: bytes | float, hold: bool = False) -> None:
        self.parts, self.hold, self.requests = parts, hold, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                self.requests.append(data)
                for part in self.parts:
                    if isinstance(part, float):
                        time.sleep(part)
                    else:
                        try:
                            conn.sendall(part)
                        except OSError:
                            break
                if self.hold:
                    self.done.wait(10)

    def ask(self, method: str = "GET", body: bytes | None = None, limit: int | None = None,
            timeout: float = 5) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            return http10.exchange(sock, method, "/health", f"127.0.0.1:{self.port}", body=body, limit=limit)

    def close(self) -> None:
        self.done.set()
        self.listener.close()


@pytest.fixture
def scripted():
    made = []

    def make(*parts, hold=False):
        made.append(Scripted(*parts, hold=hold))
        return made[-1]
    yield make
    for server in made:
        server.close()


def test_the_request_is_http_1_0_with_its_host_and_closes(scripted):
    server = scripted(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    assert server.ask("POST", b"") == (204, b"")
    head = server.requests[0].decode()
    assert head.startswith("POST /health HTTP/1.0\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in head and "Connection: close\r\n" in head
    assert "Content-Length: 0\r\n" in head


def test_an_answer_by_length_ends_at_its_length_though_the_server_keeps_the_connection(scripted):
    server = scripted(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 20\r\n\r\n'
                      b'{"status": "healthy"}', hold=True)
    started = time.monotonic()
    assert server.ask(timeout=3) == (200, b'{"status": "healthy"}'[:20])
    assert time.monotonic() - started < 1


def test_an_answer_without_length_is_read_until_the_server_closes(scripted):
    server = scripted(b"HTTP/1.0 503 Service Unavailable\r\n\r\n", b'{"detail": ', 0.05, b'"starting"}')
    assert server.ask() == (503, b'{"detail": "starting"}')


def test_a_chunked_answer_is_understood(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"9\r\n{\"status\"\r\n",
                      0.05, b"c;ext=1\r\n: \"healthy\"}\r\n0\r\n\r\n", hold=True)
    assert server.ask(timeout=3) == (200, b'{"status": "healthy"}')


def test_a_body_past_the_limit_is_cut_at_it_without_reading_on(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\n\r\n", b"x" * 100_000, hold=True)
    status, body = server.ask(limit=1000, timeout=3)
    assert status == 200 and body == b"x" * 1000


@pytest.mark.parametrize("parts, error", [
    ((b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\"",), "cut short: 9 of 100 bytes"),
    ((b"SSH-2.0-OpenSSH_9.2\r\n\r\n",), "not an HTTP answer"),
    ((), "closed the connection without an answer"),
    ((b"HTTP/1.1 200 OK\r\nServer: x",), "cut short in its head"),
    ((b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n",), "Content-Length is not a number"),
    ((b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000,), "head is longer than 64 KiB"),
])
def test_what_is_not_a_whole_http_answer_is_a_bad_answer_and_an_unhealthy_probe(scripted, parts, error):
    server = scripted(*parts)
    with pytest.raises(http10.BadAnswer, match=error):
        server.ask()
    result = probe(make_service("svc", "http", server.port, path="/health"))
    assert result.status is Health.UNHEALTHY and error in result.error and result.port_open is True


def test_an_answer_that_trickles_past_the_deadline_is_a_timeout(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\n", *[0.1, b"X: y\r\n"] * 30)
    started = time.monotonic()
    result = probe(make_service("svc", "http", server.port, path="/health", timeout=0.5))
    assert result.status is Health.TIMEOUT and time.monotonic() - started < 1.2
