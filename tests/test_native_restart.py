"""restart-trading-system.py / quick-restart.py in native mode against the simulated stack."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from native_support import (alive, only_the_engine_for_the_dashboard, port_of, recorded_pids, restart,
                            slow_dashboard_stack, state_dir, stop)
from support import REPO, run_script, wait_for
from tmt_ops.backends import Deployment, resolve_mode
from tmt_ops.lock import holder
from tmt_ops.ports import port_open
from tmt_ops.registry import load_registry

NO_DASHBOARD = ["dashboard"]


def test_full_restart_then_stop(registry_file):
    cfg = registry_file()
    result = restart(cfg)
    assert result.returncode == 0, result.stderr
    pids = recorded_pids(cfg)
    assert set(pids) == {"orchestrator", "market-analysis", "execution-engine", "dashboard"}
    # dependency order: each wave starts once the one before is ready
    order = [result.stderr.index(f"{name}: ready in") for name in
             ("orchestrator", "market-analysis", "execution-engine", "dashboard")]
    assert order == sorted(order)
    assert "SERVICE" in result.stderr and "READY" in result.stderr and "running and healthy" in result.stderr
    registry = load_registry(cfg)
    assert resolve_mode("auto", registry) == ("native", True)
    native = Deployment(registry, "native").default
    assert {s.state.value for s in native.statuses(registry.managed).values()} == {"running"}

    # a second restart replaces every process
    again = restart(cfg, "--skip-health-check")
    assert again.returncode == 0, again.stderr
    new = recorded_pids(cfg)
    assert all(new[n] != pids[n] and not alive(pids[n]) for n in pids)

    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    assert recorded_pids(cfg) == {}
    assert not any(port_open("127.0.0.1", port_of(cfg, n), 0.2) for n in pids)
    assert not native.detect(registry)


def test_a_service_starts_once_its_own_dependencies_are_ready_not_once_its_whole_wave_is(registry_file):
    """market-analysis is slow (4 s). The dashboard starts once the execution engine answers: ready before
    market-analysis is, so the restart takes the graph's critical path (orchestrator, then market-analysis)
    instead of the sum of its waves' slowest (orchestrator, market-analysis, then the dashboard after it)."""
    def edit(data):
        only_the_engine_for_the_dashboard(data)
        data["services"]["market-analysis"]["command"] += ["--start-delay", "4"]
    cfg = registry_file(edit=edit)
    result = restart(cfg)
    assert result.returncode == 0, result.stderr
    ready = {name: result.stderr.index(f"{name}: ready in") for name in
             ("orchestrator", "market-analysis", "execution-engine", "dashboard")}
    assert ready["orchestrator"] < ready["execution-engine"] < ready["dashboard"] < ready["market-analysis"], \
        result.stderr
    # the plan's waves still name the lines: the dashboard is of wave 3, started while wave 2 still boots
    assert "wave 2: starting market-analysis, execution-engine" in result.stderr
    assert result.stderr.index("wave 3: starting dashboard") < ready["market-analysis"]
    assert "4 service(s) running and healthy" in result.stderr
    assert stop(cfg).returncode == 0


def test_a_service_stops_once_its_own_dependents_have_not_once_the_wave_before_has(registry_file):
    """The dashboard takes 3 s to shut down. market-analysis, which nothing needs now (of the stop's second wave),
    stops beside it at once; the execution engine only once the dashboard has exited, the orchestrator last:
    the stop takes the graph's critical path of shutdowns, not the sum of its waves' slowest."""
    cfg, pids = slow_dashboard_stack(registry_file, 3)
    plan = stop(cfg, "--dry-run")
    assert "stop wave 1: dashboard" in plan.stderr and "stop wave 2: market-analysis" in plan.stderr, plan.stderr
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    said = {name: result.stderr.index(f"{name}: stopped") for name in pids}
    assert said["market-analysis"] < said["dashboard"] < said["execution-engine"] < said["orchestrator"], \
        result.stderr
    assert recorded_pids(cfg) == {} and not any(alive(pid) for pid in pids.values())


def test_auto_mode_finds_the_stack_when_its_first_recorded_service_died(registry_file):
    """--mode auto asks first whether the first recorded service runs (one look for a running system); when that
    one died, its record left behind, every service is looked at and the others are found."""
    cfg = registry_file(drop=NO_DASHBOARD)
    assert restart(cfg, "--skip-health-check").returncode == 0
    registry = load_registry(cfg)
    native = Deployment(registry, "native").default
    assert native.detect(registry)
    os.killpg(recorded_pids(cfg)["orchestrator"], signal.SIGKILL)
    assert wait_for(lambda: not port_open("127.0.0.1", port_of(cfg, "orchestrator"), 0.2), 5)
    assert "orchestrator" in recorded_pids(cfg)  # its record is left: the first one detect looks at
    assert native.detect(registry) and resolve_mode("auto", registry) == ("native", True)
    assert stop(cfg).returncode == 0
    assert not native.detect(registry)


