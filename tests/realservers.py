"""Real servers for the health tests: Redis and PostgreSQL started on free ports, the simulated TMT stack,
and the one stand-in, a Kafka broker that answers ApiVersions (no Kafka server is installable here).

Every starter returns something with stop(); callers (fixtures) stop what they started.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

from support import wait_for

PG_BIN = Path(os.environ.get("TMT_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "nobody" if os.geteuid() == 0 else None  # initdb and postgres refuse to run as root


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Proc:
    """A server process in its own session; stop() kills its whole group and waits."""

    def __init__(self, argv: list[str], log: Path, **kw):
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, **kw)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)


def wait_listening(proc: Proc, port: int, timeout: float = 15) -> None:
    if not wait_for(lambda: port_open(port) or not proc.alive(), timeout) or not proc.alive():
        raise RuntimeError(f"server on port {port} did not come up; log: {proc.log.read_text()[-2000:]}")


# -- Redis ---------------------------------------------------------------------------------------------------------
def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def start_redis(workdir: Path, port: int, *extra: str) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    proc = Proc(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(workdir), "--daemonize", "no", *extra], workdir / f"redis-{port}.log")
    wait_listening(proc, port)
    return proc


def redis_command(port: int, *words: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((" ".join(words) + "\r\n").encode())
        return s.recv(4096)


def start_loading_redis(workdir: Path, port: int) -> Proc:
    """A real Redis that stays in LOADING for seconds: a small RDB loaded with a per-key delay, answering
    clients between keys (the knobs Redis's own test suite uses)."""
    proc = start_redis(workdir, port, "--enable-debug-command", "local")
    assert redis_command(port, "DEBUG", "POPULATE", "5000").startswith(b"+OK")
    assert redis_command(port, "SAVE").startswith(b"+OK")
    proc.stop()
    wait_for(lambda: not port_open(port), 5)
    proc = Proc(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir),
                 "--daemonize", "no", "--key-load-delay", "2000", "--loading-process-events-interval-bytes", "1024"],
                workdir / f"redis-loading-{port}.log")
    wait_listening(proc, port)
    return proc


# -- PostgreSQL ----------------------------------------------------------------------------------------------------
def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "postgres").exists()


_template: list[Path] = []


def _owned_tempdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if PG_USER:
        shutil.chown(path, PG_USER)
    atexit.register(shutil.rmtree, path, True)
    return path


def _pg_template() -> Path:
    """One initdb per test session (about a second); clusters are copies of it."""
    if not _template:
        root = _owned_tempdir("tmt-pg-template-")
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8", "--locale=C"], check=True, capture_output=True, user=PG_USER,
                       cwd=root)
        _template.append(root / "data")
    return _template[0]


_tls: list[tuple[Path, Path]] = []


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def tls_certificate() -> tuple[Path, Path]:
    """(certificate, key): self-signed, made once per test session, the key readable by the server's user only."""
    if not _tls:
        root = _owned_tempdir("tmt-pg-tls-")
        cert, key = root / "server.crt", root / "server.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        key.chmod(0o600)
        if PG_USER:
            for path in (cert, key):
                shutil.chown(path, PG_USER)
        _tls.append((cert, key))
    return _tls[0]


def pg_tls_settings() -> tuple[str, ...]:
    """Settings for Postgres(...) that turn TLS on with the session's self-signed certificate."""
    cert, key = tls_certificate()
    return "ssl=on", f"ssl_cert_file={cert}", f"ssl_key_file={key}"


