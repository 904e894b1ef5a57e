"""The real TMT services, as the simulator now behaves: an access-log line per request, the orchestrator's 503
"not initialized" for ever after a bad setting, start-up times of the real order. What the toolkit must hold
against them: a start costs a service few requests, a failed start shows its cause, and a 503 past the
service's startup_timeout is unhealthy, never "starting" for ever.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from monitor_support import Monitor
from native_support import port_of, recorded_pids, restart, state_dir
from support import run_script, wait_for

CORE = ("orchestrator", "market-analysis", "execution-engine", "dashboard")
PROBE = re.compile(r'^INFO: +127\.0\.0\.1:\d+ - "GET (/health|/api/health) HTTP/1\.1" \d+$')


def log_of(cfg, service: str) -> str:
    return (state_dir(cfg).parent / "logs" / f"{service}.log").read_text()


def this_run(text: str) -> str:
    return text.rsplit("--- tmt-ops started ", 1)[-1]


def test_a_slow_start_costs_the_service_at_most_ten_requests_a_second(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"],
                        knobs={"orchestrator": ["--start-delay", "3"]})
    began = time.monotonic()
    done = restart(cfg, "--skip-health-check")
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    probes = [line for line in this_run(log_of(cfg, "orchestrator")).splitlines() if PROBE.match(line)]
    assert 1 <= len(probes) <= 10 * 3 + 2, probes  # 3 s of start, at most about 10 a second
    ready = float(re.search(r"orchestrator: ready in ([\d.]+)s", done.stderr).group(1))
    assert ready < 3 + 0.6 + 0.25, done.stderr  # its 3 s, its interpreter's start, then seen within 0.25 s
    assert took < 3 + 3, took


def test_readiness_is_seen_as_soon_as_the_real_order_of_start_up_allows(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    done = restart(cfg, "--skip-health-check", env={"TMT_SIM_START_DELAY": ""})  # the real 1.8 s
    assert done.returncode == 0, done.stderr
    ready = float(re.search(r"orchestrator: ready in ([\d.]+)s", done.stderr).group(1))
    assert 1.8 <= ready < 1.8 + 0.25 + 0.3, ready  # (+ its interpreter's start)


def bad_setting(data):
    data["services"]["orchestrator"]["env"]["OANDA_ENVIRONMENT"] = "pratice"  # a typo the settings refuse
    data["services"]["orchestrator"]["startup_timeout"] = 2


def test_a_failed_start_shows_its_cause_from_this_run_not_the_probes_or_an_earlier_run(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"], edit=bad_setting)
    log = state_dir(cfg).parent / "logs" / "orchestrator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("--- tmt-ops started orchestrator at 2026-01-01 00:00:00 ---\n"
                   + "".join(f"an earlier run's line {n}\n" for n in range(20)))
    done = restart(cfg)
    assert done.returncode == 1, done.stderr
    shown = [line[6:] for line in done.stderr.splitlines() if line.startswith("    | ")]
    assert "not ready after 2s (last probe: HTTP 503: not ready yet)" in done.stderr
    assert any("ValidationError: 1 validation error for Settings" in line for line in shown), shown
    assert "ERROR:    Traceback (most recent call last):" in shown[0], shown  # the cause first, whole, in order
    assert shown[1:4] == ['  File "/app/orchestrator/app/main.py", line 58, in lifespan', "    settings = Settings()",
                          "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings"], shown
    assert not any("earlier run" in line for line in shown), shown
    assert not any(PROBE.match(line) for line in shown), shown


def test_a_permanent_503_is_starting_only_within_the_startup_timeout(registry_file, monitors):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"], edit=bad_setting)
    assert restart(cfg).returncode == 1  # its start failed; the process runs on, answering 503
    pid = recorded_pids(cfg)["orchestrator"]
    # within its startup_timeout of its own start: starting (the pid is 2 s old at most: ask at once)
    assert wait_for(lambda: json.loads(run_script("system-health.py", "--json", "--config", str(cfg)).stdout)
                    ["services"]["orchestrator"]["status"] == "unhealthy", 10)  # ... and then, for ever, not
    text = run_script("system-health.py", "--config", str(cfg))
    assert text.returncode == 2, text.stdout
    assert re.search(r"still not ready after \d+ s \(its startup_timeout is 2 s\)", text.stdout), text.stdout
    nagios = run_script("system-health.py", "--format", "nagios", "--config", str(cfg))
    assert nagios.returncode == 2 and nagios.stdout.startswith("SYSTEM-HEALTH CRITICAL"), nagios.stdout
    prom = run_script("system-health.py", "--format", "prometheus", "--config", str(cfg))
    assert 'tmt_health_check_up{service="orchestrator"' in prom.stdout
    assert re.search(r'tmt_health_check_up\{service="orchestrator"[^}]*\} 0', prom.stdout), prom.stdout
    m = monitors(cfg, "--monitor", "--heal", "--json", "--interval", "0.5", serve=None)
    attempt = m.wait_event(lambda e: e["type"] == "heal" and e["event"] == "attempt", timeout=30)
    assert attempt and attempt["services"] == ["orchestrator"], m.text()  # stuck counts as down for --heal
    rounds = [e for e in (json.loads(line) for line in m.out if line.startswith("{")) if e["type"] == "round"]
    judged = rounds[0]["services"]["orchestrator"]
    assert judged["status"] == "unhealthy" and judged["backend"]["pids"] == [pid], judged
