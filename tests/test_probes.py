"""Probes against real servers: Redis and PostgreSQL (started here on free ports), the simulated services'
HTTP, a Kafka ApiVersions stand-in, and peers that accept a connection and never answer."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import realservers as rs
from support import free_ports, wait_for
from tmt_ops.probes import PG_SSL_REQUEST, ProbeResult, classify_http, http_request, probe, probe_all
from tmt_ops.registry import Probe, Service
from tmt_ops.states import Health


def make_service(name: str, kind: str, port: int, *, path: str | None = None, timeout: float = 2.0,
                 critical: bool = True) -> Service:
    from pathlib import Path
    return Service(name=name, display_name=name.title(), group="infrastructure", host="127.0.0.1", port=port,
                   critical=critical, managed=False, backend=None, oneshot=False, command=(), cwd=Path("."), env={},
                   probe=Probe(kind=kind, timeout=timeout, path=path), depends_on=(), startup_timeout=10,
                   stop_signal=signal.SIGTERM, stop_grace=1, pre_stop=None, compose_service=name, public=False)


def probe_server(start, kind: str) -> ProbeResult:
    """start(port) a server on a free port, probe it once as `kind`, stop it."""
    (port,) = free_ports(1)
    server = start(port)
    try:
        return probe(make_service(kind, kind, port))
    finally:
        server.stop()


# -- classify_http: the body decides -------------------------------------------------------------------------------
@pytest.mark.parametrize("code, body, expected", [
    (200, {"status": "healthy"}, Health.HEALTHY),
    (200, {"status": "ok"}, Health.HEALTHY),
    (200, {"status": "running", "mode": "paper"}, Health.HEALTHY),
    (200, {"status": "pass"}, Health.HEALTHY),
    (200, {"status": "degraded"}, Health.DEGRADED),
    (200, {"status": "warn"}, Health.DEGRADED),
    (200, {"status": "error"}, Health.UNHEALTHY),
    (200, {"status": "critical"}, Health.UNHEALTHY),
    (200, {"system_health": "degraded", "trading_enabled": True}, Health.DEGRADED),
    (200, {"system_health": "unhealthy"}, Health.UNHEALTHY),
    (200, {"system_health": "healthy"}, Health.HEALTHY),
    (200, "OK", Health.HEALTHY),  # a plain-text body has no words to judge: the code decides
    (200, {"status": "UP"}, Health.HEALTHY),
    (200, {"healthy": True}, Health.HEALTHY),
    (200, {"status": "ok", "ok": True}, Health.HEALTHY),
    (200, {"database": "ok", "version": "10.4.2"}, Health.HEALTHY),  # Grafana: none of the keys
    (200, {"initialized": True, "sealed": False, "standby": False}, Health.HEALTHY),  # Vault
    (503, {"detail": "Orchestrator not initialized"}, Health.STARTING),
    (503, {"status": "starting"}, Health.STARTING),
    (503, {"status": "unhealthy"}, Health.UNHEALTHY),
    (500, {"status": "unhealthy"}, Health.UNHEALTHY),
    (404, {"detail": "Not Found"}, Health.UNHEALTHY),
])
def test_classify_http(code, body, expected):
    assert classify_http(code, body)[0] is expected


# Bodies in no documented shape (README, system health), each with what the error must say about it.
BAD_SHAPES = [
    ({"status": True}, "status is true (a boolean), not a status word"),
    ({"status": False}, "status is false (a boolean), not a status word"),
    ({"status": None}, "status is null, not a status word"),
    ({"status": 1}, "status is 1 (a number), not a status word"),
    ({"status": {"db": "down"}}, 'status is {"db": "down"} (an object), not a status word'),
    ({"status": ["healthy"]}, 'status is ["healthy"] (a list), not a status word'),
    ({"system_health": True, "trading_enabled": True}, "system_health is true (a boolean), not a status word"),
    ({"healthy": False}, "healthy is false (a boolean)"),
    ({"ok": False}, "ok is false (a boolean)"),
    ({"ok": "true"}, 'ok is "true" (a string)'),
    ({"healthy": 1}, "healthy is 1 (a number)"),
    ({"status": "healthy", "healthy": False}, "healthy is false (a boolean)"),  # the worst verdict wins
    ({"system_health": "healthy", "status": None}, "status is null, not a status word"),
    ({"status": "degraded", "ok": None}, "ok is null"),  # worse than degraded
]


@pytest.mark.parametrize("body, error", BAD_SHAPES)
def test_classify_http_says_unhealthy_for_a_body_in_no_documented_shape(body, error):
    status, said = classify_http(200, body)
    assert status is Health.UNHEALTHY and error in said, (status, said)


@pytest.mark.parametrize("body", [{"status": None}, {"status": "starting", "ok": False}])
def test_classify_http_503_is_starting_only_when_every_key_says_starting(body):
    assert classify_http(503, body)[0] is Health.UNHEALTHY


# -- HTTP against a real server ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http_server():
    """Answers GET /<code>/<json> with that code and body; GET /hang never answers."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/hang":
                threading.Event().wait(30)
                return
            _, code, body = self.path.split("/", 2)
            data = bytes.fromhex(body)
            self.send_response(int(code))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _path(code: int, body) -> str:
    return f"/{code}/{json.dumps(body).encode().hex()}"


