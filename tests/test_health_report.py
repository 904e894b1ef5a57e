"""Pure units of the report: the docker and native merge rules (ServiceStatus values, no engine), severity,
debounce, and the commands findings recommend."""

from __future__ import annotations

import pytest

from support import write_registry
from tmt_ops.backends import Deployment, ServiceStatus
from tmt_ops.commands import current
from tmt_ops.health import advice
from tmt_ops.health.merge import after_pre_stop, impostor, merge_docker, merge_native
from tmt_ops.health.monitor import Debouncer
from tmt_ops.health.checks import Check, PortHolder
from tmt_ops.health.resources import CpuSampler
from tmt_ops.health.severity import of_health, of_value, worst
from tmt_ops.prestopped import PreStopped
from tmt_ops.probes import ProbeResult
from tmt_ops.registry import Threshold, load_registry
from tmt_ops.states import Health, Overall, ServiceState

URL = "http://127.0.0.1:8000/health"
OK = ProbeResult(Health.HEALTHY, URL, 3.0, {"status": "healthy"}, None, 200, True)
REFUSED = ProbeResult(Health.UNHEALTHY, URL, 1.0, None, "connection refused on 127.0.0.1:8000", None, False)


def status(state, **kw):
    return ServiceStatus("orchestrator", state, **kw)


# -- docker: container state and engine health join the probe ------------------------------------------------------
@pytest.mark.parametrize("result, backend, expected, words", [
    (OK, status(ServiceState.RUNNING, container="tmt-orchestrator-1", engine_health="healthy"), Health.HEALTHY, None),
    (OK, status(ServiceState.RUNNING, container="c", engine_health="unhealthy"), Health.DEGRADED,
     "engine's healthcheck"),
    (REFUSED, status(ServiceState.RUNNING, container="c", engine_health="unhealthy"), Health.UNHEALTHY,
     "engine healthcheck: unhealthy"),
    (REFUSED, status(ServiceState.STARTING, container="c", engine_health="starting"), Health.STARTING,
     "container is starting"),
    (REFUSED, status(ServiceState.RUNNING, container="c", engine_health="starting"), Health.STARTING, "starting"),
    (REFUSED, status(ServiceState.STOPPED, container="tmt-orchestrator-1", exit_code=137), Health.UNHEALTHY,
     "container tmt-orchestrator-1 is stopped (exit code 137)"),
    (REFUSED, status(ServiceState.FAILED, container="c", exit_code=1, detail="restarting"), Health.UNHEALTHY,
     "is failed (exit code 1); restarting"),
    (REFUSED, status(ServiceState.STOPPED), Health.UNHEALTHY, "refused on 127.0.0.1:8000; no container"),
    # infrastructure outside the compose project (installed on the host): its probe alone decides
    (OK, None, Health.HEALTHY, None),
    (REFUSED, None, Health.UNHEALTHY, "connection refused"),
])
def test_docker_merge(result, backend, expected, words):
    health, error = merge_docker(result, backend)
    assert health is expected
    assert (error is None) if words is None else (words in error), error


def test_docker_merge_keeps_the_probe_error_first():
    _, error = merge_docker(REFUSED, status(ServiceState.STOPPED, container="c"))
    assert error.startswith("connection refused") and "container c is stopped" in error


@pytest.mark.parametrize("result, backend, expected", [
    (OK, status(ServiceState.STOPPED, container="c", exit_code=0), True),  # its container is down: not its answer
    (OK, status(ServiceState.STOPPED, detail="port 8000 is held by pid 9"), True),  # native: nothing of it runs
    (OK, status(ServiceState.RUNNING, pids=(10,), holds_port=False), True),  # runs, but another process answers
    (OK, status(ServiceState.RUNNING, container="c", holds_port=False), True),  # its container does not publish it
    (OK, status(ServiceState.RUNNING, pids=(10,), holds_port=True), False),
    (OK, None, False),  # no backend view (infrastructure): the probe alone decides
    (REFUSED, status(ServiceState.STOPPED), False),  # nothing answers: nothing to attribute
])
def test_an_answer_counts_only_when_it_comes_from_the_service(result, backend, expected):
    assert impostor(result, backend) is expected


