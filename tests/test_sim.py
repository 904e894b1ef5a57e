"""Tests of the simulated TMT stack (tmt_sim): real processes on free ports, stdlib + pytest only."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tmt_sim

ROOT = Path(__file__).resolve().parent.parent


# -- helpers ---------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2.0, method="GET"):
    """(status, parsed JSON or text) of a request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    return status, (json.loads(raw) if "json" in ctype else raw.decode())


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        val = pred()
        if val:
            return val
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def status_of(url):
    try:
        return get(url, timeout=0.5)[0]
    except OSError:
        return None


def alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid):
    kids = []
    for f in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            kids += [int(x) for x in Path(f).read_text().split()]
        except OSError:
            pass
    return kids


class Proc:
    def __init__(self, popen, port, log):
        self.p, self.port, self.logfile = popen, port, log

    @property
    def pid(self):
        return self.p.pid

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def out(self):
        return self.logfile.read_text()

    def err(self):
        return Path(str(self.logfile) + ".err").read_text()


@pytest.fixture
def launch(tmp_path):
    """launch(service, *flags) -> Proc; every process group is SIGKILLed at teardown."""
    procs = []

    def _launch(service, *flags, port=None, wrap=False, env=None):
        port = port or free_port()
        cmd = [sys.executable, "-m", "tmt_sim", service, "--port", str(port), *flags]
        if wrap:
            cmd = [sys.executable, "-m", "tmt_sim.wrap", "--", "python", *cmd[1:]]
        log = tmp_path / ("%s-%d.log" % (service, len(procs)))
        with open(log, "w") as out, open(str(log) + ".err", "w") as err:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, start_new_session=True,
                                 env={**os.environ, **(env or {})})
        procs.append(p)
        return Proc(p, port, log)

    yield _launch
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def wait_ready(proc, timeout=5.0):
    svc_path = None
    for name, path in tmt_sim.HEALTH_PATHS.items():
        if name in " ".join(proc.p.args):
            svc_path = path
    wait_for(lambda: status_of(proc.url(svc_path)) not in (None, 503), timeout, what="ready")


# -- module API ------------------------------------------------------------------------------------

def test_module_api():
    assert tmt_sim.SERVICES == ("orchestrator", "market-analysis", "execution-engine", "dashboard")
    assert tmt_sim.HEALTH_PATHS == {"orchestrator": "/health", "market-analysis": "/health",
                                    "execution-engine": "/health", "dashboard": "/api/health"}


# -- ready bodies ----------------------------------------------------------------------------------

def test_orchestrator_initialising_then_ready(launch):
    t0 = time.monotonic()
    o = launch("orchestrator", "--start-delay", "1")
    wait_for(lambda: port_open(o.port), 2, what="port")
    assert time.monotonic() - t0 < 1.0  # binds right away
    assert get(o.url("/health")) == (503, {"detail": "Orchestrator not initialized"})
    wait_ready(o)
    assert time.monotonic() - t0 >= 1.0
    status, body = get(o.url("/health"))
    assert status == 200
    assert "status" not in body
    assert body["system_health"] == "healthy" and body["trading_enabled"] is True
    assert isinstance(body["connected_agents"], int) and isinstance(body["uptime_seconds"], float)


def test_execution_engine_ready_and_trading_disable(launch):
    e = launch("execution-engine")
    wait_for(lambda: status_of(e.url("/health")) == 503, 2, what="starting")
    assert get(e.url("/health")) == (503, {"status": "starting"})
    wait_ready(e)
    status, body = get(e.url("/health"))
    assert status == 200
    assert body["status"] == "running" and body["mode"] == "paper"
    assert body["paper_trading_mode"] is True and "uptime_seconds" in body
    assert get(e.url("/api/trading/disable"), method="POST") == (200, {"trading_enabled": False})
    assert get(e.url("/health"))[1]["trading_enabled"] is False
    wait_for(lambda: "trading disabled (pre-stop)" in e.out(), 2, what="log line")


def test_orchestrator_trading_disable(launch):
    o = launch("orchestrator", "--start-delay", "0")
    wait_ready(o)
    assert get(o.url("/api/trading/disable"), method="POST") == (200, {"trading_enabled": False})
    assert get(o.url("/health"))[1]["trading_enabled"] is False


def test_market_analysis_ready(launch):
    m = launch("market-analysis")
    wait_ready(m)
    status, body = get(m.url("/health"))
    assert status == 200
    assert body["status"] == "healthy" and body["agent"] == "market-analysis"
    assert body["version"] == "1.0.0" and body["timestamp"].startswith("20")
    assert get(m.url("/api/trading/disable"), method="POST")[0] == 404


