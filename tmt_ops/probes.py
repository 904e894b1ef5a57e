"""Health probes that need no client library, run concurrently under one overall deadline.

A leaf module: it knows sockets and wire formats, and nothing of lifecycle or rendering. HTTP is one HTTP/1.0
exchange on a plain socket (http10.py), not requests: it honours no proxy variables (a probe of 127.0.0.1 must
never go through HTTP_PROXY) and costs nothing to import, which matters for a health check run by cron.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Any, Iterable

from . import http10
from .data import dataclass, replace
from .registry import Service
from .states import Health

MAX_BODY = 64 * 1024
HEALTHY_WORDS = {"healthy", "ok", "running", "pass", "up", "ready"}
DEGRADED_WORDS = {"degraded", "warning", "warn"}
STARTING_WORDS = {"starting", "initializing", "initialising", "loading"}
WORD_HEALTH = {**dict.fromkeys(HEALTHY_WORDS, Health.HEALTHY), **dict.fromkeys(DEGRADED_WORDS, Health.DEGRADED),
               **dict.fromkeys(STARTING_WORDS, Health.STARTING)}
SEVERITY = (Health.HEALTHY, Health.DEGRADED, Health.STARTING, Health.UNHEALTHY)
JSON_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
KAFKA_API_VERSIONS_V0 = bytes.fromhex("0000000c001200000000000100026863")
PG_SSL_REQUEST = bytes.fromhex("0000000804d2162f")
PG_CANNOT_CONNECT_NOW = "57P03"  # starting up, shutting down, in recovery
# 57P03 messages of a server on its way up ("starting up", "not yet accepting connections" before a
# consistent recovery state, "in recovery mode"); "shutting down" and a disabled hot standby are not.
PG_STARTING_PHRASES = ("starting up", "not yet accepting", "recovery mode")
PG_ALIVE_SQLSTATES = {"28000", "28P01", "3D000"}  # auth / unknown role or database: the server answers
PG_AUTH_OK = bytes(4)  # an Authentication message with code 0; any other code asks for a password
# What a server sends between the startup packet and ReadyForQuery: Authentication, ParameterStatus,
# BackendKeyData, NoticeResponse.
PG_SESSION_START = {b"R", b"S", b"K", b"N"}
PG_TERMINATE = b"X\0\0\0\x04"
UNREACHED = "no probe reaches it from here"  # a backend's address() said why (Service.unreached)
REFUSED = "connection refused"  # how a refused probe's error begins (health.advice says services refused alike once)


class ProtocolError(ValueError):
    """What answered does not speak the probe's protocol (an HTTP answer cut short, garbage)."""


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