@pytest.mark.parametrize("result, backend, expected, words", [
    (OK, status(ServiceState.RUNNING, pids=(10, 11)), Health.HEALTHY, None),
    (REFUSED, status(ServiceState.RUNNING, pids=(10,)), Health.UNHEALTHY, "process 10 runs but does not accept"),
    (REFUSED, status(ServiceState.STARTING, pids=(10,)), Health.STARTING, "process is starting"),
    (REFUSED, status(ServiceState.FAILED, detail="exited without a stop"), Health.UNHEALTHY, "exited without a stop"),
    (REFUSED, None, Health.UNHEALTHY, "connection refused"),
])
def test_native_merge(result, backend, expected, words):
    health, error = merge_native(result, backend)
    assert health is expected
    assert (error is None) if words is None else (words in error), error



# -- a service that runs on after its pre-stop call ----------------------------------------------------------------
CALLED = PreStopped("orchestrator", 1000.0, "POST /api/trading/disable")  # the call, at 1000 (wall clock)


@pytest.mark.parametrize("health, error, backend, record, expected", [
    # the run that got the call (up 500 s at 1200: started at 700) answers healthy: it may not be trading
    (Health.HEALTHY, None, status(ServiceState.RUNNING, uptime_seconds=500), CALLED, Health.DEGRADED),
    (Health.DEGRADED, "says degraded", status(ServiceState.RUNNING, uptime_seconds=500), CALLED, Health.DEGRADED),
    (Health.HEALTHY, None, status(ServiceState.RUNNING), CALLED, Health.DEGRADED),  # no uptime: the record holds
    # another run (started at 1100, after the call), or none: the record is not about it
    (Health.HEALTHY, None, status(ServiceState.RUNNING, uptime_seconds=100), CALLED, Health.HEALTHY),
    (Health.UNHEALTHY, "refused", status(ServiceState.STOPPED), CALLED, Health.UNHEALTHY),
    (Health.UNHEALTHY, "refused", status(ServiceState.RUNNING, uptime_seconds=500), CALLED, Health.UNHEALTHY),
    (Health.HEALTHY, None, None, CALLED, Health.HEALTHY),  # outside the deployment: nothing says it is that run
    (Health.HEALTHY, None, status(ServiceState.RUNNING, uptime_seconds=500), None, Health.HEALTHY),
])
def test_a_record_of_a_pre_stop_degrades_only_the_run_that_got_the_call(health, error, backend, record, expected):
    joined, words = after_pre_stop(health, error, backend, record, 1200.0)
    assert joined is expected
    if expected is Health.DEGRADED:
        assert words == "; ".join(filter(None, [error, CALLED.describe()]))
    else:
        assert words == error


def test_a_damaged_pre_stop_record_still_degrades_the_service(tmp_path):
    from tmt_ops import prestopped
    folder = tmp_path / "state" / prestopped.KIND
    folder.mkdir(parents=True)
    (folder / "orchestrator.json").write_text('{"service": "orchestrator", "at": NaN}')
    record = prestopped.read(tmp_path / "state")["orchestrator"]
    assert record.at is None and "record is damaged" in record.describe()
    joined, _ = after_pre_stop(Health.HEALTHY, None, status(ServiceState.RUNNING, uptime_seconds=5), record, 1200.0)
    assert joined is Health.DEGRADED


# -- severity ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("health, critical, expected", [
    (Health.HEALTHY, True, Overall.HEALTHY), (Health.DEGRADED, True, Overall.WARNING),
    (Health.STARTING, True, Overall.WARNING), (Health.UNHEALTHY, True, Overall.CRITICAL),
    (Health.TIMEOUT, True, Overall.CRITICAL), (Health.ERROR, True, Overall.CRITICAL),
    (Health.UNHEALTHY, False, Overall.WARNING), (Health.TIMEOUT, False, Overall.WARNING),
])
def test_criticality_from_the_registry(health, critical, expected):
    assert of_health(health, critical) is expected


def test_threshold_edges_and_worst():
    t = Threshold(80, 90)
    assert [of_value(v, t) for v in (79.9, 80, 89.9, 90, 100)] == [
        Overall.HEALTHY, Overall.WARNING, Overall.WARNING, Overall.CRITICAL, Overall.CRITICAL]
    assert worst([Overall.WARNING, Overall.HEALTHY, Overall.CRITICAL]) is Overall.CRITICAL
    assert worst([]) is Overall.HEALTHY