def test_dashboard_ready_and_root(launch):
    d = launch("dashboard", "--start-delay", "0")
    wait_ready(d)
    assert get(d.url("/api/health")) == (200, {"status": "healthy", "service": "tmt-dashboard"})
    status, html = get(d.url("/"))
    assert status == 200 and "<html" in html
    assert get(d.url("/health"))[0] == 404


def test_unknown_path_is_404_json(launch):
    o = launch("orchestrator", "--start-delay", "0")
    wait_ready(o)
    status, body = get(o.url("/nope"))
    assert status == 404 and isinstance(body, dict)


def test_requires_dependency(launch):
    oport = free_port()
    m = launch("market-analysis", "--start-delay", "0",
               "--requires", "http://127.0.0.1:%d/health" % oport)
    wait_for(lambda: port_open(m.port), 2, what="port")
    time.sleep(0.4)
    assert get(m.url("/health")) == (503, {"status": "starting"})
    o = launch("orchestrator", "--start-delay", "0.3", port=oport)
    wait_for(lambda: port_open(o.port), 2, what="orchestrator port")
    # orchestrator answers 503 while initialising: still not met
    assert status_of(o.url("/health")) == 503
    assert status_of(m.url("/health")) == 503
    wait_ready(o)
    wait_for(lambda: status_of(m.url("/health")) == 200, 3, what="market-analysis ready")


# -- lifecycle, logs, signals ----------------------------------------------------------------------

def test_log_lines_and_graceful_sigterm(launch):
    e = launch("execution-engine", "--start-delay", "0")
    wait_ready(e)
    get(e.url("/health"))
    e.p.send_signal(signal.SIGTERM)
    assert e.p.wait(2) == 0
    out = e.out()
    for needle in ("starting", "listening on 127.0.0.1:%d" % e.port, "ready", '"GET /health HTTP/1.1" 200',
                   "received SIGTERM, shutting down", "stopped"):
        assert needle in out, needle


def test_every_request_is_an_access_log_line_as_uvicorn_writes_it(launch):
    o = launch("orchestrator", "--start-delay", "0")
    wait_ready(o)
    for _ in range(3):
        get(o.url("/health"))
    lines = [li for li in o.out().splitlines() if li.startswith("INFO:     127.0.0.1:")]
    assert len(lines) >= 3 and all(li.endswith('"GET /health HTTP/1.1" 200') for li in lines[-3:]), lines


def test_the_real_services_readiness_takes_as_long_as_theirs(launch):
    started = time.monotonic()
    o = launch("orchestrator", env={"TMT_SIM_START_DELAY": ""})
    wait_ready(o, timeout=10)
    assert 1.3 <= time.monotonic() - started <= 4, "the real orchestrator takes 1.3-2.4 s"


def test_a_bad_setting_leaves_the_orchestrator_answering_503_for_ever(launch):
    o = launch("orchestrator", "--start-delay", "0", env={"OANDA_ENVIRONMENT": "pratice"})
    wait_for(lambda: "Application startup failed" in o.err(), 5, what="the settings traceback")
    assert "ValidationError: 1 validation error for Settings" in o.err() and "'pratice'" in o.err()
    time.sleep(1)
    code, body = get(o.url("/health"))
    assert (code, body) == (503, {"detail": "Orchestrator not initialized"}) and o.p.poll() is None


def test_the_orchestrators_healthy_body_has_no_status_key(launch):
    o = launch("orchestrator", "--start-delay", "0")
    wait_ready(o)
    code, body = get(o.url("/health"))
    assert code == 200 and "status" not in body
    assert {"system_health", "running", "trading_enabled", "connected_agents", "uptime_seconds"} <= set(body)


def test_sigint_graceful(launch):
    d = launch("dashboard", "--start-delay", "0")
    wait_ready(d)
    t0 = time.monotonic()
    d.p.send_signal(signal.SIGINT)
    assert d.p.wait(2) == 0
    assert time.monotonic() - t0 < 1.0
    assert "received SIGINT, shutting down" in d.out()


def test_binds_fast(launch):
    t0 = time.monotonic()
    o = launch("orchestrator")
    wait_for(lambda: port_open(o.port), 2, interval=0.005, what="port")
    assert time.monotonic() - t0 < 0.5


def test_crash_at_start(launch):
    m = launch("market-analysis", "--crash-at-start")
    assert m.p.wait(2) == 3
    assert "FATAL: cannot connect to broker (simulated crash)" in m.err()
    assert not port_open(m.port)