def test_http_probe_reads_the_body(http_server):
    degraded = probe(make_service("svc", "http", http_server, path=_path(200, {"status": "degraded"})))
    assert degraded.status is Health.DEGRADED and degraded.http_status == 200
    assert degraded.details == {"status": "degraded"} and degraded.port_open is True
    starting = probe(make_service("svc", "http", http_server, path=_path(503, {"detail": "not initialized"})))
    assert starting.status is Health.STARTING
    healthy = probe(make_service("svc", "http", http_server, path=_path(200, {"status": "healthy"})))
    assert healthy.status is Health.HEALTHY and healthy.error is None and healthy.response_time_ms > 0


@pytest.mark.parametrize("body, error", BAD_SHAPES)
def test_http_probe_of_a_body_in_no_documented_shape_is_unhealthy(http_server, body, error):
    """HTTP 200 from a real server with each bad body: not healthy, and the error names the key."""
    result = probe(make_service("svc", "http", http_server, path=_path(200, body)))
    assert result.status is Health.UNHEALTHY and result.http_status == 200, result
    assert error in result.error and result.details == body


def test_http_probe_that_hangs_is_bounded_by_its_timeout(http_server):
    started = time.monotonic()
    result = probe(make_service("svc", "http", http_server, path="/hang", timeout=0.5))
    assert result.status is Health.TIMEOUT and result.port_open is True
    assert time.monotonic() - started < 1.5


def test_http_request_returns_status_and_parsed_body(http_server):
    assert http_request("127.0.0.1", http_server, "GET", _path(201, {"a": 1}), 2) == (201, {"a": 1})


def test_refused_connection_is_unhealthy_with_port_closed():
    (port,) = free_ports(1)
    result = probe(make_service("svc", "tcp", port))
    assert result.status is Health.UNHEALTHY and result.port_open is False
    assert "refused" in result.error


# -- concurrency: hanging peers cost one timeout, not one each -----------------------------------------------------
def test_five_hanging_targets_cost_one_timeout():
    ports = free_ports(5)
    peers = [rs.Silent(p) for p in ports]
    try:
        kinds = ["http", "redis", "postgres", "kafka", "http"]
        services = [make_service(f"s{i}", kind, p, path="/health", timeout=1.0)
                    for i, (kind, p) in enumerate(zip(kinds, ports))]
        started = time.monotonic()
        results = probe_all(services, deadline=4)
        elapsed = time.monotonic() - started
    finally:
        for peer in peers:
            peer.stop()
    assert all(r.status is Health.TIMEOUT and r.port_open is True for r in results.values()), results
    assert 0.9 < elapsed < 1.5, elapsed


def test_overall_deadline_cuts_long_probe_timeouts():
    (port,) = free_ports(1)
    peer = rs.Silent(port)
    try:
        started = time.monotonic()
        results = probe_all([make_service("slow", "tcp", port), make_service("hung", "redis", port, timeout=10)], 0.5)
        elapsed = time.monotonic() - started
    finally:
        peer.stop()
    assert results["hung"].status is Health.TIMEOUT and results["slow"].status is Health.HEALTHY
    assert elapsed < 1.0


