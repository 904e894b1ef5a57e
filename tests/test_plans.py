"""Pure units of planning, records, log rotation and the run lock (no service processes)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tmt_ops import operations, statedir
from tmt_ops.backends import Deployment
from tmt_ops.errors import ConfigError, OperationFailed
from tmt_ops.lock import holder, run_lock
from tmt_ops.native import records
from tmt_ops.native.steps import stop_steps
from tmt_ops.native.discovery import Discovery, Found
from tmt_ops.native.procs import Proc, signal_group
from tmt_ops.native.records import RunRecord
from tmt_ops.native.spawn import rotate
from tmt_ops.plan import plan_start, plan_stop
from tmt_ops.ports import Holder
from tmt_ops.registry import load_registry


@pytest.fixture
def registry(registry_file):
    return load_registry(registry_file())


def found(name: str, pid: int, pgid: int | None) -> Found:
    return Found(name, Proc(pid, 1.0), (Proc(pid, 1.0), Proc(pid + 1, 1.0)), "group" if pgid else "tree", "test",
                 pgid=pgid)


def native_deployment(registry, discovery: Discovery, monkeypatch) -> Deployment:
    """A native deployment whose planning sees `discovery` instead of this machine's processes."""
    deployment = Deployment(registry, "native")
    monkeypatch.setattr(deployment.default, "plan_stop",
                        lambda services, force: stop_steps(discovery, services, force=force))
    return deployment


def test_stop_plan_reverses_dependency_order_and_says_why(registry, monkeypatch):
    discovery = Discovery(ours={"orchestrator": found("orchestrator", 100, 100),
                                "dashboard": found("dashboard", 200, None)},
                          foreign={"market-analysis": (Holder(300, "nginx", "www", "nginx -g daemon"),)})
    plan = plan_stop(native_deployment(registry, discovery, monkeypatch), registry.managed, force=False)
    assert [s.service for s in plan.steps] == ["dashboard", "orchestrator"]
    dashboard, orchestrator = plan.steps
    assert dashboard.target == "tree" and [p.pid for p in dashboard.procs] == [200, 201]
    assert (orchestrator.target, orchestrator.pgid, orchestrator.signal, orchestrator.grace, orchestrator.kill) == (
        "group", 100, signal.SIGTERM, 10.0, False)
    assert orchestrator.pre_stop.describe() == "POST /api/trading/disable"
    assert "process group 100" in orchestrator.describe() and "then fail (no --force)" in orchestrator.describe()
    assert "pid 300 (nginx" in plan.blocked["market-analysis"] and "--force" in plan.blocked["market-analysis"]
    assert plan.idle == ("execution-engine",)
    forced = plan_stop(native_deployment(registry, discovery, monkeypatch), registry.managed, force=True)
    assert all(step.kill for step in forced.steps) and "then SIGKILL" in forced.steps[-1].describe()


def test_stop_plan_with_force_targets_the_foreign_holder_with_sigterm(registry, monkeypatch):
    me = os.getpid()  # a live process, so the planned step can carry its create time
    discovery = Discovery(foreign={"market-analysis": (Holder(me, "python", "root", "python"),)})
    (step,) = plan_stop(native_deployment(registry, discovery, monkeypatch), registry.managed, force=True).steps
    assert (step.target, [p.pid for p in step.procs], step.signal, step.kill) == ("foreign", [me], signal.SIGTERM, True)


def test_start_plan_waves_and_outside_dependencies(registry):
    deployment = Deployment(registry, "native")
    plan = plan_start(deployment, registry.managed)
    assert [[s.service.name for s in w.steps] for w in plan.waves] == [
        ["orchestrator"], ["market-analysis"], ["execution-engine"], ["dashboard"]]
    assert [d.name for d in plan.waves[0].probe_first] == ["postgres", "redis", "kafka"]
    partial = plan_start(deployment, operations.select(deployment, ["execution-engine"]))
    assert [[s.service.name for s in w.steps] for w in partial.waves] == [["execution-engine"], ["dashboard"]]
    assert [d.name for d in partial.waves[0].probe_first] == ["orchestrator", "market-analysis"]
    assert partial.waves[1].probe_first == ()


