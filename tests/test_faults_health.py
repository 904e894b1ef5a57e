"""Health tells the truth under faults: an answer counts for a service only when the service gives it, in
every format and every monitor round; a reader that goes away ends output quietly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import realservers as rs
from health_stack import Infra, Stack
from support import REPO, run_script

@pytest.fixture(scope="module")
def infra(tmp_path_factory):
    servers = Infra(tmp_path_factory.mktemp("infra"))
    yield servers
    servers.stop()


@pytest.fixture
def impostor(tmp_path, infra):
    """A stack whose orchestrator is not running, and a stranger answering "healthy" on its port."""
    stack = Stack(tmp_path, infra, start=())
    port = stack.port("orchestrator")
    stranger = rs.start_impostor(port, tmp_path / "impostor.log")
    try:
        yield stack, stranger
    finally:
        stranger.stop()
        stack.stop()


def health(stack, *args, **kw):
    return run_script("system-health.py", "--config", str(stack.path), "--mode", "native", *args, **kw)


def test_a_stranger_answering_healthy_leaves_a_critical_service_not_running_in_every_format(impostor):
    stack, stranger = impostor
    port = stack.port("orchestrator")
    said = f"not running: port {port} is answered by pid {stranger.pid}"

    text = health(stack)
    assert text.returncode == 2, text.stdout
    assert said in text.stdout and "TMT system health: CRITICAL" in text.stdout

    document = json.loads(health(stack, "--json").stdout)
    check = document["services"]["orchestrator"]
    assert (check["status"], check["severity"]) == ("unhealthy", "critical")
    assert said in check["error"] and document["exit_code"] == 2
    assert [(h["pid"], h["ours"]) for h in check["port_holders"]] == [(stranger.pid, False)]

    nagios = health(stack, "--format", "nagios")
    assert nagios.returncode == 2
    assert nagios.stdout.startswith("SYSTEM-HEALTH CRITICAL")
    assert f"orchestrator not running (port {port} answered by pid {stranger.pid} python" in nagios.stdout

    prometheus = health(stack, "--format", "prometheus")
    assert prometheus.returncode == 2
    assert 'tmt_health_check_up{service="orchestrator",group="core",critical="true"} 0' in prometheus.stdout
    assert 'tmt_health_check_severity{service="orchestrator",group="core",critical="true"} 2' in prometheus.stdout
    assert (f'tmt_health_check_port_foreign_holder{{service="orchestrator",group="core",critical="true",'
            f'pid="{stranger.pid}",process="python') in prometheus.stdout


def test_the_stranger_is_caught_in_every_monitor_round(impostor):
    stack, stranger = impostor
    rounds = health(stack, "--monitor", "--interval", "0.3", "--count", "3", "--json", timeout=60)
    documents = [json.loads(line) for line in rounds.stdout.splitlines()]
    assert [d["round"] for d in documents if d["type"] == "round"] == [1, 2, 3]
    for d in documents:
        check = d["services"]["orchestrator"]
        assert check["severity"] == "critical" and f"pid {stranger.pid}" in check["error"], d["round"]
    assert rounds.returncode == 2

    text = health(stack, "--monitor", "--interval", "0.3", "--count", "3", timeout=60)
    lines = [line for line in text.stdout.splitlines() if line.startswith("round ")]
    assert len(lines) == 3 and all(f"answered by pid {stranger.pid}" in line for line in lines), text.stdout


def test_a_stranger_taking_the_port_during_the_monitor_is_caught_in_the_rounds_after(stack, monitors, tmp_path):
    running = stack(start=("orchestrator",))
    running.wait()
    monitor = monitors(running.path, "--monitor", "--interval", "0.3", "--json", serve=None)

    def orchestrator_in_a_round(predicate, after=0):
        return monitor.wait_event(lambda d: d["type"] == "round" and d["round"] > after and
                                  predicate(d["services"]["orchestrator"]))

    def rounds():  # what each round said of the orchestrator, for a failure's message
        return [(d["round"], d["services"]["orchestrator"]["status"], d["services"]["orchestrator"]["error"])
                for d in monitor.events() if d["type"] == "round"]

    first = orchestrator_in_a_round(lambda check: check["status"] == "healthy")
    assert first, monitor.text()
    running.procs["orchestrator"].stop()  # the service dies; a stranger answering "healthy" takes its port
    stranger = rs.start_impostor(running.port("orchestrator"), tmp_path / "impostor.log")
    try:
        caught = orchestrator_in_a_round(lambda check: f"pid {stranger.pid}" in (check["error"] or ""),
                                         first["round"])
        assert caught, rounds()
        later = orchestrator_in_a_round(lambda check: True, caught["round"])
        for check in (caught["services"]["orchestrator"], later["services"]["orchestrator"]):
            assert (check["status"], check["severity"]) == ("unhealthy", "critical"), check
            assert f"not running: port {running.port('orchestrator')} is answered by pid {stranger.pid}" in check["error"]
            assert [(h["pid"], h["ours"]) for h in check["port_holders"]] == [(stranger.pid, False)]
    finally:
        stranger.stop()


@pytest.mark.parametrize("args", [(), ("--json",), ("--format", "nagios")], ids=["text", "json", "nagios"])
def test_output_into_a_closed_pipe_ends_quietly(impostor, args):
    stack, _ = impostor
    proc = subprocess.Popen([sys.executable, str(REPO / "system-health.py"), "--config", str(stack.path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    proc.stdout.close()  # `| head -0`: the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 2, err  # the verdict, not a crash
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_monitor_piped_into_head_ends_when_the_reader_goes(impostor):
    stack, _ = impostor
    proc = subprocess.Popen([sys.executable, str(REPO / "system-health.py"), "--config", str(stack.path),
                             "--monitor", "--interval", "0.2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(30) == 2
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