def test_ignore_sigterm(launch):
    e = launch("execution-engine", "--ignore-sigterm", "--start-delay", "0")
    wait_ready(e)
    e.p.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert e.p.poll() is None
    assert status_of(e.url("/health")) == 200
    e.p.send_signal(signal.SIGKILL)
    assert e.p.wait(2) == -signal.SIGKILL


def test_stop_delay(launch):
    o = launch("orchestrator", "--stop-delay", "1", "--start-delay", "0")
    wait_ready(o)
    t0 = time.monotonic()
    o.p.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert o.p.poll() is None
    assert o.p.wait(3) == 0
    assert 1.0 <= time.monotonic() - t0 < 2.0


def test_spawn_child_graceful_stop(launch):
    e = launch("execution-engine", "--spawn-child", "--start-delay", "0")
    wait_ready(e)
    kids = wait_for(lambda: children(e.pid), 2, what="child")
    assert len(kids) == 1 and alive(kids[0])
    assert os.getpgid(kids[0]) == os.getpgid(e.pid)  # same process group
    e.p.send_signal(signal.SIGTERM)
    assert e.p.wait(3) == 0
    wait_for(lambda: not alive(kids[0]), 2, what="child gone")


def test_spawn_child_survives_sigkill(launch):
    e = launch("execution-engine", "--spawn-child", "--start-delay", "0")
    wait_ready(e)
    child = wait_for(lambda: children(e.pid), 2, what="child")[0]
    e.p.send_signal(signal.SIGKILL)
    e.p.wait(2)
    time.sleep(0.2)
    assert alive(child)
    os.killpg(e.pid, signal.SIGKILL)  # the group outlives its leader
    wait_for(lambda: not alive(child), 2, what="child gone")


def test_hang_health(launch):
    d = launch("dashboard", "--hang-health", "--start-delay", "0")
    wait_for(lambda: port_open(d.port), 2, what="port")
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)) as ei:
        get(d.url("/api/health"), timeout=1)
    if isinstance(ei.value, urllib.error.URLError):
        assert isinstance(ei.value.reason, (socket.timeout, TimeoutError))
    assert port_open(d.port)
    assert get(d.url("/"))[0] == 200  # other paths still answer
    d.p.send_signal(signal.SIGTERM)
    assert d.p.wait(2) == 0  # a hung handler does not block shutdown


@pytest.mark.parametrize("service,status,check", [
    ("orchestrator", 200, lambda b: b["system_health"] == "degraded" and "status" not in b),
    ("execution-engine", 200, lambda b: b["status"] == "degraded" and b["mode"] == "paper"),
    ("market-analysis", 200, lambda b: b["status"] == "degraded" and b["agent"] == "market-analysis"),
    ("dashboard", 500, lambda b: b == {"status": "unhealthy", "service": "tmt-dashboard"}),
])
def test_degraded(launch, service, status, check):
    s = launch(service, "--degraded", "--start-delay", "0")
    path = tmt_sim.HEALTH_PATHS[service]
    wait_for(lambda: status_of(s.url(path)) == status, 3, what="degraded status")
    assert check(get(s.url(path))[1])


def test_exit_after(launch):
    m = launch("market-analysis", "--exit-after", "0.5", "--start-delay", "0")
    wait_ready(m)
    t0 = time.monotonic()
    assert m.p.wait(3) == 1
    assert 0.2 < time.monotonic() - t0 < 2.0
    assert "FATAL" in m.err()


# -- the npm-like wrapper --------------------------------------------------------------------------

def test_wrapper_grandchild_and_hostile_sigterm(launch):
    w = launch("dashboard", "--start-delay", "0", wrap=True)
    wait_ready(w)
    sh = wait_for(lambda: children(w.pid), 2, what="sh child")
    assert len(sh) == 1
    server = wait_for(lambda: children(sh[0]), 2, what="server grandchild")[0]
    assert server != w.pid and os.getpgid(server) == w.pid
    assert "> tmt-dashboard@1.0.0 dev" in w.out()
    # SIGTERM to the wrapper only: it exits 143 and the server keeps running
    w.p.send_signal(signal.SIGTERM)
    assert w.p.wait(2) == 143
    time.sleep(0.3)
    assert alive(server)
    assert status_of(w.url("/api/health")) == 200
    # signalling the whole group stops everything, gracefully
    os.killpg(w.pid, signal.SIGTERM)
    wait_for(lambda: not alive(server) and not alive(sh[0]), 3, what="group gone")
    assert not port_open(w.port)
    assert "stopped" in w.out()


def test_wrapper_passes_exit_code(launch):
    w = launch("market-analysis", "--crash-at-start", wrap=True)
    assert w.p.wait(3) == 3
    assert "simulated crash" in w.err()
