"""A stale run record never turns the toolkit against someone else; what is ours is still found without one;
an answer on a service's port counts for it only when the service gives it.

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
import uuid

import psutil
import pytest

import realservers as rs
from native_support import alive, group_of, port_of, recorded_pids, restart, state_dir, stop
from support import REPO, wait_for
from tmt_ops.native import proof
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


def untrusted(output: str) -> list[str]:
    return [line for line in output.splitlines() if "run record not trusted" in line]


def test_a_copy_of_another_deployments_state_never_turns_against_it(registry_file, tmp_path, proofs):
    pair = ["execution-engine", "dashboard"]
    a = registry_file(drop=pair)
    assert restart(a, "--skip-health-check").returncode == 0
    theirs = recorded_pids(a)

    def elsewhere(data):  # another registry: other ports (free ones), another state and log directory
        data["project"].update(state_dir=str(tmp_path / "b" / "state"), log_dir=str(tmp_path / "b" / "logs"))
    b = registry_file(drop=pair, edit=elsewhere, name="b.yaml")
    shutil.copytree(state_dir(a), state_dir(b))  # as `cp -a` of a checkout copies its .tmt-state

    refused = restart(b)
    assert refused.returncode == 1, refused.stderr
    assert len(untrusted(refused.stderr)) == 2 and "preflight: orchestrator: run record not trusted" in refused.stderr
    stopped = stop(b, "--force")
    assert stopped.returncode == 0, stopped.stderr
    assert len(untrusted(stopped.stderr)) == 2 and "nothing to stop" in stopped.stderr
    assert recorded_pids(b) == {}  # the copied records are dropped: they only mislead
    assert recorded_pids(a) == theirs and all(alive(p) for p in theirs.values())
    assert all(port_open("127.0.0.1", port_of(a, name), 0.2) for name in theirs)
    log = (state_dir(a).parent / "logs" / "orchestrator.log").read_text()
    assert "received SIGTERM" not in log and "trading disabled" not in log

    started = restart(b, "--skip-health-check")  # its own stack now starts; theirs runs on as it was
    assert started.returncode == 0, started.stderr
    assert set(recorded_pids(b).values()).isdisjoint(theirs.values())
    assert stop(b).returncode == 0
    assert recorded_pids(a) == theirs and all(alive(p) for p in theirs.values())


@pytest.fixture
def foreign_cgroup():
    """A cgroup outside the toolkit's with a process in it; checked to be left as it was, removed at teardown."""
    if not cgroup2_writable():
        pytest.skip("cgroup v2 is not writable here")
    folder = proof.cgroup2_mount() / f"tmt-test-foreign-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        (folder / "cgroup.procs").write_text(str(sleeper.pid))
        yield folder, sleeper
    finally:
        sleeper.kill()
        sleeper.wait()
        assert wait_for(lambda: not proof.cgroup_pids(folder), 5)
        if folder.exists():  # unless a broken stop removed it (the test has failed then)
            folder.rmdir()


def test_a_record_naming_a_foreign_cgroup_never_touches_it(registry_file, foreign_cgroup):
    folder, sleeper = foreign_cgroup
    cfg = registry_file(drop=ALONE)
    gone = subprocess.Popen(["true"])
    gone_time = psutil.Process(gone.pid).create_time()
    gone.wait()
    records = state_dir(cfg) / "run"
    records.mkdir(parents=True)

    def record(pid, created):
        (records / "orchestrator.json").write_text(json.dumps({
            "service": "orchestrator", "pid": pid, "pgid": pid, "sid": pid, "create_time": created,
            "log_file": "x.log", "started_at": 0, "run_tag": "", "cgroup": str(folder)}))

    def untouched():
        return sleeper.poll() is None and proof.cgroup_pids(folder) == [sleeper.pid]

    record(sleeper.pid, psutil.Process(sleeper.pid).create_time())  # its process lives: said, never signalled
    result = stop(cfg, "--force")
    assert untouched() and result.returncode == 0, result.stderr
    [line] = untrusted(result.stderr)
    assert f"the record names cgroup {folder}" in line and "nothing of it is signalled" in line
    assert recorded_pids(cfg) == {}

    record(sleeper.pid, psutil.Process(sleeper.pid).create_time())
    refused = restart(cfg, "--force", "--skip-health-check")
    assert refused.returncode == 1 and len(untrusted(refused.stderr)) == 1, refused.stderr
    assert untouched()

    record(gone.pid, gone_time)  # its process is gone: a stale record, whatever cgroup it names
    result = stop(cfg, "--force")
    assert result.returncode == 0 and "nothing to stop" in result.stderr, result.stderr
    assert untouched() and recorded_pids(cfg) == {}


def test_a_stranger_answering_while_a_service_boots_is_not_its_readiness(registry_file, tmp_path, proofs):
    def slow_to_bind(data):  # the orchestrator binds its port only 2 s after it is spawned
        service = data["services"]["orchestrator"]
        service["command"] = ["sh", "-c", 'sleep 2; exec "$0" "$@"', *service["command"]]
    cfg = registry_file(drop=["execution-engine", "dashboard"], edit=slow_to_bind)
    port = port_of(cfg, "orchestrator")
    run = subprocess.Popen([sys.executable, str(REPO / "restart-trading-system.py"), "--config", str(cfg),
                            "--skip-health-check"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env={**os.environ, "NO_COLOR": "1"})
    stranger = None
    try:
        said = ""
        while "orchestrator: started" not in said:
            said = run.stdout.readline()
            assert said, "the restart ended before it started the orchestrator"
        stranger = rs.start_impostor(port, tmp_path / "impostor.log")  # answers "healthy" while it boots
        out = run.communicate(timeout=60)[0]
        assert run.returncode == 1, out
        assert f"orchestrator: port {port} is held by pid {stranger.pid}" in out
        assert "it answered in orchestrator's place" in out
        assert "market-analysis: not started: requires orchestrator" in out
        assert stranger.alive()
    finally:
        run.kill()
        run.communicate()
        if stranger is not None:
            stranger.stop()
        stop(cfg)  # the orchestrator's wrapper, which would bind the port once it is free


@pytest.mark.parametrize("forks", [False, True], ids=["nothing started yet", "already forked"])
def test_a_process_joins_its_cgroup_with_whatever_it_has_started(forks):
    """proof.join: a process that has started nothing yet is moved alone (no walk of every process); one that
    forked before the move brings its children along."""
    if not cgroup2_writable():
        pytest.skip("cgroup v2 is not writable here")
    folder = proof.cgroup2_mount() / f"tmt-test-join-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    script = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\ntime.sleep(60)" if forks else \
        "import time; time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        if forks:
            assert wait_for(lambda: psutil.Process(parent.pid).children(), 10)
        assert proof._childless(parent.pid) is not forks
        assert proof.join(folder, parent.pid)
        family = [parent.pid, *(c.pid for c in psutil.Process(parent.pid).children(recursive=True))]
        assert len(family) == (2 if forks else 1) and sorted(proof.cgroup_pids(folder)) == sorted(family)
    finally:
        proof.kill_cgroup(folder)
        parent.wait()
        assert wait_for(lambda: not proof.cgroup_pids(folder), 5)
        folder.rmdir()
