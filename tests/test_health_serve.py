"""system-health.py --serve end to end: the real script serving the simulated stack (real infrastructure where
installed) on free ports; its answers read over real sockets and checked against the IETF draft's shape and
the Prometheus text format (parsed with prometheus_client's own parser)."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import sys
import time

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

import realservers as rs
from monitor_support import Monitor
from support import REPO, run_script
from tmt_ops import __version__

SCHEMA = json.loads((REPO / "tmt_ops" / "health" / "schema.json").read_text())
ISO_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
# draft-inadarei-api-health-check: the response document, and a check object ("component:measurement" keys)
HEALTH_JSON = {
    "type": "object", "required": ["status"],
    "properties": {
        "status": {"enum": ["pass", "warn", "fail"]},
        "version": {"type": "string"}, "releaseId": {"type": "string"}, "serviceId": {"type": "string"},
        "description": {"type": "string"}, "output": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "checks": {
            "type": "object", "propertyNames": {"pattern": "^[^:]+:[^:]+$"},
            "additionalProperties": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["componentId", "componentType", "status", "time"],
                "properties": {
                    "componentId": {"type": "string"},
                    "componentType": {"type": "string"},  # the draft names component, datastore, system
                    "observedValue": {}, "observedUnit": {"type": "string"},
                    "status": {"enum": ["pass", "warn", "fail"]},
                    "affectedEndpoints": {"type": "array", "items": {"type": "string"}},
                    "time": {"type": "string", "pattern": ISO_TIME},
                    "output": {"type": "string"},
                    "links": {"type": "object"}}}}}}}
CONVENTIONAL = {"tmt_health_cpu_busy_ratio", "tmt_health_memory_used_ratio", "tmt_health_disk_used_ratio",
                "tmt_health_last_round_timestamp_seconds", "tmt_health_build_info"}
DEPRECATED = {"tmt_health_cpu_busy_percent", "tmt_health_memory_used_percent", "tmt_health_disk_used_percent"}


def metric_families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def served(healthy):
    monitor = Monitor(healthy.path, "--interval", "0.3")
    try:
        monitor.wait_http("/readyz", lambda status, body: status == 200)
        yield monitor
    finally:
        monitor.stop()


# -- the endpoints ---------------------------------------------------------------------------------------------
def test_health_is_the_drafts_document_200_while_all_pass(served, healthy):
    status, headers, body = served.request("/health")
    assert status == 200 and headers["content-type"] == "application/health+json"
    document = json.loads(body)
    jsonschema.validate(document, HEALTH_JSON)
    assert document["status"] == "pass" and document["releaseId"] == __version__ and "output" not in document
    checks = document["checks"]
    assert {f"{name}:responseTime" for name in healthy.registry.services} <= set(checks)
    assert {"cpu:utilization", "memory:utilization", "disk:utilization", "cpu:loadPerCpu"} <= set(checks)
    orchestrator = checks["orchestrator:responseTime"][0]
    assert (orchestrator["componentType"], orchestrator["observedUnit"], orchestrator["status"]) == \
        ("component", "ms", "pass")
    assert isinstance(orchestrator["observedValue"], float) and "output" not in orchestrator
    if "postgres" in healthy.registry.services:
        assert checks["postgres:responseTime"][0]["componentType"] == "datastore"
    assert {e["componentId"] for e in checks["disk:utilization"]} >= {"/"}


def test_metrics_parse_with_prometheus_clients_parser_old_names_deprecated(served, healthy):
    status, headers, body = served.request("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    families = metric_families(body.decode())
    assert CONVENTIONAL | DEPRECATED <= set(families)
    for old in DEPRECATED:
        new = old.replace("_percent", "_ratio")
        assert families[old].documentation.startswith(f"DEPRECATED: use {new}"), families[old].documentation
        for ratio, percent in zip(families[new].samples, families[old].samples):
            assert ratio.labels == percent.labels and 0 <= ratio.value <= 1
            assert ratio.value == pytest.approx(percent.value / 100, abs=1e-6)
    (stamp,) = families["tmt_health_last_round_timestamp_seconds"].samples
    assert abs(stamp.value - time.time()) < 30
    (build,) = families["tmt_health_build_info"].samples
    assert build.labels == {"version": __version__} and build.value == 1
    up = {s.labels["service"]: s.value for s in families["tmt_health_check_up"].samples}
    assert up == {name: 1 for name in healthy.registry.services}


def test_the_textfile_parses_too_with_the_same_families(served, healthy):
    proc = run_script("system-health.py", "--config", str(healthy.path), "--mode", "native", "--format", "prometheus")
    assert proc.returncode == 0, proc.stderr
    _, _, served_text = served.request("/metrics")
    assert set(metric_families(proc.stdout)) == set(metric_families(served_text.decode()))


def test_one_shot_health_json_format(healthy):
    proc = run_script("system-health.py", "--config", str(healthy.path), "--mode", "native", "--format", "health+json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    jsonschema.validate(document, HEALTH_JSON)
    assert document["status"] == "pass"


def test_livez_readyz_head_keep_alive_and_nothing_but_get(served):
    assert served.request("/livez")[::2] == (200, b"live\n")
    status, _, body = served.request("/readyz")
    assert status == 200 and re.match(rb"ready: round #\d+ is healthy", body), body
    get_status, get_headers, get_body = served.request("/health")
    head_status, head_headers, head_body = served.request("/health", "HEAD")
    assert head_status == 200 and head_body == b""
    assert head_headers["content-type"] == "application/health+json" and int(head_headers["content-length"]) > 0
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
        status, headers, body = served.request("/health", method, body=b"x=1")
        assert status == 405 and headers["allow"] == "GET, HEAD", (method, status)
    assert served.request("/nothing-here")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)  # HTTP/1.1 keep-alive: one connection
    try:
        conn.connect()
        first = conn.sock
        for path in ("/health", "/metrics", "/livez", "/api/rounds", "/"):
            conn.request("GET", path)
            answer = answer_ = conn.getresponse()
            assert answer.status == 200 and answer_.read()
            assert conn.sock is first and answer.getheader("connection") != "close"
    finally:
        conn.close()


def test_requests_never_probe(healthy, monitors):
    slow = monitors(healthy.path, "--interval", "60")
    slow.wait_http("/readyz", lambda status, body: status == 200)
    first = slow.request("/health")[2]
    started = time.monotonic()
    for _ in range(150):
        for path in ("/health", "/metrics", "/api/rounds", "/readyz"):
            assert slow.request(path)[0] == 200
    assert time.monotonic() - started < 60  # all within the first round's interval
    assert slow.get_json("/api/rounds")["round"] == 1 and slow.request("/health")[2] == first
    assert [line for line in slow.out if line.startswith("round ")] == [slow.out[-1]]  # one round only


def test_the_page_needs_nothing_from_elsewhere(served):
    status, headers, page = served.request("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    assert b'src="/status.js"' in page and b'href="/status.css"' in page
    for path in ("/", "/status.js", "/status.css"):
        text = served.request(path)[2].decode().replace('"http://www.w3.org/2000/svg"', "")  # a name, not a fetch
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path  # no CDN, no other host
    status, headers, body = served.request("/api/rounds")
    data = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    jsonschema.validate(data["latest"], SCHEMA)
    assert data["round"] >= 1 and data["history"][-1]["round"] == data["round"]
    assert set(data["history"][-1]["checks"]) == set(data["latest"]["services"]) | set(data["latest"]["infrastructure"])


# -- faults ------------------------------------------------------------------------------------------------------
def test_critical_is_503_on_health_and_readyz(stack, monitors):
    s = stack()
    s.wait()
    m = monitors(s.path, "--interval", "0.3")
    m.wait_http("/health", lambda status, body: status == 200)
    s.procs["orchestrator"].stop()
    status, _, body = m.wait_http("/health", lambda status, body: status == 503)
    document = json.loads(body)
    jsonschema.validate(document, HEALTH_JSON)
    assert document["status"] == "fail" and document["checks"]["orchestrator:responseTime"][0]["status"] == "fail"
    assert "orchestrator" in document["output"]
    status, _, body = m.request("/readyz")
    assert status == 503 and b"critical" in body
    assert m.request("/livez")[0] == 200


def test_a_foreign_answer_is_not_healthy_and_no_secret_reaches_any_answer(stack, monitors, tmp_path):
    secret, password = "sk-live-0123456789abcdef", "S3cretPassw0rd-xyz"
    url = f"postgresql://trader:{password}@127.0.0.1:5432/trading_system"
    s = stack(start=("orchestrator", "market-analysis", "execution-engine"),
              env={"OANDA_API_KEY": "${TMT_TEST_OANDA_KEY}", "DATABASE_URL": url})
    port = s.port("dashboard")
    body = json.dumps({"status": "healthy", "token": secret, "database": url})
    script = ("import sys, http.server\n"
              "class H(http.server.BaseHTTPRequestHandler):\n"
              "    def do_GET(self):\n"
              "        data = sys.argv[2].encode()\n"
              "        self.send_response(200); self.send_header('Content-Length', str(len(data))); self.end_headers()\n"
              "        self.wfile.write(data)\n"
              "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n")
    foreign = rs.Proc([sys.executable, "-c", script, str(port), body], tmp_path / "foreign.log")
    try:
        rs.wait_listening(foreign, port)
        s.wait()
        m = monitors(s.path, "--interval", "0.3", env={"TMT_TEST_OANDA_KEY": secret})
        m.wait_http("/api/rounds", lambda status, body: json.loads(body)["round"] >= 2)
        answers = {path: m.request(path)[2].decode() for path in
                   ("/health", "/metrics", "/api/rounds", "/readyz", "/livez", "/", "/status.js")}
        m.stop()
    finally:
        foreign.stop()
    dashboard = json.loads(answers["/health"])["checks"]["dashboard:responseTime"][0]
    assert dashboard["status"] == "warn" and "not running" in dashboard["output"]  # non-critical: a warning
    assert f"pid {foreign.pid}" in dashboard["output"]
    assert 'tmt_health_check_up{service="dashboard",group="core",critical="false"} 0' in answers["/metrics"]
    details = json.loads(answers["/api/rounds"])["latest"]["services"]["dashboard"]["details"]
    assert details["token"] == "***" and "trader:***@" in details["database"]  # it was there to leak
    texts = [*answers.values(), m.text(), *(p.read_text() for p in s.registry.log_dir.glob("tmt-ops.log*"))]
    for text in texts:
        assert secret not in text and password not in text


def test_a_port_in_use_is_one_line_and_exit_3(healthy):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = run_script("system-health.py", "--config", str(healthy.path), "--serve", f"127.0.0.1:{port}")
    assert proc.returncode == 3 and proc.stdout == "", proc.stdout
    assert proc.stderr == (f"error: --serve 127.0.0.1:{port}: cannot listen there (Address already in use): "
                           "another process listens there; stop it or choose another port\n")
    assert time.monotonic() - started < 10  # at once, before any round


@pytest.mark.parametrize("args, words", [
    (["--serve", "abc"], "the port must be a number"), (["--serve", "127.0.0.1:70000"], "from 0 to 65535"),
    (["--serve", "::1:9464"], "an IPv6 address goes in brackets"), (["--heal"], "--heal acts between monitor rounds"),
    (["--serve", "0", "--timeout", "5"], "--timeout bounds a one-shot check"),
    (["--interval", "1"], "--interval and --count apply to --monitor (or --serve) only"),
])
def test_bad_serve_and_heal_arguments_are_one_line_and_exit_3(healthy, args, words):
    proc = run_script("system-health.py", "--config", str(healthy.path), *args)
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_end_it_cleanly_with_the_last_rounds_code(healthy, monitors, sig):
    m = monitors(healthy.path, "--interval", "0.3")
    m.wait_http("/readyz", lambda status, body: status == 200)
    began = time.monotonic()
    assert m.stop(sig) == 0 and time.monotonic() - began < 5
    assert "Traceback" not in m.text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", m.port), timeout=2).close()


def test_a_reader_that_goes_away_does_not_end_the_server(healthy, monitors):
    """`system-health.py --serve ... | head -1`: the HTTP answers are its data; the lines were commentary."""
    m = monitors(healthy.path, "--interval", "0.2", follow_stdout=False)
    assert m.out[0].startswith("serving http://127.0.0.1:")
    m.proc.stdout.close()  # the reader has gone
    before = m.wait_http("/api/rounds", lambda status, body: json.loads(body)["round"] >= 1)[2]
    m.wait_http("/api/rounds", lambda status, body: json.loads(body)["round"] >= json.loads(before)["round"] + 3)
    assert m.request("/livez")[0] == 200
    assert m.stop() == 0 and "Traceback" not in "\n".join(m.err)


def test_the_state_directory_deleted_while_serving_and_healing(stack, monitors):
    s = stack()
    s.wait()
    m = monitors(s.path, "--interval", "0.2", "--heal")
    round_now = m.wait_http("/api/rounds", lambda status, body: json.loads(body)["round"] >= 1)
    shutil.rmtree(s.registry.state_dir, ignore_errors=True)
    target = json.loads(round_now[2])["round"] + 5
    m.wait_http("/api/rounds", lambda status, body: json.loads(body)["round"] >= target)
    status, _, body = m.request("/health")
    assert status == 200 and json.loads(body)["status"] == "pass"
    assert m.stop() == 0 and "Traceback" not in m.text()
