"""stop-trading-system.py against real simulated services: what is ours goes, what is not stays."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

from native_support import (alive, group_of, only_the_engine_for_the_dashboard, port_of, recorded_pids, restart,
                            running_stack, slow_dashboard_stack, state_dir, stop)
from support import REPO, wait_for
from tmt_ops import stopped
from tmt_ops.ports import port_open

ALONE = ["market-analysis", "execution-engine", "dashboard"]  # drop these: the orchestrator alone


@pytest.fixture
def strangers():
    """Processes the test starts that the toolkit must not touch; killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(*argv: str, **kw) -> subprocess.Popen:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_nothing_to_stop_is_success(registry_file):
    cfg = registry_file()
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    assert "nothing to stop" in result.stderr


def test_decoy_with_a_service_name_survives_stop_force(registry_file, strangers):
    cfg = registry_file(drop=ALONE)
    assert restart(cfg, "--skip-health-check").returncode == 0
    # Same program, same service name, started in the same directory: only the port differs.
    decoy = strangers(sys.executable, "-m", "tmt_sim", "orchestrator", "--port", "0", cwd=REPO)
    sleeper = strangers(sys.executable, "-c", "import time; time.sleep(60)", "orchestrator", "app.main", "main.py")
    result = stop(cfg, "--force")
    assert result.returncode == 0, result.stderr
    assert "orchestrator: stopped" in result.stderr
    assert decoy.poll() is None and sleeper.poll() is None


