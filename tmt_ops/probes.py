"""Health probes that need no client library, run concurrently under one overall deadline.

A leaf module: it knows sockets and wire formats, and nothing of lifecycle or rendering. HTTP uses
http.client rather than requests: it honours no proxy variables (a probe of 127.0.0.1 must never go
through HTTP_PROXY) and costs a fifth of the import time, which matters for a health check run by cron.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterable

from .registry import Service
from .states import Health

MAX_BODY = 64 * 1024
HEALTHY_WORDS = {"healthy", "ok", "running", "pass", "up", "ready"}
DEGRADED_WORDS = {"degraded", "warning", "warn"}
STARTING_WORDS = {"starting", "initializing", "initialising", "loading"}
KAFKA_API_VERSIONS_V0 = bytes.fromhex("0000000c001200000000000100026863")
PG_SSL_REQUEST = bytes.fromhex("0000000804d2162f")
PG_CANNOT_CONNECT_NOW = "57P03"  # starting up, shutting down, in recovery
# 57P03 messages of a server on its way up ("starting up", "not yet accepting connections" before a
# consistent recovery state, "in recovery mode"); "shutting down" and a disabled hot standby are not.
PG_STARTING_PHRASES = ("starting up", "not yet accepting", "recovery mode")
PG_ALIVE_SQLSTATES = {"28000", "28P01", "3D000"}  # auth / unknown role or database: the server answers


@dataclass(frozen=True)
class ProbeResult:
    status: Health
    url: str
    response_time_ms: float | None = None
    details: Any = None  # the parsed health body, or what the protocol said
    error: str | None = None
    http_status: int | None = None
    port_open: bool | None = None  # did the port accept a connection (None: not known)


class _Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.connected = False  # set once the TCP connection is up: tells "port open" on a later timeout

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left


def classify_http(code: int, body: Any, expect: tuple[int, ...] = (200,)) -> tuple[Health, str | None]:
    """Health from an HTTP answer: the status code first, then the body's own words."""
    words = []
    if isinstance(body, dict):
        words = [str(body[k]).lower() for k in ("status", "system_health") if isinstance(body.get(k), str)]
    if code not in expect:
        if code == 503 and not any(w not in STARTING_WORDS for w in words):
            return Health.STARTING, f"HTTP 503: not ready yet"
        return Health.UNHEALTHY, f"HTTP {code}, expected {'/'.join(map(str, expect))}"
    verdicts = []
    for word in words:
        if word in HEALTHY_WORDS:
            verdicts.append(Health.HEALTHY)
        elif word in DEGRADED_WORDS:
            verdicts.append(Health.DEGRADED)
        elif word in STARTING_WORDS:
            verdicts.append(Health.STARTING)
        else:
            verdicts.append(Health.UNHEALTHY)
    order = [Health.HEALTHY, Health.DEGRADED, Health.STARTING, Health.UNHEALTHY]
    worst = max(verdicts, key=order.index, default=Health.HEALTHY)
    return worst, None if worst is Health.HEALTHY else f"reports {'/'.join(words)}"


def http_request(host: str, port: int, method: str, path: str, timeout: float,
                 body: bytes | None = None) -> tuple[int, Any]:
    """One HTTP request under an overall timeout; returns (status, parsed JSON or text)."""
    return _http_exchange(host, port, method, path, _Deadline(timeout), body)


def _http_exchange(host: str, port: int, method: str, path: str, deadline: _Deadline,
                   body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=deadline.left())
    try:
        conn.connect()
        deadline.connected = True
        sock = conn.sock  # getresponse() drops conn.sock when the server closes after the answer (HTTP/1.0)
        conn.request(method, path, body=body, headers={"User-Agent": "tmt-ops", "Accept": "application/json"})
        sock.settimeout(deadline.left())
        response = conn.getresponse()
        chunks, size = [], 0
        while size < MAX_BODY:
            sock.settimeout(deadline.left())
            chunk = response.read1(MAX_BODY - size) if hasattr(response, "read1") else response.read(MAX_BODY)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        text = b"".join(chunks).decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text.strip()[:200]
        return response.status, parsed
    finally:
        conn.close()


def _probe_http(service: Service, deadline: _Deadline) -> ProbeResult:
    code, body = _http_exchange(service.host, service.port, "GET", service.probe.path or "/", deadline)
    status, error = classify_http(code, body, service.probe.expect_status)
    return ProbeResult(status, service.url, details=body, error=error, http_status=code)


def _connect(service: Service, deadline: _Deadline) -> socket.socket:
    sock = socket.create_connection((service.host, service.port), timeout=deadline.left())
    deadline.connected = True
    sock.settimeout(deadline.left())
    return sock


def _recv_exact(sock: socket.socket, n: int, deadline: _Deadline) -> bytes:
    data = b""
    while len(data) < n:
        sock.settimeout(deadline.left())
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def _probe_tcp(service: Service, deadline: _Deadline) -> ProbeResult:
    _connect(service, deadline).close()
    return ProbeResult(Health.HEALTHY, service.url, details="port accepts connections")