def test_select_refuses_what_the_deployment_does_not_run_and_unknown_names(registry):
    deployment = Deployment(registry, "native")
    with pytest.raises(ConfigError, match="outside this native deployment"):
        operations.select(deployment, ["redis"])
    with pytest.raises(ConfigError, match="did you mean 'dashboard'"):
        operations.select(deployment, ["dashbord"])
    assert [s.name for s in operations.select(deployment, ["execution-engine"], with_dependents=False)] == [
        "execution-engine"]


def test_records_round_trip_and_unreadable_files_are_skipped(tmp_path):
    record = RunRecord("orchestrator", 10, 10, 10, 123.45, "/srv/o.log", 99.0, "k/orchestrator/r", "/cg/orchestrator")
    records.write(tmp_path, record)
    (tmp_path / "run" / "broken.json").write_text("{not json")
    assert records.read_all(tmp_path) == {"orchestrator": record}
    assert record.leads_group
    assert (tmp_path / "run" / "orchestrator.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
    # a record of an older version (with argv and cwd) is still read
    (tmp_path / "run" / "old.json").write_text('{"service": "old", "pid": 5, "pgid": 5, "sid": 5, "create_time": 1.0,'
                                              ' "argv": ["python"], "cwd": "/srv", "log_file": "o.log", "started_at": 2}')
    assert records.read_all(tmp_path)["old"].pid == 5
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")] == []
    records.remove(tmp_path, "orchestrator")
    assert "orchestrator" not in records.read_all(tmp_path)


def test_records_of_some_services_are_read_alone_and_as_the_whole_folder_reads_them(tmp_path):
    """read_all(only=...): a look at a few services reads their records only (a start of 100 services looks at each
    of them several times), with the same verdicts as a read of the whole folder."""
    for name in ("a", "b"):
        records.write(tmp_path, RunRecord(name, 10, 10, 10, 1.0, f"/srv/{name}.log", 2.0))
    (tmp_path / "run" / "broken.json").write_text("{not json")
    os.mkfifo(tmp_path / "run" / "fifo.json")
    assert set(records.read_all(tmp_path, ["a", "missing", "broken", "fifo"])) == {"a"}
    assert statedir.read_all(tmp_path, "run", ["b", "missing", "broken", "fifo"]) == {
        "b": statedir.read_all(tmp_path, "run")["b"], "broken": None, "fifo": None}
    assert statedir.read_all(tmp_path, "nothing-yet", ["a"]) == {}
    (tmp_path / "file").write_text("")
    with pytest.raises(statedir.StateError, match="not a directory"):
        statedir.read_all(tmp_path, "file", ["a"])


def test_log_rotation_keeps_a_few_backups(tmp_path):
    log = tmp_path / "svc.log"
    for generation in range(5):
        log.write_text(f"gen {generation}\n" * 20)
        rotate(log, max_bytes=100, backups=2)
    assert not log.exists()
    assert (tmp_path / "svc.log.1").read_text().startswith("gen 4")
    assert (tmp_path / "svc.log.2").read_text().startswith("gen 3")
    assert not (tmp_path / "svc.log.3").exists()
    log.write_text("small")
    rotate(log, max_bytes=100, backups=2)
    assert log.read_text() == "small"


def test_second_run_is_told_who_holds_the_lock_and_gives_up(tmp_path):
    assert holder(tmp_path) is None
    told = []
    with run_lock(tmp_path, told.append):
        with pytest.raises(OperationFailed, match=f"pid {os.getpid()}"):
            with run_lock(tmp_path, told.append, wait=0.2):
                pass
    assert told and f"pid {os.getpid()}" in told[0]
    with run_lock(tmp_path, told.append, wait=0.2):  # released: free again
        pass


def test_lock_is_granted_once_the_holder_finishes(tmp_path):
    release = threading.Event()
    holding = threading.Event()

    def hold():
        with run_lock(tmp_path, print):
            holding.set()
            release.wait(5)
    holder_thread = threading.Thread(target=hold)
    holder_thread.start()
    holding.wait(5)
    threading.Timer(0.2, release.set).start()
    with run_lock(tmp_path, lambda text: None, wait=3):
        pass
    holder_thread.join()


def test_never_signals_its_own_group_or_init():
    for pgid in (0, 1, os.getpgrp()):
        with pytest.raises(ValueError):
            signal_group(pgid, signal.SIGTERM)