def test_cpu_sampler_leaves_the_checker_out():
    """A busy loop in this process: psutil's system figure counts it, the sampler's does not."""
    import os
    import time
    import psutil
    sampler = CpuSampler()
    psutil.cpu_percent(None)
    own_before, started = sum(os.times()[:2]), time.monotonic()
    while time.monotonic() - started < 1.0:
        pass
    system = psutil.cpu_percent(None)
    percent, window = sampler.read()
    own_share = 100 * (sum(os.times()[:2]) - own_before) / (window * psutil.cpu_count())
    assert window >= 1.0 and own_share > 8  # the loop did show up in the system's CPU time
    # the sampler's figure is the system's without ours (to the tick), so it is clearly below the system's
    assert abs(percent - max(0.0, system - own_share)) < max(3.0, own_share / 2), (percent, system, own_share)


# -- debounce ------------------------------------------------------------------------------------------------------
def test_debounce_reports_a_state_once_it_held_for_n_rounds():
    d = Debouncer(2)
    assert d.observe({"a": "healthy"}, 1) == []  # first sight sets the baseline
    assert d.observe({"a": "timeout"}, 2) == []  # one slow answer
    assert d.observe({"a": "healthy"}, 3) == []  # ... and back: no flap
    assert d.observe({"a": "unhealthy"}, 4) == []
    (change,) = d.observe({"a": "unhealthy"}, 5)
    assert (change.subject, change.old, change.new, change.at, change.rounds) == ("a", "healthy", "unhealthy", 5, 2)
    assert d.observe({"a": "unhealthy"}, 6) == []


def test_debounce_needs_the_same_new_state_in_a_row():
    d = Debouncer(3)
    d.observe({"a": "healthy"}, 0)
    for at, state in enumerate(["timeout", "unhealthy", "timeout", "unhealthy"], 1):
        assert d.observe({"a": state}, at) == []
    assert d.observe({"a": "unhealthy"}, 5) == []
    assert [c.new for c in d.observe({"a": "unhealthy"}, 6)] == ["unhealthy"]


def test_debounce_of_one_round_reports_at_once():
    d = Debouncer(1)
    d.observe({"a": "healthy"}, 0)
    assert [(c.old, c.new) for c in d.observe({"a": "degraded"}, 1)] == [("healthy", "degraded")]


# -- findings name the service and the next command ----------------------------------------------------------------
@pytest.fixture
def registry(tmp_path):
    return load_registry(write_registry(tmp_path))


def _check(service, health, error="refused", backend=None, holders=()):
    result = ProbeResult(health, service.url, 1.0, None, error, None, False)
    return Check(service, result, health, error, backend, tuple(holders))


def findings_of(registry, mode, check):
    return advice._check_findings(advice.Commands(registry, mode), Deployment(registry, mode), check)


@pytest.mark.parametrize("mode", ["native", "docker"])
def test_findings_name_the_one_service_in_every_mode_with_the_same_commands(registry, mode):
    orch = registry.service("orchestrator")
    (finding,) = findings_of(registry, mode, _check(orch, Health.UNHEALTHY))
    assert finding.severity is Overall.CRITICAL and finding.subject == "orchestrator"
    options = ["--config", str(registry.path), "--mode", mode]
    assert [s.command for s in finding.steps] == [
        current().command("logs", *options, "orchestrator", "--tail", "100"),
        current().command("restart", *options, "--only", "orchestrator")]


def test_foreign_holder_finding_names_the_process(registry):
    dash = registry.service("dashboard")
    holder = PortHolder(4242, "nginx", "www-data", "nginx: master process", ours=False)
    findings = findings_of(registry, "native", _check(dash, Health.UNHEALTHY, "HTTP 404", holders=[holder]))
    messages = [f.message for f in findings]
    assert any(f"port {dash.port} is held by pid 4242 (nginx, user www-data)" in m for m in messages)
    assert any(s.command == "ps -o pid,user,etime,args -p 4242" for f in findings for s in f.steps)


def test_infrastructure_is_not_restarted_natively(registry):
    pg = registry.service("postgres")
    (finding,) = findings_of(registry, "native", _check(pg, Health.UNHEALTHY))
    assert [s.command for s in finding.steps] == [f"ss -ltnp 'sport = :{pg.port}'"]