def _probe_redis(service: Service, deadline: _Deadline) -> ProbeResult:
    with _connect(service, deadline) as sock:
        sock.sendall(b"PING\r\n")
        line = b""
        while not line.endswith(b"\r\n") and len(line) < 512:
            line += _recv_exact(sock, 1, deadline)
    reply = line.decode("utf-8", "replace").strip()
    if reply == "+PONG":
        return ProbeResult(Health.HEALTHY, service.url, details="PONG")
    if reply.startswith("-LOADING"):
        return ProbeResult(Health.STARTING, service.url, details=reply, error="loading its data set into memory")
    if reply.startswith("-NOAUTH"):
        return ProbeResult(Health.HEALTHY, service.url, details="answers; requires authentication")
    return ProbeResult(Health.UNHEALTHY, service.url, details=reply, error=f"unexpected reply to PING: {reply!r}")


def _pg_error_fields(payload: bytes) -> dict[str, str]:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def _probe_postgres(service: Service, deadline: _Deadline) -> ProbeResult:
    """SSLRequest proves the postmaster answers; after 'N' a startup packet tells ready from starting."""
    with _connect(service, deadline) as sock:
        sock.sendall(PG_SSL_REQUEST)
        answer = _recv_exact(sock, 1, deadline)
        if answer == b"S":
            return ProbeResult(Health.HEALTHY, service.url, details="answers (TLS offered; readiness not read)")
        if answer != b"N":
            return ProbeResult(Health.UNHEALTHY, service.url, error=f"not a PostgreSQL answer: {answer!r}")
        params = b"user\0postgres\0database\0postgres\0application_name\0tmt-ops-probe\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        kind = _recv_exact(sock, 1, deadline)
        (length,) = struct.unpack("!i", _recv_exact(sock, 4, deadline))
        payload = _recv_exact(sock, min(length - 4, 4096), deadline) if length > 4 else b""
    if kind == b"R":
        return ProbeResult(Health.HEALTHY, service.url, details="accepting connections")
    if kind == b"E":
        fields = _pg_error_fields(payload)
        message = fields.get("M", "error")
        if fields.get("C") == PG_CANNOT_CONNECT_NOW:
            state = Health.STARTING if any(w in message for w in PG_STARTING_PHRASES) else Health.UNHEALTHY
            return ProbeResult(state, service.url, details=message, error=message)
        if fields.get("C") in PG_ALIVE_SQLSTATES:
            return ProbeResult(Health.HEALTHY, service.url, details=f"accepting connections ({message})")
        return ProbeResult(Health.UNHEALTHY, service.url, details=message, error=message)
    return ProbeResult(Health.UNHEALTHY, service.url, error=f"unexpected startup answer {kind!r}")


def _probe_kafka(service: Service, deadline: _Deadline) -> ProbeResult:
    with _connect(service, deadline) as sock:
        sock.sendall(KAFKA_API_VERSIONS_V0)
        (length,) = struct.unpack("!i", _recv_exact(sock, 4, deadline))
        if length < 4:
            return ProbeResult(Health.UNHEALTHY, service.url, error=f"malformed ApiVersions reply (length {length})")
        (correlation,) = struct.unpack("!i", _recv_exact(sock, 4, deadline))
    if correlation != 1:
        return ProbeResult(Health.UNHEALTHY, service.url, error=f"ApiVersions reply with correlation id {correlation}")
    return ProbeResult(Health.HEALTHY, service.url, details="broker answers ApiVersions")


_PROBES = {"http": _probe_http, "tcp": _probe_tcp, "redis": _probe_redis, "postgres": _probe_postgres,
           "kafka": _probe_kafka}


def probe(service: Service, timeout: float | None = None) -> ProbeResult:
    """Run the service's probe; never raises for what the network does."""
    seconds = service.probe.timeout if timeout is None else min(timeout, service.probe.timeout)
    deadline = _Deadline(seconds)
    started = time.perf_counter()
    try:
        result = _PROBES[service.probe.kind](service, deadline)
    except (socket.timeout, TimeoutError):
        result = ProbeResult(Health.TIMEOUT, service.url, error=f"no answer within {seconds:g}s")
    except ConnectionRefusedError:
        result = ProbeResult(Health.UNHEALTHY, service.url, error=f"connection refused on {service.address}")
    except (OSError, http.client.HTTPException, ValueError, struct.error) as exc:
        result = ProbeResult(Health.UNHEALTHY, service.url, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return replace(result, response_time_ms=elapsed, port_open=deadline.connected)


DEADLINE_GRACE = 0.05  # lets a probe report its own timeout (with what it knows) before the round gives up on it


def probe_all(services: Iterable[Service], deadline: float) -> dict[str, ProbeResult]:
    """Every service's probe at once; whatever has not answered by `deadline` seconds is a timeout.

    Each probe gets its own timeout, cut to what is left of the deadline. Daemon threads, so a probe stuck
    past the deadline never holds up the caller or interpreter exit.
    """
    services = list(services)
    results: dict[str, ProbeResult] = {}
    end = time.monotonic() + deadline

    def run(service: Service) -> None:
        results[service.name] = probe(service, max(0.0, end - time.monotonic()))

    threads = [threading.Thread(target=run, args=(s,), name=f"probe-{s.name}", daemon=True) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, end + DEADLINE_GRACE - time.monotonic()))
    return {s.name: results.get(s.name) or ProbeResult(
        Health.TIMEOUT, s.url, round(deadline * 1000, 1),
        error=f"no answer within the overall deadline of {deadline:g}s") for s in services}
