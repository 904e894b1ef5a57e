"""A stale run record never turns the toolkit against someone else; what is ours is still found without one.

Run with both proofs of identity: each service in a cgroup of its own (cgroup v2 writable, as here when
root), and with TMT_CGROUPS=off, the run tag in the environment alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

from native_support import alive, group_of, port_of, recorded_pids, restart, state_dir, stop
from support import wait_for
from tmt_ops.ports import port_open

ALONE = ["market-analysis", "execution-engine", "dashboard"]


def cgroup2_writable() -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        points = [line.split()[4] for line in mounts if " - cgroup2 " in line]
    return bool(points) and os.access(points[0], os.W_OK)


@pytest.fixture(params=["cgroup", "run tag"])
def proofs(request, monkeypatch):
    """Each test once per proof of identity (the scripts it runs inherit the switch)."""
    if request.param == "cgroup" and not cgroup2_writable():
        pytest.skip("cgroup v2 is not writable here")
    if request.param == "run tag":
        monkeypatch.setenv("TMT_CGROUPS", "off")
    return request.param


@pytest.fixture
def strangers():
    """A process group that is not ours: a leader that has exited, and a member that lives on."""
    made = []

    def make():
        leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                                   "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
                                   "time.sleep(0.5)"], start_new_session=True)
        leader_time = psutil.Process(leader.pid).create_time()
        assert wait_for(lambda: len(group_of(leader.pid)) == 2, 5)
        member = next(p for p in group_of(leader.pid) if p != leader.pid)
        leader.wait()
        made.append(member)
        return leader.pid, leader_time, member

    yield make
    for pid in made:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_stale_record_naming_another_group_never_signals_it(registry_file, strangers, proofs):
    cfg = registry_file(drop=ALONE)
    leader, leader_time, member = strangers()
    folder = state_dir(cfg) / "run"
    folder.mkdir(parents=True)
    # A record as an older version wrote it: its leader is gone, its group lives on in someone else's process.
    (folder / "orchestrator.json").write_text(json.dumps({
        "service": "orchestrator", "pid": leader, "pgid": leader, "sid": leader, "create_time": leader_time,
        "argv": ["python"], "cwd": "/", "log_file": "x.log", "started_at": 0}))
    for args in (["--force"], []):
        result = stop(cfg, *args)
        assert result.returncode == 0, result.stderr
        assert "nothing to stop" in result.stderr
    assert alive(member) and recorded_pids(cfg) == {}
    (folder / "orchestrator.json").write_text(json.dumps({  # and one of this version, with a run tag
        "service": "orchestrator", "pid": leader, "pgid": leader, "sid": leader, "create_time": leader_time,
        "log_file": "x.log", "started_at": 0, "run_tag": "0123456789abcdef/orchestrator/abc"}))
    assert restart(cfg, "--force", "--skip-health-check").returncode == 0
    assert alive(member)
    assert stop(cfg, "--force").returncode == 0 and alive(member)


def test_a_server_whose_wrapper_died_is_found_and_stopped_after_the_state_is_lost(registry_file, proofs):
    def dashboard_alone(data):
        svc = data["services"]["dashboard"]
        svc["command"] = svc["command"][:svc["command"].index("--requires")]
        svc["depends_on"] = {}
    cfg = registry_file(drop=["orchestrator", "market-analysis", "execution-engine"], edit=dashboard_alone)
    assert restart(cfg, "--skip-health-check").returncode == 0
    wrapper = recorded_pids(cfg)["dashboard"]
    assert wait_for(lambda: len(group_of(wrapper)) == 3, 5)
    os.kill(wrapper, signal.SIGKILL)  # the wrapper dies, the server (its grandchild) lives on ...
    assert wait_for(lambda: not alive(wrapper), 5)
    left = group_of(wrapper)
    shutil.rmtree(state_dir(cfg))  # ... and the state is lost

    plan = stop(cfg, "--dry-run")
    assert plan.returncode == 0 and "no run record" in plan.stderr, plan.stderr
    result = stop(cfg)
    assert result.returncode == 0, result.stderr
    assert "dashboard: stopped" in result.stderr
    assert not any(alive(p) for p in left)
    assert not port_open("127.0.0.1", port_of(cfg, "dashboard"), 0.2)


def test_run_records_are_private_and_hold_no_secret(registry_file):
    secret = "oanda-live-key-0123456789"

    def secret_in_argument(data):  # a secret expanded into the command line, as a real deployment may do
        data["services"]["market-analysis"]["command"] += ["--requires",
                                                           "http://127.0.0.1:{port:orchestrator}/health?k=${OANDA_API_KEY}"]
    cfg = registry_file(drop=["execution-engine", "dashboard"], edit=secret_in_argument)
    assert restart(cfg, "--skip-health-check", env={"OANDA_API_KEY": secret}).returncode == 0
    folder = state_dir(cfg) / "run"
    assert folder.stat().st_mode & 0o777 == 0o700
    for record in folder.glob("*.json"):
        assert record.stat().st_mode & 0o777 == 0o600, record
        assert secret not in record.read_text(), record
