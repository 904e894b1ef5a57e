"""One simulated TMT service: a tiny real HTTP server with the real health bodies and fault knobs.

``python -m tmt_sim SERVICE --port N [--host H] [--requires URL]... [knobs]``
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tmt_sim import HEALTH_PATHS, SERVICES

# Seconds from start to ready, of the order the real services take (orchestrator 1.3-2.4 s, market analysis
# 0.5-1.1 s, execution engine 0.4-0.9 s, dashboard 2.1-4.3 s); --start-delay, else TMT_SIM_START_DELAY (the
# test suite's shorter one), overrides them.
START_DELAYS = {"orchestrator": 1.8, "market-analysis": 0.8, "execution-engine": 0.6, "dashboard": 2.5}
START_DELAY_VARIABLE = "TMT_SIM_START_DELAY"
OANDA_ENVIRONMENTS = ("practice", "live")  # what the real orchestrator's settings accept
CONNECTED_AGENTS = 8
DASHBOARD_HTML = b"<!doctype html><html><head><title>TMT Dashboard</title></head>" \
                 b"<body><h1>TMT Trading System (simulated)</h1></body></html>\n"

_print_lock = threading.RLock()  # re-entrant: signal handlers log from the main thread


def start_delay(args):
    if args.start_delay is not None:
        return args.start_delay
    given = os.environ.get(START_DELAY_VARIABLE)
    return float(given) if given else START_DELAYS[args.service]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tmt_sim", description="Simulated TMT service")
    p.add_argument("service", choices=SERVICES)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--requires", action="append", default=[], metavar="URL",
                   help="health URL of a dependency; not ready until it answers 200 (repeatable)")
    p.add_argument("--start-delay", type=float, default=None, metavar="S",
                   help="seconds to become ready (default: of the real service's order, or $%s)" % START_DELAY_VARIABLE)
    p.add_argument("--crash-at-start", action="store_true")
    p.add_argument("--ignore-sigterm", action="store_true")
    p.add_argument("--stop-delay", type=float, default=0.0, metavar="S")
    p.add_argument("--spawn-child", action="store_true")
    p.add_argument("--hang-health", action="store_true")
    p.add_argument("--degraded", action="store_true")
    p.add_argument("--exit-after", type=float, default=None, metavar="S")
    p.add_argument("--api-key", metavar="KEY", help="ignored: a secret on the command line, as a real service may "
                                                    "take one (the toolkit must never show it)")
    return p.parse_args(argv)


class Service:
    def __init__(self, args):
        self.args = args
        self.name = args.service
        self.started = time.monotonic()
        self.ready = threading.Event()
        self.start_delay = start_delay(args)
        self.trading_enabled = True
        self.stop_requested = False
        self.child = None
        self.server = None

    # -- logging -------------------------------------------------------------------------------
    def log(self, msg, stream=None):
        line = "%s %s[%d]: %s" % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.name, os.getpid(), msg)
        with _print_lock:
            try:
                print(line, file=stream or sys.stdout, flush=True)
            except (OSError, ValueError):
                pass

    # -- health bodies -------------------------------------------------------------------------
    def uptime(self):
        return round(time.monotonic() - self.started, 3)

    def health(self):
        """(status code, body dict) of the health endpoint."""
        degraded = self.args.degraded
        if self.name == "orchestrator":
            if not self.ready.is_set():
                return 503, {"detail": "Orchestrator not initialized"}
            return 200, {"system_health": "degraded" if degraded else "healthy", "running": True,
                         "trading_enabled": self.trading_enabled,
                         "connected_agents": CONNECTED_AGENTS,
                         "uptime_seconds": self.uptime()}
        if not self.ready.is_set():
            return 503, {"status": "starting"}
        if self.name == "execution-engine":
            return 200, {"status": "degraded" if degraded else "running", "mode": "paper",
                         "paper_trading_mode": True, "trading_enabled": self.trading_enabled,
                         "uptime_seconds": self.uptime()}
        if self.name == "market-analysis":
            return 200, {"status": "degraded" if degraded else "healthy", "agent": "market-analysis",
                         "version": "1.0.0",
                         "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        # dashboard
        if degraded:
            return 500, {"status": "unhealthy", "service": "tmt-dashboard"}
        return 200, {"status": "healthy", "service": "tmt-dashboard"}

    # -- lifecycle -----------------------------------------------------------------------------
    def _requires_met(self):
        import http.client
        from urllib.parse import urlsplit
        for url in self.args.requires:
            u = urlsplit(url)
            try:
                conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=0.5)
                try:
                    conn.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""))
                    if conn.getresponse().status != 200:
                        return False
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException):
                return False
        return True

    def _settings_error(self):
        """Like the real orchestrator's pydantic settings: a bad value is one traceback at start-up, after which
        the process runs on answering 503 "not initialized" for ever."""
        value = os.environ.get("OANDA_ENVIRONMENT", "practice")
        if self.name != "orchestrator" or value in OANDA_ENVIRONMENTS:
            return False
        self.log("ERROR:    Traceback (most recent call last):\n"
                 '  File "/app/orchestrator/app/main.py", line 58, in lifespan\n'
                 "    settings = Settings()\n"
                 "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings\n"
                 "oanda_environment\n"
                 "  Input should be 'practice' or 'live' [type=literal_error, input_value=%r, input_type=str]\n"
                 "ERROR:    Application startup failed. Orchestrator not initialized." % value, sys.stderr)
        return True

    def _startup(self):
        if self._settings_error():
            return
        deadline = self.started + self.start_delay
        waiting_logged = False
        while True:
            if self.args.requires and not self._requires_met():
                if not waiting_logged:
                    self.log("waiting for dependencies: %s" % ", ".join(self.args.requires))
                    waiting_logged = True
                time.sleep(0.1)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(remaining, 0.1))
        self.ready.set()
        self.log("ready")
        if self.args.exit_after is not None:
            time.sleep(self.args.exit_after)
            self.log("FATAL: simulated crash %ss after ready" % self.args.exit_after, sys.stderr)
            self._stop_child()
            os._exit(1)

    def _stop_child(self):
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(1)
            except Exception:
                self.child.kill()
                self.child.wait()

    def _on_signal(self, signum, frame):
        name = signal.Signals(signum).name
        if signum == signal.SIGTERM and self.args.ignore_sigterm:
            self.log("received SIGTERM, ignoring it (--ignore-sigterm)")
            return
        if not self.stop_requested:
            self.log("received %s, shutting down" % name)
        self.stop_requested = True

    def run(self):
        a = self.args
        self.log("starting %s (simulated TMT service) on %s:%d" % (self.name, a.host, a.port))
        if a.crash_at_start:
            self.log("FATAL: cannot connect to broker (simulated crash)", sys.stderr)
            return 3
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self.server = make_server(self, a.host, a.port)
        except OSError as e:
            self.log("FATAL: cannot bind %s:%d: %s" % (a.host, a.port, e), sys.stderr)
            return 2
        self.log("listening on %s:%d" % (a.host, self.server.server_address[1]))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="http").start()
        if a.spawn_child:
            import subprocess
            self.child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10**6)"])
            self.log("spawned worker child pid %d" % self.child.pid)
        threading.Thread(target=self._startup, daemon=True, name="startup").start()
        while not self.stop_requested:
            time.sleep(0.05)
        if a.stop_delay > 0:
            self.log("draining for %ss before stopping" % a.stop_delay)
            end = time.monotonic() + a.stop_delay
            while time.monotonic() < end:
                time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        self.server.shutdown()
        self.server.server_close()
        self._stop_child()
        self.log("stopped")
        return 0


def make_server(svc, host, port):
    health_path = HEALTH_PATHS[svc.name]

    class Handler(BaseHTTPRequestHandler):
        server_version = "tmt-sim"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_request(self, code="-", size="-"):
            # uvicorn's access log, one line per request on the service's output
            host, port = self.client_address[:2]
            with _print_lock:
                try:
                    print('INFO:     %s:%d - "%s %s %s" %s' % (host, port, self.command, self.path,
                                                               self.request_version, code), flush=True)
                except (OSError, ValueError):
                    pass

        def log_message(self, format, *args):  # silence the stderr access log
            pass

        def _send(self, code, body, ctype="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == health_path:
                if svc.args.hang_health:
                    threading.Event().wait()  # never answer; daemon thread
                self._send(*svc.health())
            elif path == "/" and svc.name == "dashboard":
                self._send(200, DASHBOARD_HTML, "text/html; charset=utf-8")
            else:
                self._send(404, {"detail": "Not Found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            if path in ("/api/trading/disable", "/api/trading/enable") and svc.name in ("orchestrator",
                                                                                        "execution-engine"):
                svc.trading_enabled = path.endswith("enable")
                svc.log("trading enabled (post-start)" if svc.trading_enabled else "trading disabled (pre-stop)")
                self._send(200, {"trading_enabled": svc.trading_enabled})
            else:
                self._send(404, {"detail": "Not Found"})

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        block_on_close = False

        def handle_error(self, request, client_address):
            # A client that hangs up mid-request (a port probe, a timed-out health check) is routine.
            exc = sys.exc_info()[1]
            svc.log(f"connection from {client_address[0]} ended: {type(exc).__name__}")

    return Server((host, port), Handler)


def main(argv=None):
    return Service(parse_args(argv)).run()
