"""The real TMT services, as the simulator now behaves: an access-log line per request, the orchestrator's 503
"not initialized" for ever after a bad setting, start-up times of the real order. What the toolkit must hold
against them: a start costs a service few requests, a failed start shows its cause, and a 503 past the
service's startup_timeout is unhealthy, never "starting" for ever.
"""

from __future__ import annotations

import json
import re
import sys
import time

import psutil
import yaml

from native_support import port_of, recorded_pids, restart, state_dir
from support import REPO, run_script, wait_for

CORE = ("orchestrator", "market-analysis", "execution-engine", "dashboard")
PROBE = re.compile(r'^INFO: +127\.0\.0\.1:\d+ - "GET (/health|/api/health) HTTP/1\.[01]" \d+$')


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


# -- what the registry must say for the real services -----------------------------------------------------------------
def only_orchestrator(registry_file, edit=None):
    return registry_file(drop=["market-analysis", "execution-engine", "dashboard"], edit=edit)


def test_env_files_reach_the_service_masked_and_a_missing_one_is_a_preflight_error(registry_file, tmp_path):
    secret = "env-file-key-93c1a7"
    (tmp_path / "project.env").write_text("# the project's\nexport OANDA_ENVIRONMENT=live\nSHARED='from the project'\n")
    (tmp_path / "orchestrator.env").write_text(f'OANDA_API_KEY="{secret}"\nSHARED=${{SHARED}} and the service\n'
                                               "MESSAGE_BROKER_URL=redis://localhost:6379 # the real one's\n")

    def files(data):
        data["project"]["env_file"] = str(tmp_path / "project.env")
        data["services"]["orchestrator"]["env_file"] = str(tmp_path / "orchestrator.env")
        data["services"]["orchestrator"]["env"].pop("OANDA_API_KEY")
        data["services"]["orchestrator"]["env"].pop("OANDA_ENVIRONMENT")
    cfg = only_orchestrator(registry_file, files)
    done = restart(cfg)
    assert done.returncode == 0, done.stderr
    environ = psutil.Process(recorded_pids(cfg)["orchestrator"]).environ()
    assert environ["OANDA_API_KEY"] == secret and environ["OANDA_ENVIRONMENT"] == "live"
    assert environ["SHARED"] == "from the project and the service"
    assert environ["MESSAGE_BROKER_URL"] == "redis://localhost:6379"
    shown = run_script("restart-trading-system.py", "--config", str(cfg), "--dry-run", "-v")
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    assert secret not in done.stderr + shown.stderr + log
    (tmp_path / "orchestrator.env").unlink()
    refused = restart(cfg)
    assert refused.returncode == 2, refused.stderr
    assert f"preflight: orchestrator: env_file {tmp_path / 'orchestrator.env'} does not exist" in refused.stderr
    assert recorded_pids(cfg)["orchestrator"] == psutil.Process(recorded_pids(cfg)["orchestrator"]).pid


def test_the_body_field_the_registry_names_decides_and_trading_off_is_degraded(registry_file):
    cfg = only_orchestrator(registry_file)
    assert restart(cfg).returncode == 0
    port = port_of(cfg, "orchestrator")
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/trading/disable", data=b"",
                                                  method="POST"), timeout=3).read()
    report = json.loads(run_script("system-health.py", "--json", "--config", str(cfg)).stdout)
    check = report["services"]["orchestrator"]
    assert (check["status"], check["error"]) == ("degraded", "trading_enabled is false"), check


def test_an_integer_from_a_variable_and_a_program_relative_to_the_services_directory(registry_file, tmp_path):
    service_dir = tmp_path / "orchestrator"
    (service_dir / ".venv" / "bin").mkdir(parents=True)
    (service_dir / ".venv" / "bin" / "python").symlink_to(sys.executable)  # its own virtual environment
    from support import free_ports
    port = free_ports(1)[0]

    def real_layout(data):
        svc = data["services"]["orchestrator"]
        svc.update(port="${TMT_TEST_ORCHESTRATOR_PORT}", cwd=str(service_dir),
                   command=[".venv/bin/python", "-m", "tmt_sim", "orchestrator", "--port", "{port}"])
        svc["env"]["PYTHONPATH"] = str(REPO)
    cfg = only_orchestrator(registry_file, real_layout)
    done = restart(cfg, env={"TMT_TEST_ORCHESTRATOR_PORT": str(port)})
    assert done.returncode == 0, done.stderr
    process = psutil.Process(recorded_pids(cfg)["orchestrator"])
    assert process.cmdline()[0] == str(service_dir / ".venv" / "bin" / "python") and process.cwd() == str(service_dir)
    assert any(c.laddr.port == port for c in process.net_connections("inet"))
    wrong = restart(cfg, env={"TMT_TEST_ORCHESTRATOR_PORT": "80OO"})
    assert wrong.returncode == 2 and "port: expected an integer, got string '80OO'" in wrong.stderr, wrong.stderr


def build_script(exit_code: int) -> str:
    return ("import pathlib, sys; print('building'); pathlib.Path('built.txt').write_text(pathlib.Path('src/app.js')"
            f".read_text()); print('error: it broke') if {exit_code} else None; sys.exit({exit_code})")


def build_registry(registry_file, tmp_path):
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "app.js").write_text("v1\n")

    def build(data):
        data["services"]["orchestrator"]["build"] = {"command": ["python", "-c", build_script(0)],
                                                     "inputs": ["src/**/*"]}
        data["services"]["orchestrator"]["cwd"] = str(tmp_path)
        data["services"]["orchestrator"]["env"]["PYTHONPATH"] = str(REPO)
    return only_orchestrator(registry_file, build)


def test_a_build_runs_before_anything_stops_only_when_its_inputs_changed(registry_file, tmp_path):
    cfg = build_registry(registry_file, tmp_path)
    first = restart(cfg)
    assert first.returncode == 0 and "orchestrator: built in" in first.stderr, first.stderr
    assert first.stderr.index("built in") < first.stderr.index("wave 1")
    assert (tmp_path / "built.txt").read_text() == "v1\n"
    again = restart(cfg)
    assert again.returncode == 0 and "built in" not in again.stderr  # nothing changed: no build
    (tmp_path / "src" / "app.js").write_text("v2\n")
    assert "built in" not in restart(cfg, "--no-build").stderr and (tmp_path / "built.txt").read_text() == "v1\n"
    changed = restart(cfg)
    assert "built in" in changed.stderr and (tmp_path / "built.txt").read_text() == "v2\n"


def test_a_failing_build_stops_nothing_and_shows_its_output(registry_file, tmp_path):
    cfg = build_registry(registry_file, tmp_path)
    assert restart(cfg).returncode == 0
    before = recorded_pids(cfg)
    data = yaml.safe_load(cfg.read_text())
    data["services"]["orchestrator"]["build"]["command"][2] = build_script(3)
    broken = cfg.with_name("broken-build.yaml")
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "src" / "app.js").write_text("v3\n")
    done = restart(broken)
    assert done.returncode == 1, done.stderr
    assert "orchestrator: its build exited with code 3; nothing was stopped" in done.stderr
    assert "    | error: it broke" in done.stderr and "Traceback" not in done.stderr
    assert recorded_pids(cfg) == before and psutil.pid_exists(before["orchestrator"])
