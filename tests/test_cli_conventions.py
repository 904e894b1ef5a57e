"""What the scripts share as commands on a host: where the registry is found, --version, --quiet and --verbose,
and system-health as a monitoring plugin (-t/--timeout, -V, an UNKNOWN line on stdout)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import realservers as rs
from health_stack import CALM
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
    def calm(data):  # a busy test host's load is no problem of this test's
        data["health"]["thresholds"] = dict(CALM)
    cfg = registry_file(drop=INFRA, edit=calm)  # nothing optional missing: nothing to warn about
    done = script("restart-trading-system.py", "--config", str(cfg), "--quiet")
    # nothing but how it ended: the closing line is shown with --quiet too
    assert done.returncode == 0 and done.stderr == "4 service(s) running and healthy\n" and done.stdout == ""
    log = (cfg.parent / "logs" / "tmt-ops.log").read_text()
    assert "wave 1: starting orchestrator" in log and "4 service(s) running and healthy" in log
    health = script("system-health.py", "--config", str(cfg), "--quiet")
    assert health.returncode == 0 and health.stdout == ""
    stop = script("stop-trading-system.py", "--config", str(cfg), "--quiet", "--only", "dashboard")
    assert stop.returncode == 0 and stop.stderr == "stopped 1 service(s)\n"
    problem = script("system-health.py", "--config", str(cfg), "-q")
    assert problem.returncode == 1 and problem.stdout.startswith("Issues (0 critical):")  # the dashboard is down
    assert "dashboard" in problem.stdout and "SERVICE" not in problem.stdout
    script("stop-trading-system.py", "--config", str(cfg))


def test_quiet_on_a_fresh_machine_is_one_line_for_the_missing_infrastructure_and_the_closing_line(registry_file):
    """The shipped registry's optional PostgreSQL, Redis and Kafka, none of them there: one warning for the three,
    not a line each, then how it ended."""
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    done = script("restart-trading-system.py", "--config", str(cfg), "-q")
    assert done.returncode == 0 and done.stdout == "", done.stderr
    warning, closing = done.stderr.splitlines()
    assert warning.startswith("optional dependencies that do not answer (starting anyway): PostgreSQL (connection "
                              "refused on 127.0.0.1:"), warning
    assert "Redis (connection refused" in warning and "Kafka (connection refused" in warning
    assert closing == "1 service(s) running and healthy"
    stop = script("stop-trading-system.py", "--config", str(cfg), "-q")
    assert stop.returncode == 0 and stop.stderr == "stopped 1 service(s)\n"


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
    # TMT_CONFIG before ./config/services.yaml, and --config before both
    chosen = script("system-health.py", "--json", cwd=here, env={**env, "TMT_CONFIG": str(cfg)})
    assert f'"address": "127.0.0.1:{_port(cfg)}"' in chosen.stdout
    flag = script("system-health.py", "--config", str(here / "config" / "services.yaml"), cwd=empty,
                  env={**env, "TMT_CONFIG": str(cfg)})
    assert flag.returncode == 3 and "no services are defined" in flag.stderr


def test_the_places_a_registry_is_looked_for_in_order(tmp_path):
    """The order of the fallbacks, /etc/tmt-ops last but the checkout's own (the test never writes to /etc)."""
    from tmt_ops.registry.loader import config_places
    places = config_places({"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert places[:3] == [Path("config/services.yaml"), tmp_path / "xdg" / "tmt-ops" / "services.yaml",
                          Path("/etc/tmt-ops/services.yaml")]
    assert places[3:] == [REPO / "config" / "services.yaml"]  # running from this checkout


def _port(cfg) -> int:
    import yaml
    return yaml.safe_load(cfg.read_text())["services"]["orchestrator"]["port"]


def test_python_m_tmt_ops_runs_the_scripts_by_name():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "tmt_ops", "health", "--version"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0 and " -m tmt_ops health (tmt-ops) " in done.stdout  # named as it runs here


@pytest.mark.parametrize("args, codes", [
    (["system-health.py", "--json"], {0, 1, 2}),
    (["system-health.py", "--format", "nagios"], {0, 1, 2}),
    (["system-health.py", "--monitor", "--json", "--count", "2", "--interval", "0.1"], {0, 1, 2}),
    (["docker-restart.py", "--mode", "docker", "status", "--json"], {1, 2}),  # nothing runs (2: no engine)
])
def test_a_script_started_with_its_stdout_closed_ends_quietly(registry_file, args, codes):
    """`cmd >&-`: Python's sys.stdout is None; the verdict still decides the exit code, never a traceback."""
    cfg = registry_file()
    command = " ".join([sys.executable, str(REPO / args[0]), "--config", str(cfg), *args[1:]])
    done = subprocess.run(["bash", "-c", f"{command} >&-"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode in codes, done.stderr
    assert "Traceback" not in done.stderr


def test_the_final_error_line_reaches_the_toolkit_log_masked(registry_file):
    def edit(data):
        data["services"]["orchestrator"]["command"] = ["/opt/${OANDA_API_KEY}/bin/orchestrator"]
    cfg = registry_file(edit=edit)
    done = script("restart-trading-system.py", "--config", str(cfg), env={"OANDA_API_KEY": "sk-live-4242abcd"})
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: preflight found 1 problem(s)")
    log = (cfg.parent / "logs" / "tmt-ops.log").read_text()
    assert last in log  # the final line too, not only the progress before it
    assert "/opt/***/bin/orchestrator" in log and "sk-live-4242abcd" not in log + done.stderr


def test_a_check_that_ends_near_its_timeout_is_its_verdict_or_unknown_never_killed(registry_file):
    """The timer is disarmed when the check ends: no SIGALRM after the verdict (exit 142), whatever the timing."""
    cfg = registry_file()
    for seconds in ("0.12", "0.2", "0.3", "0.5"):
        done = script("system-health.py", "--config", str(cfg), "--format", "nagios", "-t", seconds)
        assert done.returncode in (0, 1, 2, 3), (seconds, done.returncode, done.stderr)
        assert done.stdout.startswith("SYSTEM-HEALTH ") and "Traceback" not in done.stderr
    huge = script("system-health.py", "--config", str(cfg), "-t", "1e10")
    assert huge.returncode == 3 and "from 0.01 to 86400 (seconds), got 1e10" in huge.stderr and "Traceback" not in huge.stderr