def test_restart_one_service_restarts_its_dependents_only(registry_file):
    cfg = registry_file(drop=NO_DASHBOARD)
    assert restart(cfg, "--skip-health-check").returncode == 0
    before = recorded_pids(cfg)

    plan = restart(cfg, "--only", "market-analysis", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert re.search(rf"market-analysis: SIGTERM to (process group|cgroup \S+) \(?pids {before['market-analysis']}\b",
                     plan.stderr), plan.stderr
    assert "orchestrator" not in plan.stderr.split("dry run")[1].split("wave 1: start")[0].replace(
        "wave 1: probe Orchestrator", "")
    assert recorded_pids(cfg) == before  # a dry run changes nothing

    result = restart(cfg, "--only", "market-analysis")
    assert result.returncode == 0, result.stderr
    after = recorded_pids(cfg)
    assert after["orchestrator"] == before["orchestrator"]
    assert after["market-analysis"] != before["market-analysis"]
    assert after["execution-engine"] != before["execution-engine"]

    result = restart(cfg, "--only", "market-analysis", "--no-deps", "--skip-health-check")
    assert result.returncode == 0, result.stderr
    last = recorded_pids(cfg)
    assert last["execution-engine"] == after["execution-engine"] and last["market-analysis"] != after["market-analysis"]


def test_crash_at_start_shows_log_tail_and_skips_dependents(registry_file):
    cfg = registry_file(drop=NO_DASHBOARD, knobs={"market-analysis": ["--crash-at-start"]})
    result = restart(cfg)
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr
    assert "FATAL: cannot connect to broker" in result.stderr  # the log's lines of this run only
    assert "| --- tmt-ops started market-analysis at " not in result.stderr
    assert "execution-engine: not started: requires market-analysis, which failed" in result.stderr
    assert ("error: not healthy: market-analysis (failed, critical), execution-engine (not started, critical)"
            in result.stderr)
    assert set(recorded_pids(cfg)) == {"orchestrator"}


def test_required_infrastructure_that_does_not_answer_stops_its_dependents(registry_file):
    def require_postgres(data):
        data["services"]["orchestrator"]["depends_on"]["postgres"] = "required"
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"], edit=require_postgres)
    result = restart(cfg)
    assert result.returncode == 1
    assert f"preflight: PostgreSQL at 127.0.0.1:{port_of(cfg, 'postgres')} does not answer" in result.stderr
    assert "orchestrator cannot run without it" in result.stderr
    assert recorded_pids(cfg) == {}


def test_two_restarts_at_once(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"],
                        knobs={"orchestrator": ["--start-delay", "6"]})
    first = subprocess.Popen([sys.executable, str(REPO / "restart-trading-system.py"), "--config", str(cfg)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "NO_COLOR": "1"})
    try:
        assert wait_for(lambda: f"pid {first.pid}" in (holder(state_dir(cfg)) or ""), 10)
        second = restart(cfg)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr and "restart-trading-system.py" in second.stderr
        assert first.wait(30) == 0, first.communicate()[1]
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()


def test_ctrl_c_mid_restart_keeps_what_started(registry_file):
    cfg = registry_file(drop=["execution-engine", "dashboard"], knobs={"market-analysis": ["--start-delay", "30"]})
    proc = subprocess.Popen([sys.executable, str(REPO / "restart-trading-system.py"), "--config", str(cfg)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        assert wait_for(lambda: "market-analysis" in recorded_pids(cfg), 15)
        proc.send_signal(signal.SIGINT)  # the restart process only, as a terminal's Ctrl-C would reach it
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "SERVICE" in err
    assert re.search(r"^orchestrator\s+running", err, re.M) and re.search(r"^market-analysis\s+starting", err, re.M)
    pids = recorded_pids(cfg)
    assert set(pids) == {"orchestrator", "market-analysis"}
    assert all(alive(p) for p in pids.values())  # detached: Ctrl-C on the toolkit does not kill them


def test_secrets_never_reach_toolkit_output_or_log(registry_file):
    secret, password = "oanda-live-key-0123456789", "pw-s3cret-77"

    def leaky(data):
        data["services"]["market-analysis"]["command"] += [
            "--requires", f"http://tmt:{password}@127.0.0.1:{{port:orchestrator}}/health"]
    cfg = registry_file(drop=["execution-engine", "dashboard"], edit=leaky)
    env = {"OANDA_API_KEY": secret}
    runs = [restart(cfg, env=env), restart(cfg, "--dry-run", env=env), stop(cfg, env=env)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    everything = log + "".join(r.stdout + r.stderr for r in runs)
    assert "http://tmt:***@127.0.0.1" in everything  # the command line is shown, masked
    assert secret not in everything and password not in everything


def test_quick_restart_detects_native_and_validates_health(registry_file):
    cfg = registry_file(drop=NO_DASHBOARD)
    assert restart(cfg, "--skip-health-check").returncode == 0
    result = run_script("quick-restart.py", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "mode: native (detected)" in result.stderr and "running and healthy" in result.stderr


def test_bad_input_is_one_line_and_exit_2(registry_file):
    cfg = registry_file()
    for args, words in ((["--only", "orchestrater"], "did you mean 'orchestrator'"),
                        (["--only", "postgres"], "infrastructure"),
                        (["--no-deps"], "--no-deps needs --only"),
                        (["--mode", "kube"], "invalid choice")):
        result = restart(cfg, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
    result = run_script("quick-restart.py", "podman", "--config", str(cfg))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_missing_program_is_a_configuration_error_found_before_anything_stops(registry_file):
    def missing(data):
        data["services"]["orchestrator"]["command"] = ["tmt-no-such-program", "--port", "{port}"]
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"], edit=missing)
    result = restart(cfg)
    assert result.returncode == 2
    assert "preflight: orchestrator: its program 'tmt-no-such-program' is not on PATH" in result.stderr
    assert "Traceback" not in result.stderr