class Postgres(Proc):
    def __init__(self, port: int, *settings: str, recovery: bool = False, hba: str | None = None):
        """`hba` replaces pg_hba.conf (the template trusts everyone), e.g. to ask TCP clients for a password."""
        self.port = port
        self.root = _owned_tempdir("tmt-pg-")
        data = self.root / "data"
        shutil.copytree(_pg_template(), data, symlinks=True)
        if hba is not None:
            (data / "pg_hba.conf").write_text(hba)
        if recovery:
            (data / "recovery.signal").touch()
        if PG_USER:
            for path in [data, *data.rglob("*")]:
                shutil.chown(path, PG_USER)
        conf = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=20"]
        for s in settings:
            conf += ["-c", s]
        super().__init__([str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(self.root), *conf],
                         self.root / "postgres.log", user=PG_USER, cwd=self.root)
        wait_listening(self, port)

    def stop(self) -> None:
        """Postgres children leave the postmaster's process group (setsid), and a startup process stuck in a
        restore_command would outlive a group kill: kill every descendant."""
        import psutil
        try:
            family = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        super().stop()
        for proc in family:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=5)

    def wait_clients_gone(self, timeout: float = 10) -> bool:
        """Waits until no backend serves a client: a backend has written its log lines by the time it exits."""
        import psutil

        def serving() -> bool:
            titles = []
            for child in psutil.Process(self.pid).children():
                try:
                    titles.append(child.cmdline()[0])
                except (psutil.NoSuchProcess, IndexError):  # gone, or a zombie: its lines are written
                    pass
            # Auxiliary processes are titled "postgres: checkpointer" and the like; a client's backend
            # "postgres: user database host(port) state", or, just forked, still like the postmaster.
            return any("(" in title or not title.startswith("postgres: ") for title in titles)

        return wait_for(lambda: not serving(), timeout)

    def session(self) -> socket.socket:
        """A real client session (trust auth, up to ReadyForQuery), left open by the caller."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        params = b"user\0postgres\0database\0postgres\0\0"
        s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        buffer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError(f"session refused: {buffer!r}")
            buffer += chunk
            pos = 0
            while pos + 5 <= len(buffer):
                kind, length = buffer[pos:pos + 1], struct.unpack("!i", buffer[pos + 1:pos + 5])[0]
                if kind == b"E":
                    raise RuntimeError(f"session refused: {buffer[pos:]!r}")
                if kind == b"Z":
                    return s
                pos += 1 + length


# -- Kafka stand-in ------------------------------------------------------------------------------------------------
class KafkaStandIn:
    """Answers Kafka ApiVersions v0 requests like a broker (error 0, no API list); `correlation` overrides the
    echoed correlation id to play a broken peer."""

    def __init__(self, port: int, correlation: int | None = None):
        self.correlation = correlation
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                try:
                    conn.settimeout(2)
                    (length,) = struct.unpack("!i", conn.recv(4))
                    request = b""
                    while len(request) < length:
                        request += conn.recv(length - len(request))
                    _, _, correlation = struct.unpack("!hhi", request[:8])
                    if self.correlation is not None:
                        correlation = self.correlation
                    body = struct.pack("!ihi", correlation, 0, 0)  # correlation id, error_code, api_keys[]
                    conn.sendall(struct.pack("!i", len(body)) + body)
                except (OSError, struct.error):
                    pass

    def stop(self) -> None:
        self.running = False
        self.thread.join(2)
        self.server.close()


# -- a PostgreSQL peer that offers TLS and then stalls ------------------------------------------------------------
class StallingTlsPostgres:
    """Answers the SSLRequest with 'S', then hangs: before the TLS handshake, or (handshake=True) after it,
    never answering the startup packet."""

    def __init__(self, port: int, handshake: bool = False):
        import ssl
        self.context = None
        if handshake:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*map(str, tls_certificate()))
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn.settimeout(5)
                conn.recv(8)
                conn.sendall(b"S")
                if self.context is not None:
                    conn = self.context.wrap_socket(conn, server_side=True)
                self.held.append(conn)
            except OSError:
                conn.close()

    def stop(self) -> None:
        self.running = False
        self.thread.join(2)
        self.server.close()
        for conn in self.held:
            conn.close()


# -- an impostor ---------------------------------------------------------------------------------------------------
IMPOSTOR = """
import http.server, json, sys
class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"system_health": "healthy", "status": "healthy"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Healthy).serve_forever()
"""


def start_impostor(port: int, log: Path) -> Proc:
    """A process that is no TMT service but answers every GET with a "healthy" body, on `port`."""
    import sys
    proc = Proc([sys.executable, "-c", IMPOSTOR, str(port)], log)
    wait_listening(proc, port)
    return proc


# -- a hanging peer ------------------------------------------------------------------------------------------------
class Silent:
    """Accepts connections and never answers (a hung service)."""

    def __init__(self, port: int):
        self.server = socket.create_server(("127.0.0.1", port), backlog=64)

    def stop(self) -> None:
        self.server.close()


# -- the simulated TMT stack ---------------------------------------------------------------------------------------
def start_services(registry, names, logdir: Path) -> dict[str, Proc]:
    """Each named managed service run as the registry says (command, cwd, env), like the native backend would."""
    logdir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name in names:
        service = registry.service(name)
        procs[name] = Proc(list(service.command), logdir / f"{name}.log", cwd=service.cwd,
                           env={**os.environ, **service.env})
    return procs
