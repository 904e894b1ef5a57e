"""HTTP/1.0 on a plain socket: the toolkit's own short exchanges (health probes, hooks, the local Docker engine).

One request per connection. HTTP/1.0 keeps the answer simple: the server sends it whole and closes (a server
that sends chunks all the same is understood). Not http.client: importing it costs about 13 ms, on the critical
path of every restart (its first probe), and it parses each answer's head with the email package, about 1.5 ms
of CPU an answer, which a start of 100 services pays some 600 times while they boot.
"""

from __future__ import annotations

import re
import socket
from typing import Callable, Iterable

HEAD_LIMIT = 64 * 1024  # bytes of status line and headers
_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})(?: |\r|$)")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})(?:;[^\r]*)?\r\n")


class BadAnswer(ValueError):
    """What answered is not HTTP/1.x, or its answer was cut short."""


def exchange(sock: socket.socket, method: str, path: str, host: str, *, body: bytes | None = None,
             headers: Iterable[str] = (), limit: int | None = None,
             left: Callable[[], float | None] = lambda: None) -> tuple[int, bytes]:
    """(status, body: its first `limit` bytes) of one request on a connected socket. `left()`: the seconds the
    exchange may still take (None: the socket's timeout as it is), asked before every send and receive; it
    raises socket.timeout when none is left."""
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}", *headers, "Connection: close"]
    if body is not None or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body or b'')}")
    _timed(sock, left).sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
    data = b""
    while (end := data.find(b"\r\n\r\n")) < 0:
        if len(data) > HEAD_LIMIT:
            raise BadAnswer(f"its answer's head is longer than {HEAD_LIMIT >> 10} KiB")
        chunk = _timed(sock, left).recv(65536)
        if not chunk:
            raise BadAnswer("it closed the connection without an answer" if not data else
                            "its answer was cut short in its head")
        data += chunk
    head, rest = data[:end], data[end + 4:]
    status = _STATUS.match(head)
    if not status:
        raise BadAnswer(f"not an HTTP answer: {head[:60]!r}")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    chunked = fields.get(b"transfer-encoding", b"").lower() == b"chunked"
    length = None if chunked else _length(fields.get(b"content-length"))
    enough = None if limit is None else limit + (HEAD_LIMIT if chunked else 0)  # chunked: its framing beside
    while not (_chunks(rest)[1] if chunked else length is not None and len(rest) >= length):
        if enough is not None and len(rest) >= enough:
            break
        chunk = _timed(sock, left).recv(65536)
        if not chunk:
            if length is not None:
                raise BadAnswer(f"its answer was cut short: {len(rest)} of {length} bytes")
            break
        rest += chunk
    content = _chunks(rest)[0] if chunked else rest[:length]
    return int(status.group(1)), content if limit is None else content[:limit]


def _timed(sock: socket.socket, left: Callable[[], float | None]) -> socket.socket:
    seconds = left()
    if seconds is not None:
        sock.settimeout(seconds)
    return sock


def _length(value: bytes | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise BadAnswer(f"its Content-Length is not a number: {value[:20]!r}")
    return int(value)


def _chunks(data: bytes) -> tuple[bytes, bool]:
    """(the content of chunked data so far, whether its last, empty, chunk is in)."""
    out, at = [], 0
    while size := _CHUNK_SIZE.match(data, at):
        n, start = int(size.group(1), 16), size.end()
        if n == 0:
            return b"".join(out), True
        out.append(data[start:start + n])
        at = start + n + 2
    return b"".join(out), False
