"""What the scripts share as commands on a host: where the registry is found, --version, --quiet and --verbose,
and system-health as a monitoring plugin (-t/--timeout, -V, an UNKNOWN line on stdout)."""

from __future__ import annotations

import os
import re
import time

import pytest

import realservers as rs
from support import REPO, run_script

INFRA = ["postgres", "redis", "kafka", "prometheus", "grafana", "jaeger", "vault"]


def script(name, *args, **kw):
    return run_script(name, *args, timeout=120, **kw)


@pytest.mark.parametrize("name", ["restart-trading-system.py", "stop-trading-system.py", "quick-restart.py",
                                  "docker-restart.py", "system-health.py"])
def test_every_script_says_its_version(name):
    done = script(name, "--version")
    assert done.returncode == 0 and re.fullmatch(rf"{re.escape(name)} \(tmt-ops\) \d+\.\d+\.\d+\n", done.stdout)


def test_quiet_prints_problems_only_and_the_log_keeps_everything(registry_file):
    cfg = registry_file(drop=INFRA)  # nothing optional missing: nothing to warn about
    done = script("restart-trading-system.py", "--config", str(cfg), "--quiet")
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""
    log = (cfg.parent / "logs" / "tmt-ops.log").read_text()
    assert "4 service(s) running and healthy" in log
    health = script("system-health.py", "--config", str(cfg), "--quiet")
    assert health.returncode == 0 and health.stdout == ""
    stop = script("stop-trading-system.py", "--config", str(cfg), "--quiet", "--only", "dashboard")
    assert stop.returncode == 0 and stop.stderr == ""
    problem = script("system-health.py", "--config", str(cfg), "-q")
    assert problem.returncode == 1 and problem.stdout.startswith("Issues (0 critical):")  # the dashboard is down
    assert "dashboard" in problem.stdout and "SERVICE" not in problem.stdout
    script("stop-trading-system.py", "--config", str(cfg))


def test_verbose_shows_the_plan_before_it_runs_and_what_each_probe_read(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    done = script("restart-trading-system.py", "--config", str(cfg), "--verbose")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^plan: wave 1: start orchestrator on port \d+", done.stderr, re.M)
    health = script("system-health.py", "--config", str(cfg), "-v")
    assert re.search(r"^orchestrator: http http://\S+ answered \{\"system_health\": \"healthy\"", health.stdout, re.M)
    script("stop-trading-system.py", "--config", str(cfg))


def test_a_check_over_its_timeout_is_unknown_with_a_plugin_line(registry_file):
    def slow(data):
        data["services"]["orchestrator"]["health"]["timeout"] = 5
        data["health"]["deadline"] = 10
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"], edit=slow)
    silent = rs.Silent(_port(cfg))  # accepts the connection, never answers: the probe waits its 5 s
    try:
        began = time.monotonic()
        done = script("system-health.py", "--config", str(cfg), "--format", "nagios", "-t", "1")
        took = time.monotonic() - began
    finally:
        silent.stop()
    assert done.returncode == 3 and took < 4, took
    assert done.stdout == "SYSTEM-HEALTH UNKNOWN - the check did not finish within its timeout of 1s (-t/--timeout)\n"


def test_a_check_that_cannot_run_is_an_unknown_plugin_line_on_stdout(tmp_path):
    done = script("system-health.py", "--config", str(tmp_path / "missing.yaml"), "--format", "nagios")
    assert done.returncode == 3
    assert done.stdout.startswith("SYSTEM-HEALTH UNKNOWN - ") and "registry not found" in done.stdout
    for bad in (["-t", "0"], ["-t", "nan"], ["--monitor", "-t", "5"]):
        assert script("system-health.py", *bad).returncode == 3, bad


def test_the_registry_is_found_here_then_in_the_users_configuration(registry_file, tmp_path):
    cfg = registry_file(drop=INFRA)
    xdg = tmp_path / "xdg"
    (xdg / "tmt-ops").mkdir(parents=True)
    (xdg / "tmt-ops" / "services.yaml").write_text(cfg.read_text())
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TMT_CONFIG"}
    done = script("system-health.py", "--json", cwd=empty, env={**env, "XDG_CONFIG_HOME": str(xdg)})
    assert f'"address": "127.0.0.1:{_port(cfg)}"' in done.stdout  # the user's registry, not the checkout's
    here = tmp_path / "here"
    (here / "config").mkdir(parents=True)
    (here / "config" / "services.yaml").write_text("services: {}\n")  # ./config/services.yaml comes first
    first = script("system-health.py", cwd=here, env={**env, "XDG_CONFIG_HOME": str(xdg)})
    assert first.returncode == 3 and "config/services.yaml: services: no services are defined" in first.stderr


def _port(cfg) -> int:
    import yaml
    return yaml.safe_load(cfg.read_text())["services"]["orchestrator"]["port"]


def test_python_m_tmt_ops_runs_the_scripts_by_name():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "tmt_ops", "health", "--version"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("system-health.py (tmt-ops)")