def test_tcp_probe_healthy_when_port_accepts():
    result = probe_server(rs.Silent, "tcp")
    assert result.status is Health.HEALTHY and result.port_open is True


# -- Redis: a real server ------------------------------------------------------------------------------------------
needs_redis = pytest.mark.skipif(not rs.redis_available(), reason="redis-server is not installed (.ci/setup-system.sh)")


@needs_redis
def test_redis_ping_pong(tmp_path):
    result = probe_server(lambda port: rs.start_redis(tmp_path, port), "redis")
    assert result.status is Health.HEALTHY and result.details == "PONG"


@needs_redis
def test_redis_with_password_answers_noauth_and_counts_as_up(tmp_path):
    result = probe_server(lambda port: rs.start_redis(tmp_path, port, "--requirepass", "hunter2hunter2"), "redis")
    assert result.status is Health.HEALTHY and "authentication" in result.details


@needs_redis
def test_redis_loading_its_data_set_is_starting(tmp_path):
    result = probe_server(lambda port: rs.start_loading_redis(tmp_path, port), "redis")
    assert result.status is Health.STARTING, result
    assert result.details.startswith("-LOADING")


# -- PostgreSQL: real servers, ready, starting, shutting down ------------------------------------------------------
needs_postgres = pytest.mark.skipif(not rs.postgres_available(), reason=f"PostgreSQL binaries not in {rs.PG_BIN}")
needs_openssl = pytest.mark.skipif(not rs.openssl_available(), reason="openssl is not installed (self-signed certificate)")
PLAIN_AND_TLS = [pytest.param(False, id="plain"), pytest.param(True, id="tls", marks=needs_openssl)]


def offers_tls(port: int) -> bool:
    """Does the server answer an SSLRequest with 'S'? (Hanging up there costs a line in its log.)"""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(PG_SSL_REQUEST)
        return sock.recv(1) == b"S"


@contextlib.contextmanager
def ready_postgres(*settings: str, hba: str | None = None):
    """A real PostgreSQL on a free port, once it accepts connections: (server, its Service)."""
    (port,) = free_ports(1)
    server = rs.Postgres(port, *settings, hba=hba)
    service = make_service("pg", "postgres", port)
    try:
        assert wait_for(lambda: probe(service).status is Health.HEALTHY, 10), probe(service)
        yield server, service
    finally:
        server.stop()


@needs_postgres
def test_postgres_ready_is_healthy():
    with ready_postgres() as (_, service):
        assert probe(service).details == "accepting connections"


@needs_postgres
@pytest.mark.parametrize("tls", PLAIN_AND_TLS)
def test_postgres_in_startup_recovery_is_starting(tls):
    """recovery.signal with a restore_command that takes its time: the postmaster listens and answers
    'the database system is starting up' until recovery ends (here: not within the test). With TLS the
    answer comes after the handshake: the old probe stopped at 'S' and called a starting server healthy."""
    settings = ("restore_command=sleep 60; exit 1", *(rs.pg_tls_settings() if tls else ()))
    result = probe_server(lambda port: rs.Postgres(port, *settings, recovery=True), "postgres")
    assert result.status is Health.STARTING, result
    assert "starting up" in result.error


@needs_postgres
@pytest.mark.parametrize("tls", PLAIN_AND_TLS)
def test_postgres_in_smart_shutdown_is_unhealthy(tls):
    """SIGTERM with a session open: smart shutdown waits for the session and refuses newcomers."""
    with ready_postgres(*(rs.pg_tls_settings() if tls else ())) as (server, service):
        session = server.session()
        server.popen.send_signal(signal.SIGTERM)
        assert wait_for(lambda: probe(service).status is not Health.HEALTHY, 5)
        result = probe(service)
        session.close()
    assert result.status is Health.UNHEALTHY and "shutting down" in result.error, result


