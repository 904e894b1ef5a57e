"""A restart is a transaction (native mode): it ends with every service that ran at its start running, or with the
new definition running healthy, never less; and nothing that is not this deployment's is ever touched.

Each test starts the simulated stack on free ports, then breaks it the way it breaks on a trading desk (a new
command that dies at once, a frozen service, Ctrl-C while services start, the state directory replaced by a
file, a copy of the checkout with --force, a service that survives its pre-stop call) and checks, by pid and
by the services' own answers, what runs afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import psutil

from native_support import alive, port_of, recorded_pids, restart, running_stack, state_dir, stop, stranger_on
from support import REPO, variant, wait_for

CORE = {"orchestrator", "market-analysis", "execution-engine", "dashboard"}
SCRIPT = str(REPO / "restart-trading-system.py")


def cmdline(pid: int) -> str:
    return " ".join(psutil.Process(pid).cmdline())


def health(cfg, service: str) -> dict:
    path = "/api/health" if service == "dashboard" else "/health"
    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(cfg, service)}{path}", timeout=3) as answer:
        return json.loads(answer.read())


def all_answer(cfg) -> bool:
    try:
        return all(health(cfg, name) for name in CORE)
    except OSError:
        return False


def background(cfg, *args):
    return subprocess.Popen([sys.executable, SCRIPT, "--config", str(cfg), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1"})


# -- a new definition that fails is rolled back to the last healthy one ----------------------------------------------
def test_a_command_that_dies_at_once_is_rolled_back_to_its_last_healthy_definition(registry_file):
    cfg, before = running_stack(registry_file)

    def typo(data):  # the program exists and preflight passes; the process exits at once (No module named ...)
        command = data["services"]["market-analysis"]["command"]
        command[command.index("tmt_sim")] = "tmt_simm"
    broken = variant(cfg, typo)
    result = restart(broken)
    assert result.returncode == 1, result.stderr
    assert "error: the restart failed (market-analysis: exited with code 1 before it was ready)" in result.stderr
    assert "its last healthy definition of" in result.stderr and "Traceback" not in result.stderr.split("|")[0]
    after = recorded_pids(cfg)
    assert set(after) == CORE and all(alive(p) for p in after.values())
    assert all(after[n] != before[n] for n in CORE)  # every service restarted: the new ones, and the rolled back
    assert "tmt_simm" not in cmdline(after["market-analysis"])  # it runs as it last ran healthy
    assert all_answer(cfg)
    log = (state_dir(cfg).parent / "logs" / "market-analysis.log").read_text()
    assert "No module named tmt_simm" in log
    # the kept definition holds references, never a secret value, and is private
    kept = state_dir(cfg) / "healthy" / "market-analysis.json"
    assert kept.stat().st_mode & 0o777 == 0o600 and "${OANDA_API_KEY:-}" in kept.read_text()
    # the broken registry is refused again the same way; the good one restarts cleanly
    assert restart(cfg).returncode == 0


def test_a_literal_secret_in_the_registry_is_not_kept_and_a_rollback_takes_it_from_the_registry(registry_file):
    secret = "literal-key-4a7c9e"

    def literal(data):
        data["services"]["market-analysis"]["env"]["OANDA_API_KEY"] = secret
    cfg, _ = running_stack(registry_file, edit=literal)
    kept = (state_dir(cfg) / "healthy" / "market-analysis.json").read_text()
    assert secret not in kept and "env.OANDA_API_KEY" in kept

    def typo(data):
        data["services"]["market-analysis"]["command"].append("--no-such-flag")  # argparse exits 2 at once
    result = restart(variant(cfg, typo))
    assert result.returncode == 1, result.stderr
    pid = recorded_pids(cfg)["market-analysis"]
    environ = psutil.Process(pid).environ()
    assert environ["OANDA_API_KEY"] == secret and "--no-such-flag" not in cmdline(pid)


def test_a_failing_service_without_a_kept_definition_is_said_and_nothing_else_is_lost(registry_file):
    cfg, before = running_stack(registry_file)
    shutil.rmtree(state_dir(cfg) / "healthy")  # no healthy run on record (an upgrade, a lost state directory)

    def crash(data):
        data["services"]["execution-engine"]["command"].append("--crash-at-start")
    result = restart(variant(cfg, crash))
    assert result.returncode == 1, result.stderr
    assert "not rolled back: it failed with the very definition it last ran healthy with" in result.stderr
    assert "now running: orchestrator, market-analysis; not running: execution-engine" in result.stderr
    after = recorded_pids(cfg)
    assert alive(after["orchestrator"]) and alive(after["market-analysis"])


# -- a hung or frozen service is found before anything changes --------------------------------------------------------
def test_a_frozen_service_stops_a_restart_before_anything_stops_unless_forced(registry_file):
    cfg, before = running_stack(registry_file)
    os.kill(before["orchestrator"], signal.SIGSTOP)
    try:
        refused = restart(cfg)
        assert refused.returncode == 1, refused.stderr
        assert f"preflight: orchestrator: pid {before['orchestrator']} is stopped (frozen" in refused.stderr
        assert "use --force to stop it all the same" in refused.stderr
        assert recorded_pids(cfg) == before and all(alive(p) for p in before.values())
        os.kill(before["market-analysis"], signal.SIGSTOP)  # a dependent frozen too: one line each
        both = restart(cfg)
        assert len([li for li in both.stderr.splitlines() if "is stopped (frozen" in li]) == 2, both.stderr
        os.kill(before["market-analysis"], signal.SIGCONT)

        forced = restart(cfg, "--force")
        assert forced.returncode == 0, forced.stderr
        assert "orchestrator: pid" in forced.stderr and "--force: it is stopped all the same" in forced.stderr
        after = recorded_pids(cfg)
        assert all(after[n] != before[n] and alive(after[n]) for n in CORE) and all_answer(cfg)
        assert not alive(before["orchestrator"])
    finally:
        if alive(before["orchestrator"]):
            os.kill(before["orchestrator"], signal.SIGCONT)


def test_a_hung_service_is_found_before_anything_stops(registry_file):
    cfg = registry_file(knobs={"market-analysis": ["--hang-health"]},
                        edit=lambda d: d["services"]["market-analysis"].update(startup_timeout=2))
    assert restart(cfg).returncode == 1  # its start fails: it is left running for inspection, hung
    before = recorded_pids(cfg)
    refused = restart(cfg, "--only", "market-analysis")
    assert refused.returncode == 1, refused.stderr
    assert "preflight: market-analysis: it does not answer" in refused.stderr
    assert recorded_pids(cfg) == before


def test_stop_warns_about_a_frozen_service_and_force_stops_it(registry_file):
    cfg, before = running_stack(registry_file, drop=["market-analysis", "execution-engine", "dashboard"])
    os.kill(before["orchestrator"], signal.SIGSTOP)
    try:
        result = stop(cfg, "--force")
        assert result.returncode == 0, result.stderr
        assert not alive(before["orchestrator"])
        log = (state_dir(cfg).parent / "logs" / "orchestrator.log").read_text()
        assert "received SIGTERM" in log  # stopped gracefully: SIGCONT follows the stop signal, as systemd does
    finally:
        if alive(before["orchestrator"]):
            os.kill(before["orchestrator"], signal.SIGCONT)


# -- interrupts ----------------------------------------------------------------------------------------------------
def test_ctrl_c_in_the_start_half_starts_again_what_this_run_stopped(registry_file):
    cfg, before = running_stack(registry_file)
    slow = variant(cfg, lambda d: d["services"]["market-analysis"]["command"].extend(["--start-delay", "60"]))
    proc = background(slow)
    try:
        assert wait_for(lambda: recorded_pids(cfg).get("market-analysis") not in (None, before["market-analysis"]), 20)
        assert wait_for(lambda: "--start-delay" in cmdline(recorded_pids(cfg)["market-analysis"]), 5)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - began
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert took < 20, (took, out)  # not the 60 s the new market-analysis would take
    assert "interrupted: what this run stopped was started again the way it last ran healthy" in out, out
    after = recorded_pids(cfg)
    assert set(after) == CORE and all(alive(p) for p in after.values())
    assert "--start-delay" not in cmdline(after["market-analysis"])
    assert all_answer(cfg)


def test_ctrl_c_in_the_start_half_keeps_a_start_in_flight_of_the_very_definition_it_would_come_back_to(registry_file):
    """A plain restart (nothing changed) interrupted while a service boots: the rollback waits for that boot; it
    does not kill it to start the same thing again."""
    cfg, before = running_stack(registry_file, knobs={"market-analysis": ["--start-delay", "4"]})
    proc = background(cfg)
    try:
        assert wait_for(lambda: recorded_pids(cfg).get("market-analysis") not in (None, before["market-analysis"]), 20)
        booting = recorded_pids(cfg)["market-analysis"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert f"market-analysis: still starting as pid {booting} with this very definition" in out, out
    assert "interrupted: what this run stopped was started again the way it last ran healthy" in out, out
    after = recorded_pids(cfg)
    assert after["market-analysis"] == booting and alive(booting)  # kept, not killed and spawned again
    log = (state_dir(cfg).parent / "logs" / "market-analysis.log").read_text()
    assert log.count("received SIGTERM") == 1, log  # the old one's, by the stop half; never the booting one's
    assert set(after) == CORE and all(alive(p) for p in after.values()) and all_answer(cfg)


# -- the state directory is not a thing to rely on -----------------------------------------------------------------
def test_the_state_directory_replaced_by_a_file_mid_restart(registry_file):
    cfg, before = running_stack(registry_file, knobs={"dashboard": ["--stop-delay", "1.5"]})
    folder = state_dir(cfg)
    proc = background(cfg)
    try:
        log = folder.parent / "logs" / "dashboard.log"
        assert wait_for(lambda: log.read_text().count("received SIGTERM") >= 1, 20)
        shutil.rmtree(folder)
        folder.write_text("not a directory\n")
        out, _ = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert "Traceback" not in out, out
    assert proc.returncode == 0, out
    assert "its run record could not be written" in out
    pids = {p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
            if "tmt_sim" in " ".join(p.info["cmdline"] or ()) and str(port_of(cfg, "orchestrator")) in
            " ".join(p.info["cmdline"] or ())}
    assert pids and all_answer(cfg)  # all four up, found without records
    stopped = stop(cfg)
    assert stopped.returncode == 0 and "Traceback" not in stopped.stderr, stopped.stderr
    assert not any(alive(p) for p in pids)
    assert folder.read_text() == "not a directory\n"  # never replaced: not the toolkit's to remove


# -- never what is not ours -----------------------------------------------------------------------------------------
def test_a_copy_of_a_running_checkout_never_signals_the_original_even_with_force(registry_file, tmp_path):
    original, theirs = running_stack(registry_file)
    copy_root = tmp_path / "copy"

    def copy(data):  # cp -a of the checkout: the same registry (same ports), its state directory along
        data["project"].update(state_dir=str(copy_root / "state"), log_dir=str(copy_root / "logs"))
    copied = variant(original, copy, "copy.yaml")
    shutil.copytree(state_dir(original), copy_root / "state")

    stopped = stop(copied, "--force")
    assert stopped.returncode == 1, stopped.stderr
    assert stopped.stderr.count("never signalled here, not even with --force") == 4, stopped.stderr
    assert "or use --force" not in stopped.stderr
    refused = restart(copied, "--force")
    assert refused.returncode == 1, refused.stderr
    assert "preflight: orchestrator: port" in refused.stderr and "or use --force" not in refused.stderr
    assert recorded_pids(original) == theirs and all(alive(p) for p in theirs.values()) and all_answer(original)
    for name in ("orchestrator", "execution-engine"):
        log = (state_dir(original).parent / "logs" / f"{name}.log").read_text()
        assert log.count("received SIGTERM") == 0 and log.count("trading disabled") == 0, name


def test_a_stop_that_leaves_a_port_held_by_a_stranger_says_so(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    port = port_of(cfg, "orchestrator")
    with stranger_on(port) as stranger:
        result = stop(cfg)
        assert result.returncode == 1, result.stderr
        assert f"port {port} is held by pid {stranger.pid}" in result.stderr and "or use --force" in result.stderr
        assert stranger.poll() is None


# -- a service that survives its pre-stop call ---------------------------------------------------------------------
def stubborn_engine(data):
    data["services"]["execution-engine"]["command"] += ["--ignore-sigterm"]
    data["services"]["execution-engine"]["stop_grace"] = 0.5


def test_a_survivor_of_a_restart_has_its_pre_stop_undone_by_its_post_start_hook(registry_file):
    cfg, before = running_stack(registry_file, edit=stubborn_engine)
    result = restart(cfg)
    assert result.returncode == 1, result.stderr
    assert "execution-engine: post-start POST /api/trading/enable -> HTTP 200" in result.stderr
    assert "its pre-stop POST /api/trading/disable is undone" in result.stderr
    assert health(cfg, "execution-engine")["trading_enabled"] is True
    assert not (state_dir(cfg) / "prestopped" / "execution-engine.json").exists()
    assert recorded_pids(cfg)["execution-engine"] == before["execution-engine"] and all_answer(cfg)


def test_a_survivor_without_a_post_start_hook_is_recorded(registry_file):
    def no_hook(data):
        stubborn_engine(data)
        del data["services"]["execution-engine"]["post_start"]
    cfg, before = running_stack(registry_file, edit=no_hook)
    result = stop(cfg)
    assert result.returncode == 1, result.stderr
    assert "execution-engine still runs after its pre-stop POST /api/trading/disable" in result.stderr
    assert "it may not be working (not trading); system-health reports it" in result.stderr
    record = json.loads((state_dir(cfg) / "prestopped" / "execution-engine.json").read_text())
    assert record["hook"] == "POST /api/trading/disable"
    assert health(cfg, "execution-engine")["trading_enabled"] is False
    assert stop(cfg, "--force").returncode == 0
    restarted = restart(cfg)  # a start clears the record
    assert restarted.returncode == 0 and not (state_dir(cfg) / "prestopped" / "execution-engine.json").exists()


def test_a_pre_stop_that_failed_is_not_said_to_have_run(registry_file):
    def hook_fails(data):
        stubborn_engine(data)
        data["services"]["execution-engine"]["pre_stop"]["path"] = "/no-such-hook"
    cfg, _ = running_stack(registry_file, edit=hook_fails)
    result = stop(cfg, "--only", "execution-engine")
    assert result.returncode == 1, result.stderr
    assert "pre-stop POST /no-such-hook answered HTTP 404" in result.stderr
    assert "still runs after its pre-stop" not in result.stderr
    assert not (state_dir(cfg) / "prestopped" / "execution-engine.json").exists()
