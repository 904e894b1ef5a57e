"""A restart under faults ends with at least what was running at its start (native mode).

Each test starts the simulated stack on free ports, then breaks something the way it breaks on a trading
desk (a registry typo, a database down, a service that will not stop, Ctrl-C, a hung-up terminal, a closed
pipe, a deleted state directory) and checks what runs afterwards, by pid.
"""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import sys
import time

import pytest

import native_support
from native_support import alive, port_of, recorded_pids, restart, state_dir, stranger_on
from support import REPO, variant, wait_for

CORE = {"orchestrator", "market-analysis", "execution-engine", "dashboard"}
SCRIPT = str(REPO / "restart-trading-system.py")


def running_stack(registry_file, **kw):
    """A registry whose whole stack is up (no final health round: some of these stacks are unhealthy on purpose),
    and its pids."""
    return native_support.running_stack(registry_file, flags=("--skip-health-check",), **kw)


def untouched(cfg, before):
    return recorded_pids(cfg) == before and all(alive(p) for p in before.values())


def background(cfg, *args):
    return subprocess.Popen([sys.executable, SCRIPT, "--config", str(cfg), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1"})


def slow_dashboard_stop(seconds):
    def edit(data):
        data["services"]["dashboard"]["command"] += ["--stop-delay", str(seconds)]
    return edit


def in_stop_wave(cfg):
    """True once the restart has sent the dashboard its stop signal (its log says so)."""
    log = state_dir(cfg).parent / "logs" / "dashboard.log"
    return log.exists() and "received SIGTERM" in log.read_text()


# -- preflight: nothing is stopped when the restart could not finish ----------------------------------------------
@pytest.mark.parametrize("fault, code, words", [
    (lambda d: d["services"]["market-analysis"]["command"].__setitem__(0, "tmt-no-such-program"), 2,
     "preflight: market-analysis: its program 'tmt-no-such-program' is not on PATH"),
    (lambda d: d["services"]["execution-engine"].__setitem__("cwd", "no/such/dir"), 2,
     "preflight: execution-engine: its working directory"),
    (lambda d: d["services"]["orchestrator"]["depends_on"].__setitem__("postgres", "required"), 1,
     "does not answer (connection refused"),
], ids=["program missing", "cwd missing", "required database down"])
def test_preflight_problem_stops_nothing(registry_file, fault, code, words):
    cfg, before = running_stack(registry_file)
    result = restart(variant(cfg, fault))
    assert result.returncode == code, result.stderr
    assert words in result.stderr and "nothing was stopped or started" in result.stderr
    assert "Traceback" not in result.stderr
    assert untouched(cfg, before)


def test_unwritable_log_directory_is_found_before_anything_stops(registry_file, tmp_path):
    cfg, before = running_stack(registry_file)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = restart(variant(cfg, lambda d: d["project"].__setitem__("log_dir", str(blocker / "logs"))))
    assert result.returncode == 2, result.stderr
    assert f"preflight: the log directory {blocker / 'logs'} is not writable" in result.stderr
    assert untouched(cfg, before)


def test_every_problem_is_one_line(registry_file):
    cfg, before = running_stack(registry_file)

    def two_faults(data):
        data["services"]["market-analysis"]["command"][0] = "tmt-no-such-program"
        data["services"]["orchestrator"]["depends_on"]["postgres"] = "required"
    result = restart(variant(cfg, two_faults))
    assert result.returncode == 2  # a configuration problem outranks the environment's
    assert len([line for line in result.stderr.splitlines() if line.startswith("preflight: ")]) == 2
    assert untouched(cfg, before)


def test_foreign_holder_of_a_service_port_stops_nothing_without_force(registry_file):
    cfg, before = running_stack(registry_file)
    orchestrator = before.pop("orchestrator")
    os.killpg(orchestrator, signal.SIGKILL)  # the orchestrator dies; a stranger takes its port
    port = port_of(cfg, "orchestrator")
    with stranger_on(port) as stranger:
        result = restart(cfg)
        assert result.returncode == 1, result.stderr
        assert f"preflight: orchestrator: port {port} is held by pid {stranger.pid}" in result.stderr
        assert all(alive(p) for p in before.values()) and stranger.poll() is None
        assert {k: v for k, v in recorded_pids(cfg).items() if k != "orchestrator"} == before


# -- a service that will not stop -----------------------------------------------------------------------------------
def test_a_service_that_will_not_stop_halts_the_stop_and_what_was_stopped_comes_back(registry_file):
    def stubborn(data):
        data["services"]["market-analysis"]["command"] += ["--ignore-sigterm"]
        data["services"]["market-analysis"]["stop_grace"] = 0.5
    cfg, before = running_stack(registry_file, edit=stubborn)
    result = restart(cfg)
    assert result.returncode == 1, result.stderr
    assert "error: could not stop market-analysis (use --force to SIGKILL)" in result.stderr
    assert f"pid {before['market-analysis']}" in result.stderr  # the survivor is named
    after = recorded_pids(cfg)
    assert after["orchestrator"] == before["orchestrator"]  # never stopped: the stop halted before it
    assert after["market-analysis"] == before["market-analysis"]
    assert after["execution-engine"] != before["execution-engine"] and after["dashboard"] != before["dashboard"]
    assert all(alive(p) for p in after.values()) and set(after) == CORE  # no fewer services up than before


# -- interrupts in the stop half ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_in_the_stop_half_finishes_the_wave_and_starts_again_what_it_stopped(registry_file, sig):
    cfg, before = running_stack(registry_file, edit=slow_dashboard_stop(1.5))
    proc = background(cfg)
    try:
        assert wait_for(lambda: in_stop_wave(cfg), 15)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "then starting again what this run stopped" in out and "SERVICE" in out  # told, and the summary
    after = recorded_pids(cfg)
    assert set(after) == CORE and all(alive(p) for p in after.values())
    assert after["dashboard"] != before["dashboard"]  # the wave in flight finished; the dashboard came back
    assert all(after[n] == before[n] for n in ("orchestrator", "market-analysis", "execution-engine"))


def test_a_second_interrupt_leaves_things_as_they_are_at_once(registry_file):
    cfg, before = running_stack(registry_file, edit=slow_dashboard_stop(5))
    proc = background(cfg)
    try:
        assert wait_for(lambda: in_stop_wave(cfg), 15)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        proc.kill()
    assert proc.returncode == 130 and took < 2, (took, out)  # not the 5 s the dashboard takes to drain
    assert "SIGINT again: leaving everything as it is" in out
    assert "starting again" not in out.split("SIGINT again")[1]
    assert all(alive(before[n]) for n in ("orchestrator", "market-analysis", "execution-engine"))


# -- output that fails: a closed pipe, a hung-up terminal -------------------------------------------------------------
def test_restart_piped_into_head_completes_and_logs_everything(registry_file):
    cfg, before = running_stack(registry_file)
    proc = subprocess.Popen([sys.executable, SCRIPT, "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    for _ in range(3):  # `| head -3`: three lines are read, then the reader is gone
        proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(60) == 0
    after = recorded_pids(cfg)
    assert set(after) == CORE and all(after[n] != before[n] and alive(after[n]) for n in CORE)
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    assert "4 service(s) running and healthy" in log.split("stopping dashboard")[-1]


def test_terminal_hang_up_in_the_stop_half_does_not_abort_the_restart(registry_file):
    cfg, before = running_stack(registry_file, edit=slow_dashboard_stop(1.5))
    pid, fd = pty.fork()  # the restart runs on a terminal of its own, as an operator's ssh session would
    if pid == 0:
        os.environ["NO_COLOR"] = "1"
        os.execv(sys.executable, [sys.executable, SCRIPT, "--config", str(cfg)])
    try:
        assert wait_for(lambda: in_stop_wave(cfg), 15)
    finally:
        os.close(fd)  # the connection drops: the kernel hangs up the terminal (SIGHUP to the session leader)
    assert wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 60)
    after = recorded_pids(cfg)
    assert set(after) == CORE and all(after[n] != before[n] and alive(after[n]) for n in CORE)
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    assert "SIGHUP: the terminal went away" in log and "4 service(s) running and healthy" in log


# -- the run lock ---------------------------------------------------------------------------------------------------
def test_deleting_the_state_directory_during_a_run_does_not_let_a_second_run_in(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"],
                        knobs={"orchestrator": ["--start-delay", "5"]})
    first = background(cfg)
    try:
        assert wait_for(lambda: "orchestrator" in recorded_pids(cfg), 10)  # it holds the lock, waiting 5 s
        shutil.rmtree(state_dir(cfg))
        second = restart(cfg)
        assert second.returncode == 1, second.stderr
        assert "another run still holds the lock" in second.stderr and f"pid {first.pid}" in second.stderr
        assert first.wait(30) == 0
    finally:
        first.kill()
        first.communicate()


# -- the summary tells the truth --------------------------------------------------------------------------------------
def test_a_degraded_service_is_reported_degraded_never_healthy(registry_file):
    cfg = registry_file(knobs={"market-analysis": ["--degraded"]})
    result = restart(cfg)
    assert result.returncode == 0, result.stderr
    assert "running and healthy" not in result.stderr
    assert "4 of 4 service(s) running; warning: market-analysis (degraded)" in result.stderr
    row = next(line for line in result.stderr.splitlines() if line.startswith("market-analysis "))
    assert row.split()[1] == "degraded"