def _shown(value: Any) -> str:
    """A JSON value as an error names it: `true (a boolean)`, `null`."""
    if value is None:
        return "null"
    text = json.dumps(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({JSON_KINDS[type(value)]})"


def _word(key: str, value: Any) -> tuple[Health, str]:
    if isinstance(value, str):
        return WORD_HEALTH.get(value.lower(), Health.UNHEALTHY), f"reports {value}"
    return Health.UNHEALTHY, f"{key} is {_shown(value)}, not a status word"


def _body_verdicts(body: Any, status_field: str | None = None,
                   degraded_if: tuple[tuple[str, Any], ...] = ()) -> list[tuple[Health, str]]:
    """(verdict, reason) for each health key the body holds; a body with none leaves it to the status code.

    A key's value is read only in its documented shape: anything else says the service is not healthy, since
    a probe that counts `{"status": false}` as healthy reports a dead engine as up. With a `status_field` declared
    in the registry, that field alone decides, and an answer without it is not healthy; `degraded_if` body values
    (trading_enabled: false) make it degraded.
    """
    if not isinstance(body, dict):
        return []
    verdicts = []
    if status_field:
        if status_field in body:
            verdicts.append(_word(status_field, body[status_field]))
    else:
        verdicts += [_word(key, body[key]) for key in ("status", "system_health") if key in body]
        for key in ("healthy", "ok"):
            if key in body:
                value = body[key]
                verdicts.append((Health.HEALTHY if value is True else Health.UNHEALTHY, f"{key} is {_shown(value)}"))
    for key, value in degraded_if:
        if key in body and body[key] == value and type(body[key]) is type(value):
            verdicts.append((Health.DEGRADED, f"{key} is {_shown(value).split(' (')[0]}"))
    return verdicts


def classify_http(code: int, body: Any, expect: tuple[int, ...] = (200,), status_field: str | None = None,
                  degraded_if: tuple[tuple[str, Any], ...] = ()) -> tuple[Health, str | None]:
    """Health from an HTTP answer: the status code first, then the body's health keys, the worst one winning."""
    verdicts = _body_verdicts(body, status_field, degraded_if)
    if code not in expect:
        if code == 503 and all(verdict is Health.STARTING for verdict, _ in verdicts):
            return Health.STARTING, "HTTP 503: not ready yet"
        return Health.UNHEALTHY, f"HTTP {code}, expected {'/'.join(map(str, expect))}"
    if status_field and not (isinstance(body, dict) and status_field in body):  # an answer that says nothing
        verdicts.append((Health.UNHEALTHY, f"its answer has no {status_field}"))
    worst = max((verdict for verdict, _ in verdicts), key=SEVERITY.index, default=Health.HEALTHY)
    if worst is Health.HEALTHY:
        return worst, None
    return worst, "; ".join(reason for verdict, reason in verdicts if verdict is not Health.HEALTHY)


def http_request(host: str, port: int, method: str, path: str, timeout: float,
                 body: bytes | None = None) -> tuple[int, Any]:
    """One HTTP request under an overall timeout; returns (status, parsed JSON or text)."""
    return _http_exchange(host, port, method, path, _Deadline(timeout), body)


def _http_exchange(host: str, port: int, method: str, path: str, deadline: _Deadline,
                   body: bytes | None = None) -> tuple[int, Any]:
    with socket.create_connection((host, port), timeout=deadline.left()) as sock:
        deadline.connected = True
        try:
            code, raw = http10.exchange(sock, method, path, f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                                        body=body, headers=("User-Agent: tmt-ops", "Accept: application/json"),
                                        limit=MAX_BODY, left=deadline.left)
        except http10.BadAnswer as exc:  # an answer cut short, or not HTTP at all
            raise ProtocolError(str(exc)) from None
    text = raw.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text.strip()[:200]
    return code, parsed


def _probe_http(service: Service, deadline: _Deadline) -> ProbeResult:
    code, body = _http_exchange(service.host, service.port, "GET", service.probe.path or "/", deadline)
    p = service.probe
    status, error = classify_http(code, body, p.expect_status, p.status_field, p.degraded_if)
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


def _pg_message(sock: socket.socket, deadline: _Deadline) -> tuple[bytes, bytes]:
    """One backend message, read whole: a socket closed with data unread sends a reset, which the server logs
    ("could not receive data from client: Connection reset by peer")."""
    kind = _recv_exact(sock, 1, deadline)
    (length,) = struct.unpack("!i", _recv_exact(sock, 4, deadline))
    if not 4 <= length <= MAX_BODY:
        raise ValueError(f"not a PostgreSQL message (type {kind!r}, length {length})")
    return kind, _recv_exact(sock, length - 4, deadline)


def _pg_startup(sock: socket.socket, deadline: _Deadline) -> tuple[bytes, bytes]:
    """The startup packet, then the server's messages read whole up to the one that decides: (kind, payload).

    The same over a plain socket and over TLS (an ssl.SSLSocket reads and writes like one).
    """
    params = b"user\0postgres\0database\0postgres\0application_name\0tmt-ops-probe\0\0"
    sock.settimeout(deadline.left())
    sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    while True:
        kind, payload = _pg_message(sock, deadline)
        if kind not in PG_SESSION_START or kind == b"R" and payload != PG_AUTH_OK:
            break  # ReadyForQuery, an error, a password prompt (hanging up there is silent), or garbage
    if kind == b"Z":
        sock.settimeout(deadline.left())
        sock.sendall(PG_TERMINATE)
    return kind, payload


def _pg_startup_over_tls(sock: socket.socket, deadline: _Deadline) -> tuple[bytes, bytes]:
    """After the server's 'S': the TLS handshake on the same socket, the startup flow, and a clean TLS close.

    Hanging up without a handshake, or without close_notify, is what the server logs ("could not accept SSL
    connection: EOF detected", "SSL error: unexpected eof while reading"); pg_isready (sslmode=prefer) does
    neither.
    """
    import ssl  # here, not at the top: only a server that offers TLS needs it

    # No certificate verification, on purpose: this checks that a configured address is alive and ready, it
    # sends no password and trusts nothing the server says beyond that. Verifying would report a server with
    # a self-signed or private-CA certificate as down, which is a trust decision a liveness probe cannot make.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Like libpq: without it, Nagle holds the startup packet back behind the handshake's last flight until
    # the server's delayed ACK, some 40 ms a probe.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = context.wrap_socket(sock, do_handshake_on_connect=False)  # takes over sock's descriptor
    handshaken = False
    try:
        tls.settimeout(deadline.left())
        tls.do_handshake()  # one timeout bounds the whole handshake
        handshaken = True
        return _pg_startup(tls, deadline)
    finally:
        if handshaken:
            try:
                # close_notify: the server reads a clean end of stream, which it does not log (a password
                # prompt left unanswered included); it answers with its own, or has already sent it.
                tls.settimeout(deadline.left())
                tls.unwrap()
            except OSError:  # the server closed first, or no time left: the verdict is already read
                pass
        tls.close()


def _probe_postgres(service: Service, deadline: _Deadline) -> ProbeResult:
    """SSLRequest proves the postmaster answers; a startup packet (over TLS when the server says 'S') then
    tells ready from starting.

    Like pg_isready, it leaves nothing in the server's log when the server is ready, with TLS or without: a
    session it is let into is read to ReadyForQuery and ended with Terminate; at a password prompt it hangs
    up, which the server takes as a client without a password, silently; over TLS it sends close_notify
    before it closes. A refusal (starting up, shutting down) is logged by the server whoever asks.
    """
    with _connect(service, deadline) as sock:
        sock.sendall(PG_SSL_REQUEST)
        answer = _recv_exact(sock, 1, deadline)
        if answer == b"S":
            kind, payload = _pg_startup_over_tls(sock, deadline)
        elif answer == b"N":
            kind, payload = _pg_startup(sock, deadline)
        else:
            return ProbeResult(Health.UNHEALTHY, service.url, error=f"not a PostgreSQL answer: {answer!r}")
    if kind == b"Z":
        return ProbeResult(Health.HEALTHY, service.url, details="accepting connections")
    if kind == b"R":
        return ProbeResult(Health.HEALTHY, service.url, details="accepting connections (asks for a password)")
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
    if service.unreached:
        return ProbeResult(Health.UNHEALTHY, service.url, error=f"{UNREACHED}: {service.unreached}")
    seconds = service.probe.timeout if timeout is None else min(timeout, service.probe.timeout)
    deadline = _Deadline(seconds)
    started = time.perf_counter()
    try:
        result = _PROBES[service.probe.kind](service, deadline)
    except (socket.timeout, TimeoutError):
        result = ProbeResult(Health.TIMEOUT, service.url, error=f"no answer within {seconds:g}s")
    except ConnectionRefusedError:
        result = ProbeResult(Health.UNHEALTHY, service.url, error=f"{REFUSED} on {service.address}")
    except ProtocolError as exc:
        result = ProbeResult(Health.UNHEALTHY, service.url, error=str(exc))
    except (OSError, ValueError, struct.error) as exc:
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
