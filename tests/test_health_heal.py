"""system-health.py --monitor --heal end to end (native mode): the simulated stack started by the toolkit on free
ports, a real monitor process healing it, services killed for real. Checked by pid: what came back, what
was left alone, what a person stopped on purpose."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import jsonschema
import pytest

from health_stack import CALM, UNUSED_INFRA
from monitor_support import Monitor
from native_support import alive, recorded_pids, restart, state_dir, stop
from support import REPO
from tmt_ops.lock import run_lock

INFRA = {"postgres", "redis", "kafka"}  # in the test registries, never running: never to be healed
# the monitor's heal line, as the shipped schema describes it
HEAL_EVENT = json.loads((REPO / "tmt_ops" / "health" / "schema.json").read_text())["$defs"]["heal"]


def heal_registry(registry_file, *, max_per_hour=3, knobs=None):
    def edit(data):
        data["health"].update(monitor_interval=0.3, thresholds=dict(CALM))
        data["heal"] = {"after_rounds": 2, "max_per_hour": max_per_hour, "backoff_seconds": 0.2,
                        "backoff_max_seconds": 1}
    cfg = registry_file(drop=UNUSED_INFRA, edit=edit, knobs=knobs)
    started = restart(cfg, "--skip-health-check")
    assert started.returncode == 0, started.stderr
    return cfg


def heals(monitor: Monitor, kind: str | None = None) -> list[dict]:
    found = [e for e in monitor.events() if e["type"] == "heal" and kind in (None, e["event"])]
    for event in found:
        jsonschema.validate(event, HEAL_EVENT)
    return found


def heal_event(kind: str, services=None):
    return lambda e: e["type"] == "heal" and e["event"] == kind and services in (None, e["services"])


def last_round(monitor: Monitor) -> int:
    return max((e["round"] for e in monitor.events() if e["type"] == "round"), default=0)


def wait_rounds(monitor: Monitor, n: int) -> None:
    target = last_round(monitor) + n
    assert monitor.wait_event(lambda e: e["type"] == "round" and e["round"] >= target), monitor.text()


def kill(cfg, service: str) -> int:
    pid = recorded_pids(cfg)[service]
    os.killpg(pid, signal.SIGKILL)
    return pid


def test_a_killed_service_comes_back_with_its_dependents_and_the_server_answers_meanwhile(registry_file, monitors):
    cfg = heal_registry(registry_file)
    before = recorded_pids(cfg)
    m = monitors(cfg, "--heal", "--json")  # --serve implies the monitor
    m.wait_event(lambda e: e["type"] == "round")
    answers, done = [], threading.Event()

    def keep_asking():
        while not done.is_set():
            began = time.monotonic()
            answers.append((m.request("/livez")[0], time.monotonic() - began))
            time.sleep(0.02)

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        kill(cfg, "market-analysis")
        result = m.wait_event(heal_event("result"), timeout=60)
    finally:
        done.set()
        asking.join()
    assert result is not None, m.text()
    (attempt,) = heals(m, "attempt")
    assert attempt["services"] == ["market-analysis"]
    assert attempt["restarting"] == ["market-analysis", "execution-engine", "dashboard"]
    assert result["ok"] is True and result["exit_code"] == 0, result
    after = recorded_pids(cfg)
    assert after["orchestrator"] == before["orchestrator"]  # not a dependent: untouched
    for name in ("market-analysis", "execution-engine", "dashboard"):
        assert after[name] != before[name] and alive(after[name]), name
    assert len(answers) > 10 and all(status == 200 for status, _ in answers)
    assert max(seconds for _, seconds in answers) < 1, answers  # the server kept answering during the heal
    m.wait_http("/api/rounds", lambda status, body: all(
        c["status"] == "healthy" for c in json.loads(body)["latest"]["services"].values()))
    assert not any(set(e["services"]) & INFRA for e in heals(m))  # infrastructure is down all along: never healed
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    assert "heal: market-analysis down for 2 rounds: restarting market-analysis, execution-engine, dashboard" in log
    assert "heal: market-analysis healed in " in log


def test_a_deliberate_stop_is_not_healed_until_a_restart_lifts_it(registry_file, monitors):
    cfg = heal_registry(registry_file)
    m = monitors(cfg, "--monitor", "--heal", "--json", serve=None)
    m.wait_event(lambda e: e["type"] == "round")
    assert stop(cfg, "--only", "dashboard").returncode == 0
    marker = state_dir(cfg) / "stopped" / "dashboard.json"
    assert marker.is_file() and marker.stat().st_mode & 0o777 == 0o600
    told = m.wait_event(heal_event("stopped_on_purpose", ["dashboard"]))
    assert told and "stopped on purpose at " in told["message"], m.text()
    wait_rounds(m, 6)
    assert heals(m, "attempt") == [] and len(heals(m, "stopped_on_purpose")) == 1  # said once
    assert "dashboard" not in recorded_pids(cfg)
    assert restart(cfg, "--only", "dashboard").returncode == 0
    assert not marker.exists()
    kill(cfg, "dashboard")  # now it counts as a crash again
    result = m.wait_event(heal_event("result", ["dashboard"]), timeout=60)
    assert result and result["ok"], m.text()



@pytest.mark.parametrize("seen, then", [(True, "vanished"), (False, "vanished"), (False, "was replaced")],
                         ids=["marker-seen", "marker-never-seen", "replaced-by-a-new-one"])
def test_a_deliberate_stop_outlives_its_state_directory(registry_file, monitors, seen, then):
    """The state directory removed after a stop (as an operator clears a stale record), or replaced by a new empty
    one (which ext4 gives the removed one's inode number): the execution engine stays down, whether the monitor saw
    its marker before (it remembers it) or not (the loss leaves what is down then stopped on purpose), until a
    restart brings it up; a crash after that is healed."""
    cfg = heal_registry(registry_file)
    state = state_dir(cfg)
    m = monitors(cfg, "--monitor", "--heal", "--json", serve=None)
    m.wait_event(lambda e: e["type"] == "round")
    if not seen:
        m.proc.send_signal(signal.SIGSTOP)  # no round between the stop and the removal
    try:
        assert stop(cfg, "--only", "execution-engine").returncode == 0
        if seen:
            assert m.wait_event(heal_event("stopped_on_purpose", ["execution-engine"])), m.text()
        shutil.rmtree(state)
        if then == "was replaced":
            state.mkdir(mode=0o700)
    finally:
        m.proc.send_signal(signal.SIGCONT)
    wait_rounds(m, 6)
    assert heals(m, "attempt") == [] and "execution-engine" not in recorded_pids(cfg), m.text()
    (lost,) = [e for e in heals(m) if f"{state} {then}: " in e["message"]]  # said once
    assert lost["event"] == "stopped_on_purpose" and lost["services"] == ["execution-engine", "dashboard"]
    assert "count as stopped on purpose until a restart or start brings them up" in lost["message"]
    assert restart(cfg, "--only", "execution-engine").returncode == 0
    wait_rounds(m, 1)  # seen running: the memory ends
    kill(cfg, "execution-engine")
    result = m.wait_event(heal_event("result", ["execution-engine"]), timeout=60)
    assert result and result["ok"], m.text()


def test_a_state_directory_that_cannot_be_read_heals_nothing_and_says_so_once(registry_file, monitors):
    cfg = heal_registry(registry_file)
    dashboard = recorded_pids(cfg)["dashboard"]
    m = monitors(cfg, "--monitor", "--heal", "--json", serve=None)
    m.wait_event(lambda e: e["type"] == "round")
    state = state_dir(cfg)
    shutil.rmtree(state)
    state.write_text("not a directory\n")  # replaced by a file
    os.killpg(dashboard, signal.SIGKILL)
    told = m.wait_event(heal_event("skipped"))
    assert told and told["message"].startswith(f"not healing: the state directory {state} is a regular file"), m.text()
    wait_rounds(m, 6)
    assert heals(m, "attempt") == [] and len(heals(m, "skipped")) == 1, m.text()  # said once
    latest = [e for e in m.events() if e["type"] == "round"][-1]  # ... and every round's report says why
    assert any(f["subject"] == "state directory" and f["severity"] == "warning" for f in latest["findings"])
    state.unlink()  # readable again (no state directory): the dashboard went down while it was not
    lost = m.wait_event(lambda e: heal_event("stopped_on_purpose")(e) and "vanished" in e["message"])
    assert lost and lost["services"] == ["dashboard"], m.text()
    wait_rounds(m, 4)
    assert heals(m, "attempt") == [] and "Traceback" not in m.text()

def test_the_cap_holds_and_is_a_critical_finding(registry_file, monitors):
    cfg = heal_registry(registry_file, max_per_hour=2, knobs={"dashboard": ["--exit-after", "1"]})
    m = monitors(cfg, "--monitor", "--heal", "--json", serve=None)
    gave_up = m.wait_event(heal_event("gave_up", ["dashboard"]), timeout=90)
    assert gave_up, m.text()
    wait_rounds(m, 6)
    assert len(heals(m, "attempt")) == 2 and len(heals(m, "gave_up")) == 1, m.text()
    latest = [e for e in m.events() if e["type"] == "round"][-1]
    finding = [f for f in latest["findings"] if f["subject"] == "dashboard" and "heal.max_per_hour" in f["message"]]
    assert finding and finding[0]["severity"] == "critical" and finding[0]["steps"], latest["findings"]
    assert latest["overall_status"] == "critical" and latest["services"]["dashboard"]["critical"] is False
    assert m.stop(signal.SIGINT) == 2


def test_no_heal_while_another_run_holds_the_lock(registry_file, monitors):
    cfg = heal_registry(registry_file)
    m = monitors(cfg, "--monitor", "--heal", serve=None)  # text: a line per heal event
    m.wait_line(lambda line: line.startswith("round 1:"))
    with run_lock(state_dir(cfg), lambda text: None):
        kill(cfg, "dashboard")
        skipped = m.wait_line(lambda line: line.startswith("heal: dashboard down, not healed this round"))
        assert skipped and f"another run holds the lock (pid {os.getpid()} " in skipped, m.text()
        wait_rounds_text = len(m.out) + 3
        m.wait_line(lambda line: len(m.out) >= wait_rounds_text)
        assert not any(line.startswith("heal: dashboard down for") for line in m.out)
    assert m.wait_line(lambda line: line.startswith("heal: dashboard healed in "), timeout=60), m.text()
    assert alive(recorded_pids(cfg)["dashboard"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_a_heal_behaves_as_in_a_restart_then_ends_the_monitor(registry_file, monitors, sig):
    cfg = heal_registry(registry_file, knobs={"dashboard": ["--stop-delay", "2"]})
    before = recorded_pids(cfg)
    m = monitors(cfg, "--monitor", "--heal", "--json", serve=None)
    m.wait_event(lambda e: e["type"] == "round")
    dashboard_log = state_dir(cfg).parent / "logs" / "dashboard.log"
    kill(cfg, "market-analysis")
    assert m.wait_event(heal_event("attempt"), timeout=30), m.text()
    deadline = time.monotonic() + 20
    while "received SIGTERM" not in dashboard_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    m.proc.send_signal(sig)  # the heal is in its stop wave: the dashboard drains for 2 s
    assert m.stop(signal.SIGCONT, timeout=60) == 2  # the last round's code: market-analysis (critical) down
    (result,) = heals(m, "result")
    assert result["exit_code"] == 130 and result["ok"] is False and result["message"].endswith("the monitor ends")
    assert "what this run stopped was started again" in result["message"]
    err = "\n".join(m.err)
    assert "then starting again what this run stopped" in err, err
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()  # every line of the heal, shown or not
    assert "heal: starting again what this run took down (interrupted), the way it last ran healthy: dashboard" in log
    # as restart-trading-system.py --only market-analysis: the stop in flight (the dashboard) finished, nothing
    # more was signalled, and the dashboard was started again (it waits for market-analysis, which stays down)
    after = recorded_pids(cfg)
    assert not alive(before["dashboard"]) and "heal: dashboard: not started: requires Market Analysis" in err
    assert after["execution-engine"] == before["execution-engine"] and alive(after["execution-engine"])
    assert after["orchestrator"] == before["orchestrator"] and alive(after["orchestrator"])
    assert not alive(before["market-analysis"]) and "Traceback" not in m.text()
