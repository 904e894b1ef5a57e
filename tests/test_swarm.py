"""--mode swarm against a real one-node Docker Swarm: one stack, started once, driven through every command.

The tests share one stack in file order (start, status, health, rolling restarts, logs, stop, removal); run
alone, a test gets it started by the `swarm_stack` fixture. A decoy stack with the same service names lives
beside it and must survive every one of them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from support import REPO, run_script, write_registry
from swarm_helpers import (CORE, remove_stack, running_tasks, services, stack_of, sw, swarm_config,  # noqa: F401
                           swarm_stack, task_ids)

from tmt_ops.engine import Engine, engine_time
from tmt_ops.ports import port_open
from tmt_ops.registry import load_registry
from tmt_ops.swarm.stackfile import ROLLOUT_LABEL
from tmt_ops.swarm.state import STACK_LABEL

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def decoy(tmp_path_factory):
    """Another stack of the same compose file: the same service names under another stack name."""
    config = write_registry(tmp_path_factory.mktemp("decoy"))
    done = sw(config, "docker-restart.py", "start")
    assert done.returncode == 0, done.stderr
    yield config
    remove_stack(config)


def running_at(task: dict) -> float:
    return engine_time(task["Status"]["Timestamp"])


def test_start_deploys_the_stack_in_dependency_waves(swarm_config, decoy):
    done = sw(swarm_config, "docker-restart.py", "start")
    assert done.returncode == 0, done.stderr
    tasks = running_tasks(swarm_config)
    assert sorted(tasks) == sorted(CORE) and all(len(t) == 1 for t in tasks.values())  # no infrastructure
    # each wave is deployed once the one before runs (swarm alone would start all four at once)
    for earlier, later in zip(CORE, CORE[1:]):
        assert engine_time(tasks[later][0]["CreatedAt"]) >= running_at(tasks[earlier][0]), (earlier, later)
    # nothing is published: swarm cannot bind 127.0.0.1, and no service is `public`
    registry = load_registry(swarm_config)
    assert not any(port_open("127.0.0.1", registry.service(n).port, 0.5) for n in CORE)
    assert "swarm: not publishing orchestrator:" in done.stderr
    assert "4 service(s) running and healthy" in done.stderr


def test_status_shows_replicas_tasks_nodes_and_the_engine(swarm_stack):
    done = sw(swarm_stack, "docker-restart.py", "status", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    hostname = Engine().info()["Name"]
    assert doc["stack"] == stack_of(swarm_stack) and doc["engine"]["swarm"] == "active"
    assert [n["hostname"] for n in doc["engine"]["nodes"]] == [hostname]
    by_name = {s["service"]: s for s in doc["services"]}
    assert sorted(by_name) == sorted(CORE)
    for s in by_name.values():
        assert (s["desired"], s["running"], s["ready"]) == (1, 1, True)
        assert [(t["node"], t["state"]) for t in s["tasks"]] == [(hostname, "running")]
    table = sw(swarm_stack, "docker-restart.py", "status")
    assert table.returncode == 0
    assert "REPLICAS" in table.stdout and "1/1" in table.stdout and f"running@{hostname}" in table.stdout


def test_system_health_probes_each_task_at_its_own_address(swarm_stack):
    done = sw(swarm_stack, "system-health.py", "--json")
    doc = json.loads(done.stdout)
    assert doc["deployment_mode"] == "swarm"
    for name in CORE:
        check = doc["services"][name]
        assert check["status"] == "healthy", check
        assert check["backend"]["state"] == "running" and check["backend"]["engine_health"] == "healthy"
        assert "127.0.0.1" not in check["url"]  # the task's container, not a port anyone could hold
    auto = subprocess.run([sys.executable, str(REPO / "system-health.py"), "--config", str(swarm_stack), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(auto.stdout)["deployment_mode"] == "swarm"  # --mode auto finds the running stack


def test_rolling_restart_of_one_service_and_its_dependents(swarm_stack, decoy):
    before, decoy_before = task_ids(swarm_stack), task_ids(decoy)
    done = sw(swarm_stack, "restart-trading-system.py", "--only", "market-analysis")
    assert done.returncode == 0, done.stderr
    after = running_tasks(swarm_stack)
    assert after["orchestrator"][0]["ID"] == before["orchestrator"]  # what it depends on is left alone
    rolled = ["market-analysis", "execution-engine", "dashboard"]
    assert all(after[n][0]["ID"] != before[n] for n in rolled)
    for earlier, later in zip(rolled, rolled[1:]):  # dependents after the services they need
        assert engine_time(after[later][0]["CreatedAt"]) >= running_at(after[earlier][0])
    hostname = Engine().info()["Name"]  # each task's call says which task, on which node
    assert (f"execution-engine (task {stack_of(swarm_stack)}_execution-engine.1 on {hostname}): pre-stop POST "
            "/api/trading/disable -> HTTP 200") in done.stderr
    assert "starting orchestrator" not in done.stderr and "orchestrator: pre-stop" not in done.stderr
    assert task_ids(decoy) == decoy_before


def test_docker_restart_no_deps_rolls_only_the_named_service(swarm_stack):
    before = task_ids(swarm_stack)
    done = sw(swarm_stack, "docker-restart.py", "restart", "market-analysis", "--no-deps")
    assert done.returncode == 0, done.stderr
    after = task_ids(swarm_stack)
    assert after["market-analysis"] != before["market-analysis"]
    assert {n: after[n] for n in CORE if n != "market-analysis"} == {n: before[n] for n in CORE
                                                                     if n != "market-analysis"}


def rollout_of(config, name: str) -> str:
    """The run id of the spec a service runs now."""
    return services(config)[name]["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"][ROLLOUT_LABEL]


def test_a_failed_roll_is_rolled_back_to_the_previous_spec(swarm_stack):
    """The dashboard's new tasks crash (a knob in its command): swarm's own rollback returns it to the spec it ran
    (non-critical: a warning, exit 0); nothing else moves."""
    before, spec = task_ids(swarm_stack), rollout_of(swarm_stack, "dashboard")
    done = sw(swarm_stack, "docker-restart.py", "restart", "dashboard",
              env={"TMT_SIM_ARGS_DASHBOARD": "--crash-at-start"})
    assert done.returncode == 0, done.stderr
    assert "warning: the restart failed (dashboard: task " in done.stderr and "exit code 3" in done.stderr
    assert "  dashboard: its previous spec (docker service rollback)\n" in done.stderr
    assert "and was rolled back: dashboard started again the way they last ran healthy" in done.stderr
    after = task_ids(swarm_stack)
    assert rollout_of(swarm_stack, "dashboard") == spec and after["dashboard"] != before["dashboard"]
    assert {n: after[n] for n in CORE[:3]} == {n: before[n] for n in CORE[:3]}


def test_dry_run_prints_the_rolling_plan_and_changes_nothing(swarm_stack):
    before = task_ids(swarm_stack)
    done = sw(swarm_stack, "restart-trading-system.py", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert (f"wave 1: roll orchestrator: POST /api/trading/disable to its task (task {stack_of(swarm_stack)}_"
            f"orchestrator.1 on {Engine().info()['Name']}: running), then deploy service") in done.stderr
    assert "wave 4: roll dashboard" in done.stderr
    assert task_ids(swarm_stack) == before


def test_logs_of_one_service_tail_and_follow(swarm_stack):
    done = sw(swarm_stack, "docker-restart.py", "logs", "orchestrator", "--tail", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(f"{stack_of(swarm_stack)}_orchestrator." in line for line in lines)
    # --follow into a reader that goes away (`| head -2`): ends at once, quietly
    cmd = (f"{sys.executable} {REPO / 'docker-restart.py'} --config {swarm_stack} --mode swarm logs --follow "
           "--tail 5 | head -2")
    started = time.monotonic()
    piped = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert len(piped.stdout.splitlines()) == 2 and "Traceback" not in piped.stderr
    assert time.monotonic() - started < 15


def test_ctrl_c_during_a_rolling_restart_deploys_nothing_more(swarm_stack):
    before = task_ids(swarm_stack)
    proc = subprocess.Popen([sys.executable, str(REPO / "restart-trading-system.py"), "--config", str(swarm_stack),
                             "--mode", "swarm"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("wave 2: starting market-analysis"):
                proc.send_signal(signal.SIGINT)
                break
        out = "".join(lines) + proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "SIGINT:" in out and "SERVICE" in out  # told, and the summary
    after = task_ids(swarm_stack)
    assert after["orchestrator"] != before["orchestrator"]  # rolled, and ready, before the interrupt: kept
    assert after["execution-engine"] == before["execution-engine"] and after["dashboard"] == before["dashboard"]
    # the roll in flight is undone: swarm's own rollback, awaited, brings market-analysis back on its previous spec
    assert "  market-analysis: its previous spec (docker service rollback)" in out
    assert after["market-analysis"] != before["market-analysis"]


def test_clean_removes_this_stacks_volumes_only_and_starts_again(swarm_stack, decoy):
    engine = Engine()

    def volume(stack: str) -> str:  # a volume of that stack, labelled as `docker stack deploy` labels them
        return subprocess.run(["docker", "volume", "create", "--label", f"{STACK_LABEL}={stack}", f"{stack}_scratch"],
                              capture_output=True, text=True, check=True).stdout.strip()
    ours = engine.volumes(f"{STACK_LABEL}={stack_of(swarm_stack)}")
    mine, theirs = volume(stack_of(swarm_stack)), volume(stack_of(decoy))
    decoy_before = task_ids(decoy)
    try:
        refused = sw(swarm_stack, "docker-restart.py", "clean")
        assert refused.returncode == 2 and "pass --yes" in refused.stderr
        done = sw(swarm_stack, "docker-restart.py", "clean", "--yes")
        assert done.returncode == 0, done.stderr
        assert f"volumes to delete (their data is lost): {', '.join(sorted([*ours, mine]))}" in done.stderr
        assert mine not in engine.volumes(f"{STACK_LABEL}={stack_of(swarm_stack)}")
        assert sorted(task_ids(swarm_stack)) == sorted(CORE)  # started again
        assert theirs in engine.volumes(f"{STACK_LABEL}={stack_of(decoy)}")
        assert task_ids(decoy) == decoy_before
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", mine, theirs], capture_output=True)


def test_stop_scales_down_in_reverse_waves_and_keeps_the_stack(swarm_stack, decoy):
    decoy_before = task_ids(decoy)
    done = sw(swarm_stack, "stop-trading-system.py")
    assert done.returncode == 0, done.stderr
    order = [next(i for i, line in enumerate(done.stderr.splitlines()) if line.startswith(f"{n}: scaled to 0"))
             for n in CORE]
    assert order == sorted(order, reverse=True)  # dashboard first, orchestrator last
    assert (f"orchestrator (task {stack_of(swarm_stack)}_orchestrator.1 on {Engine().info()['Name']}): pre-stop "
            "POST /api/trading/disable -> HTTP 200") in done.stderr
    found = services(swarm_stack)
    assert sorted(found) == sorted(CORE)  # still deployed, at zero replicas
    assert all(s["Spec"]["Mode"]["Replicated"]["Replicas"] == 0 for s in found.values())
    assert not task_ids(swarm_stack)
    assert task_ids(decoy) == decoy_before
    again = sw(swarm_stack, "docker-restart.py", "status")
    assert again.returncode == 1 and "0/0" in again.stdout


def test_stop_remove_stack_removes_only_this_stack(swarm_stack, decoy):
    decoy_before = task_ids(decoy)
    done = sw(swarm_stack, "stop-trading-system.py", "--remove-stack")
    assert done.returncode == 0, done.stderr
    assert f"removed stack {stack_of(swarm_stack)}" in done.stderr
    assert not services(swarm_stack)
    assert task_ids(decoy) == decoy_before and sorted(task_ids(decoy)) == sorted(CORE)


def test_a_failing_healthcheck_is_a_bounded_failure_that_shows_why(tmp_path):
    def edit(data):
        data["services"]["market-analysis"]["startup_timeout"] = 8
    config = write_registry(tmp_path, edit=edit)
    try:
        started = time.monotonic()
        done = sw(config, "docker-restart.py", "start", env={"TMT_SIM_ARGS_MARKET_ANALYSIS": "--hang-health"})
        took = time.monotonic() - started
        assert done.returncode == 1, done.stderr
        assert took < 60, took  # the registry's 8 s bound the wait, not the healthcheck's 60 s start period
        assert "market-analysis: not ready within 8s of its start" in done.stderr
        assert "healthcheck: exit" in done.stderr  # its healthcheck's last words
        assert "| " in done.stderr and "market-analysis[" in done.stderr  # and its own log lines
        assert "execution-engine: not started: requires market-analysis, which failed" in done.stderr
        assert "Traceback" not in done.stderr.split("healthcheck:")[0]
    finally:
        remove_stack(config)


def test_a_network_of_the_stacks_name_left_by_compose_stops_the_deploy_before_it_starts(tmp_path):
    """Docker mode's project of the same name keeps its bridge network after a stop: `stack deploy` would fail
    on it, so the preflight names it and what removes it."""
    config = write_registry(tmp_path)
    stack = stack_of(config)
    subprocess.run(["docker", "network", "create", "--label", f"com.docker.compose.project={stack}",
                    f"{stack}_default"], capture_output=True, check=True)
    try:
        done = sw(config, "docker-restart.py", "start")
        assert done.returncode == 1, done.stderr
        assert (f"preflight: network {stack}_default is compose project {stack}'s, not stack {stack}'s" in done.stderr
                and "docker-restart.py --mode docker stop --remove-stack" in done.stderr), done.stderr
        assert services(config) == {}
    finally:
        subprocess.run(["docker", "network", "rm", f"{stack}_default"], capture_output=True)
        remove_stack(config)


def test_a_public_service_is_published_in_host_mode(tmp_path):
    def edit(data):
        data["services"]["orchestrator"]["public"] = True
    config = write_registry(tmp_path, edit=edit)
    port = load_registry(config).service("orchestrator").port
    try:
        done = sw(config, "docker-restart.py", "restart", "orchestrator", "--no-deps")
        assert done.returncode == 0, done.stderr
        assert port_open("127.0.0.1", port, 1.0)
        assert "orchestrator:" not in done.stderr.split("not publishing", 1)[-1].split("\n")[0]
        done = sw(config, "docker-restart.py", "status", "--json")
        assert done.returncode == 1  # the rest of the stack is not deployed yet, and status says which
        status = {s["service"]: s for s in json.loads(done.stdout)["services"]}
        assert status["orchestrator"]["published"] == [port] and status["orchestrator"]["deployed"]
        assert [name for name in CORE if not status[name]["deployed"]] == CORE[1:]
        table = sw(config, "docker-restart.py", "status").stdout
        rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
        assert all("not deployed" in rows[name] for name in CORE[1:]), table
        quick = run_script("quick-restart.py", "--config", str(config), "swarm", timeout=300)
        assert quick.returncode == 0, quick.stderr  # rolls the orchestrator (its own port), deploys the others
        assert sorted(task_ids(config)) == sorted(CORE)
        # its port taken on this node while it is stopped: the roll would leave it (and what needs it) down
        assert sw(config, "docker-restart.py", "stop", "orchestrator", "--no-deps").returncode == 0
        before = task_ids(config)
        with socket.socket() as taker:  # as a server does: the stopped task's connections may be in TIME_WAIT
            taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taker.bind(("0.0.0.0", port))
            taker.listen()
            done = sw(config, "docker-restart.py", "restart")
        assert done.returncode == 1, done.stderr
        assert (f"preflight: orchestrator: port {port} is held by pid {os.getpid()} (" in done.stderr
                and f"not a container of stack {stack_of(config)}" in done.stderr), done.stderr
        assert task_ids(config) == before and "orchestrator" not in before  # nothing was rolled
    finally:
        remove_stack(config)