def test_foreign_listener_untouched_without_force_stopped_with_it(registry_file, strangers):
    cfg = registry_file(drop=ALONE)
    port = port_of(cfg, "orchestrator")
    foreign = strangers(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    assert wait_for(lambda: psutil.Process(foreign.pid).net_connections("inet"), 10)

    result = stop(cfg)
    assert result.returncode == 1, result.stderr  # its port is not free after the stop: said, and a failure
    assert f"port {port} is held by pid {foreign.pid}" in result.stderr and "not a TMT service" in result.stderr
    assert "--force" in result.stderr
    assert foreign.poll() is None

    started = restart(cfg)
    assert started.returncode == 1
    assert f"pid {foreign.pid}" in started.stderr and foreign.poll() is None

    result = stop(cfg, "--force")
    assert result.returncode == 0, result.stderr
    assert wait_for(lambda: foreign.poll() is not None, 5)
    assert foreign.returncode == -signal.SIGTERM  # SIGTERM first, not a blind SIGKILL

    again = strangers(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    assert wait_for(lambda: psutil.Process(again.pid).net_connections("inet"), 10)
    result = restart(cfg, "--force")
    assert result.returncode == 0, result.stderr
    assert again.poll() == -signal.SIGTERM and "orchestrator" in recorded_pids(cfg)


def test_service_ignoring_sigterm_fails_without_force_and_is_killed_with_it(registry_file):
    def short_grace(data):
        data["services"]["orchestrator"]["stop_grace"] = 0.5
    cfg = registry_file(drop=ALONE, knobs={"orchestrator": ["--ignore-sigterm"]}, edit=short_grace)
    assert restart(cfg, "--skip-health-check").returncode == 0
    pid = recorded_pids(cfg)["orchestrator"]

    result = stop(cfg)
    assert result.returncode == 1
    assert "orchestrator" in result.stderr and "--force" in result.stderr and f"pid {pid}" in result.stderr
    assert alive(pid)

    result = stop(cfg, "--force")
    assert result.returncode == 0, result.stderr
    assert "SIGKILL" in result.stderr
    assert not alive(pid) and recorded_pids(cfg) == {}


def test_children_and_wrapped_dashboard_leave_nothing_behind(registry_file):
    cfg = registry_file(knobs={"orchestrator": ["--spawn-child"], "dashboard": ["--spawn-child"]})
    result = restart(cfg, "--skip-health-check")
    assert result.returncode == 0, result.stderr
    pids = recorded_pids(cfg)
    # wrapper -> sh -> server -> worker child: four processes in the dashboard's group
    assert wait_for(lambda: len(group_of(pids["dashboard"])) == 4, 5), group_of(pids["dashboard"])
    members = {name: group_of(pid) for name, pid in pids.items()}
    assert len(members["orchestrator"]) == 2

    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    for name, group in members.items():
        assert [p for p in group if alive(p)] == [], name
    assert "dashboard: stopped" in result.stderr


def test_record_with_reused_pid_is_not_signalled(registry_file, strangers):
    cfg = registry_file(drop=ALONE)
    sleeper = strangers(sys.executable, "-c", "import time; time.sleep(60)")  # leads its own session too
    created = psutil.Process(sleeper.pid).create_time()
    folder = state_dir(cfg) / "run"
    folder.mkdir(parents=True)
    (folder / "orchestrator.json").write_text(json.dumps({
        "service": "orchestrator", "pid": sleeper.pid, "pgid": sleeper.pid, "sid": sleeper.pid,
        "create_time": created - 1000, "argv": ["python"], "cwd": str(REPO), "log_file": "x.log",
        "started_at": 0}))
    result = stop(cfg, "--force")
    assert result.returncode == 0, result.stderr
    assert "nothing to stop" in result.stderr
    assert sleeper.poll() is None
    assert recorded_pids(cfg) == {}  # the stale record is dropped


def test_stop_finds_services_after_the_state_directory_is_deleted(registry_file):
    cfg = registry_file(drop=["execution-engine", "dashboard"])
    assert restart(cfg, "--skip-health-check").returncode == 0
    pids = recorded_pids(cfg)
    shutil.rmtree(state_dir(cfg))
    result = stop(cfg, "--dry-run")
    assert result.returncode == 0 and "no run record" in result.stderr
    assert all(alive(p) for p in pids.values())
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    assert not any(alive(p) for p in pids.values())
    assert "stopped 2 service(s)" in result.stderr


def test_foreign_holder_of_infrastructure_port_is_never_touched(registry_file, strangers):
    cfg = registry_file(drop=ALONE)
    port = port_of(cfg, "redis")
    foreign = strangers(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    assert wait_for(lambda: psutil.Process(foreign.pid).net_connections("inet"), 10)
    assert stop(cfg, "--force").returncode == 0
    assert foreign.poll() is None
    assert os.path.exists("/proc/%d" % foreign.pid)


def test_group_outliving_its_wrapper_is_still_found_and_stopped(registry_file):
    def dashboard_alone(data):
        svc = data["services"]["dashboard"]
        svc["command"] = svc["command"][:svc["command"].index("--requires")]
        svc["depends_on"] = {}
    cfg = registry_file(drop=["orchestrator", "market-analysis", "execution-engine"], edit=dashboard_alone)
    assert restart(cfg, "--skip-health-check").returncode == 0
    wrapper = recorded_pids(cfg)["dashboard"]
    assert wait_for(lambda: len(group_of(wrapper)) == 3, 5)
    os.kill(wrapper, signal.SIGKILL)  # like process-compose #520: the leader dies, the server lives on
    assert wait_for(lambda: not alive(wrapper), 5)
    left = group_of(wrapper)
    assert len(left) == 2

    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    assert not any(alive(p) for p in left)
    assert not port_open("127.0.0.1", port_of(cfg, "dashboard"), 0.2)


def test_pre_stop_hook_runs_before_the_stop_signal_and_a_failing_one_does_not_block(registry_file):
    cfg = registry_file(drop=ALONE)
    assert restart(cfg, "--skip-health-check").returncode == 0
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    log = (state_dir(cfg).parent / "logs" / "orchestrator.log").read_text()
    assert log.index("trading disabled (pre-stop)") < log.index("received SIGTERM")

    def broken_hook(data):
        data["services"]["orchestrator"]["pre_stop"]["path"] = "/no-such-hook"

    cfg = registry_file(drop=ALONE, edit=broken_hook, name="broken.yaml")
    assert restart(cfg, "--skip-health-check").returncode == 0
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    assert "orchestrator: pre-stop POST /no-such-hook answered HTTP 404; stopping anyway" in result.stderr
    assert not port_open("127.0.0.1", port_of(cfg, "orchestrator"))


def test_a_stop_killed_midway_leaves_marked_what_it_began_to_stop(registry_file):
    """Each service is marked stopped on purpose before its signal, so a stop that dies midway (SIGKILL, the OOM
    killer) leaves no service it took down for a --heal monitor to bring back. Here the dashboard takes 5 s to
    shut down; market-analysis, which nothing needs, stops beside it at once; the stop is killed meanwhile: those
    two are marked, the execution engine and the orchestrator, never signalled, are not (and still run)."""
    cfg, pids = slow_dashboard_stack(registry_file, 5)
    run = subprocess.Popen([sys.executable, str(REPO / "stop-trading-system.py"), "--config", str(cfg)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: not alive(pids["market-analysis"]), 10)
        assert run.poll() is None  # still at work: the dashboard takes its 5 s
    finally:
        run.kill()
        run.wait()
    assert set(stopped.read(state_dir(cfg))) == {"market-analysis", "dashboard"}
    assert alive(pids["execution-engine"]) and alive(pids["orchestrator"])
    assert stop(cfg).returncode == 0
    assert set(stopped.read(state_dir(cfg))) == set(pids)


def test_a_stop_killed_midway_has_marked_what_it_found_down_first(registry_file):
    """A service the stop was asked to stop and found down (it had crashed) is marked before anything is
    signalled: a stop killed right after its first signal leaves it marked too."""
    cfg, pids = slow_dashboard_stack(registry_file, 5)
    os.killpg(pids["market-analysis"], signal.SIGKILL)
    assert wait_for(lambda: not alive(pids["market-analysis"]), 10)
    marker = state_dir(cfg) / "stopped" / "dashboard.json"
    run = subprocess.Popen([sys.executable, str(REPO / "stop-trading-system.py"), "--config", str(cfg)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(marker.exists, 10) and run.poll() is None
    finally:
        run.kill()
        run.wait()
    assert set(stopped.read(state_dir(cfg))) == {"market-analysis", "dashboard"}
    assert stop(cfg).returncode == 0


def test_a_service_that_would_not_stop_keeps_no_marker(registry_file):
    """A stop that ends with a service still running takes back the marker it left before that one's signal:
    what runs is supervised as before (a --heal monitor brings it back if it crashes later)."""
    def edit(data):
        only_the_engine_for_the_dashboard(data)
        data["services"]["dashboard"]["stop_grace"] = 0.5
    cfg = registry_file(edit=edit, knobs={"dashboard": ["--ignore-sigterm"]})
    assert restart(cfg, "--skip-health-check").returncode == 0
    result = stop(cfg)
    assert result.returncode == 1 and "dashboard" in result.stderr
    assert set(stopped.read(state_dir(cfg))) == {"market-analysis"}
    assert stop(cfg, "--force").returncode == 0
    assert set(stopped.read(state_dir(cfg))) == {"market-analysis", "dashboard", "execution-engine", "orchestrator"}


def test_a_stop_that_cannot_leave_its_markers_stops_all_the_same_and_says_so_once(registry_file):
    """A file where the markers' folder should be: every service is stopped, and one warning names them all."""
    cfg, pids = running_stack(registry_file, flags=("--skip-health-check",))
    (state_dir(cfg) / "stopped").write_text("not a folder\n")
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "cannot leave the stopped-on-purpose markers" in line]
    assert len(warned) == 1 and all(name in warned[0] for name in pids), result.stderr
    assert "a monitor with --heal may start" in warned[0]
    assert recorded_pids(cfg) == {} and not any(alive(pid) for pid in pids.values())