def lines_logged(server: rs.Postgres, client, times: int) -> list[str]:
    """The lines at LOG level or above that `times` runs of client() leave in the server's log."""
    assert server.wait_clients_gone()
    size = server.log.stat().st_size
    for _ in range(times):
        client()
    assert server.wait_clients_gone()
    text = server.log.read_bytes()[size:].decode("utf-8", "replace")
    return [line for line in text.splitlines() if re.search(r"\b(LOG|WARNING|ERROR|FATAL|PANIC):", line)]


# Trust (the template's), and a password asked of TCP clients: password_encryption picks the prompt the
# server gives a role without a password (MD5, or SCRAM's mock authentication), as for one with a password.
PG_AUTH = {
    "trust": ((), None, "accepting connections"),
    "md5": (("password_encryption=md5",), "host all all 127.0.0.1/32 md5\n",
            "accepting connections (asks for a password)"),
    "scram": (("password_encryption=scram-sha-256",), "host all all 127.0.0.1/32 scram-sha-256\n",
              "accepting connections (asks for a password)"),
}


@needs_postgres
@pytest.mark.skipif(not (rs.PG_BIN / "pg_isready").exists(), reason=f"pg_isready not in {rs.PG_BIN}")
@pytest.mark.parametrize("auth", [*PG_AUTH, *(pytest.param(f"{auth}-tls", marks=needs_openssl) for auth in PG_AUTH)])
def test_postgres_probe_leaves_no_more_in_the_server_log_than_pg_isready(auth):
    """A probe every few seconds must not fill the server's log: the old probe hung up on a trust session with
    its messages unread, which the server logged as 'could not receive data from client: Connection reset by
    peer', once per probe; and on a server with ssl=on it hung up right after the server's 'S', which the
    server logged as 'could not accept SSL connection: EOF detected'. pg_isready (sslmode=prefer) does the
    handshake and logs nothing."""
    tls = auth.endswith("-tls")
    settings, hba, details = PG_AUTH[auth.removesuffix("-tls")]
    with ready_postgres(*settings, *(rs.pg_tls_settings() if tls else ()), hba=hba) as (server, service):
        assert offers_tls(server.port) is tls
        said = probe(service).details
        ours = lines_logged(server, lambda: probe(service), 20)
        pg_isready = lines_logged(server, lambda: subprocess.run(
            [str(rs.PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres"],
            check=True, capture_output=True), 20)
    counts = f"20 probes logged {len(ours)} lines, 20 runs of pg_isready {len(pg_isready)}: {ours[:3]}"
    print(counts)
    assert len(ours) <= len(pg_isready), counts
    assert not ours, counts
    assert said == details, said


@pytest.mark.parametrize("handshake", [pytest.param(False, id="in-the-handshake"),
                                       pytest.param(True, id="after-the-handshake", marks=needs_openssl)])
def test_postgres_tls_peer_that_stalls_is_bounded_by_the_deadline(handshake):
    """A peer that says 'S' and then never completes the handshake, or never answers the startup packet over
    TLS: a timeout within the probe's deadline, not 'healthy' and not a hang."""
    (port,) = free_ports(1)
    peer = rs.StallingTlsPostgres(port, handshake=handshake)
    try:
        started = time.monotonic()
        result = probe(make_service("pg", "postgres", port, timeout=0.5))
        elapsed = time.monotonic() - started
    finally:
        peer.stop()
    assert result.status is Health.TIMEOUT and result.port_open is True, result
    assert elapsed < 1.0, elapsed


# -- Kafka: the one stand-in ---------------------------------------------------------------------------------------
def test_kafka_api_versions_answer_is_healthy():
    result = probe_server(rs.KafkaStandIn, "kafka")
    assert result.status is Health.HEALTHY


def test_kafka_reply_with_a_wrong_correlation_id_is_unhealthy():
    result = probe_server(lambda port: rs.KafkaStandIn(port, correlation=99), "kafka")
    assert result.status is Health.UNHEALTHY and "correlation" in result.error


def test_protocol_probe_against_an_http_server_is_unhealthy(http_server):
    """A Redis probe on a port where something else (an HTTP server) listens: not a false 'healthy'."""
    result = probe(make_service("redis", "redis", http_server))
    assert result.status is Health.UNHEALTHY and result.port_open is True
