"""The Backend interface: native processes and docker compose answer the same operations, through the same
test cases. Each mode has its own stack on free ports (docker: its own compose project), started once per
module; every case leaves it running as it found it.
"""

from __future__ import annotations

import re

import psutil
import pytest
import yaml

from docker_helpers import down
from support import run_script, write_registry
from tmt_ops.backends import Deployment
from tmt_ops.plan import plan_stop
from tmt_ops.registry import load_registry
from tmt_ops.states import ServiceState

CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]
MODES = [pytest.param("native"), pytest.param("docker", marks=pytest.mark.docker)]


def restart(config, mode, *args, env=None):
    return run_script("restart-trading-system.py", "--mode", mode, "--config", str(config), *args, env=env,
                      timeout=300)


@pytest.fixture(scope="module", params=MODES)
def deployed(request, tmp_path_factory):
    """(mode, registry file) with the whole simulated stack running in that mode."""
    mode = request.param
    config = write_registry(tmp_path_factory.mktemp(mode))
    started = restart(config, mode, "--skip-health-check")
    assert started.returncode == 0, started.stderr
    yield mode, config
    if mode == "docker":
        down(config)
    else:
        run_script("stop-trading-system.py", "--config", str(config), "--force")


def deployment(deployed) -> Deployment:
    mode, config = deployed
    return Deployment(load_registry(config), mode)


def identity(deployed, name: str):
    """What tells one running instance of a service from the next: (pid, create time) or (container id, start)."""
    d = deployment(deployed)
    service = d.registry.service(name)
    if d.mode == "docker":
        c = next(c for c in d.default.project.containers() if c.service == service.compose_service)
        return c.id, c.started_at
    pid = d.default.statuses([service])[name].pids[0]
    return pid, psutil.Process(pid).create_time()


def identities(deployed) -> dict:
    return {name: identity(deployed, name) for name in CORE}


def knob(deployed, service: str, flag: str):
    """(registry file, environment) that give `service` a simulator flag at its next start, in either mode (and
    a short startup timeout: a service that never serves fails in seconds)."""
    mode, config = deployed
    data = yaml.safe_load(config.read_text())
    data["services"][service]["startup_timeout"] = 4
    env = None
    if mode == "docker":
        env = {f"TMT_SIM_ARGS_{service.upper().replace('-', '_')}": flag}
    else:
        data["services"][service]["command"] = [*data["services"][service]["command"], flag]
    variant = config.with_name(f"knob-{service}.yaml")
    variant.write_text(yaml.safe_dump(data, sort_keys=False))
    return variant, env


def test_the_backend_detects_its_stack_and_reports_each_service(deployed):
    d = deployment(deployed)
    assert type(d.default).detect(d.registry)
    services = [d.registry.service(n) for n in CORE]
    statuses = d.default.statuses(services)
    assert {n: (s.state, s.holds_port) for n, s in statuses.items()} == {n: (ServiceState.RUNNING, True) for n in CORE}
    assert all(d.default.address(s) == s for s in services)
    assert any("ready" in line for line in d.default.logs(d.registry.service("orchestrator"), 50))


def test_the_stop_plan_is_data_with_every_decision_in_it(deployed):
    d = deployment(deployed)
    plan = plan_stop(d, [d.registry.service(n) for n in CORE], force=False)
    assert [[step.service for step in wave] for wave in plan.waves] == [[n] for n in reversed(CORE)]
    for step in plan.steps:
        service = d.registry.service(step.service)
        assert step.backend == d.default.name and step.describe().startswith(f"{step.service}: ")
        assert (step.pre_stop is not None) == (service.pre_stop is not None)
        assert step.grace == service.stop_grace
    engine = next(s for s in plan.steps if s.service == "execution-engine")
    assert engine.describe().startswith("execution-engine: POST /api/trading/disable, then ")


def test_dry_run_prints_the_plan_and_changes_nothing(deployed):
    mode, config = deployed
    before = identities(deployed)
    done = restart(config, mode, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "stop wave 1: dashboard: " in done.stderr and "wave 1: probe " in done.stderr
    assert "dry run: nothing was changed" in done.stderr
    assert identities(deployed) == before


def test_one_service_restarts_with_its_dependents_in_order_and_nothing_else_moves(deployed):
    mode, config = deployed
    before = identities(deployed)
    done = restart(config, mode, "--only", "market-analysis")
    assert done.returncode == 0, done.stderr
    after = identities(deployed)
    assert after["orchestrator"] == before["orchestrator"]  # same pid, or same container and start time
    assert all(after[n] != before[n] for n in ("market-analysis", "execution-engine", "dashboard"))
    ready = [done.stderr.index(f"{n}: ready in") for n in ("market-analysis", "execution-engine", "dashboard")]
    assert ready == sorted(ready)

    only = restart(config, mode, "--only", "market-analysis", "--no-deps")
    assert only.returncode == 0, only.stderr
    last = identities(deployed)
    assert [n for n in CORE if last[n] != after[n]] == ["market-analysis"]


def test_one_rule_for_healthy_enough(deployed):
    """A degraded critical service and an unhealthy non-critical one are warnings (exit 0); a critical one
    that does not come up fails the restart (exit 1). The same in both modes. What comes back differs: native
    keeps each service's last healthy definition and rolls back to it; docker keeps the previous image only
    (compose/previous.py), and a knob changes the compose file's command, not the image: the way back would be
    exactly what failed, so it is not tried, and the service stays down, said."""
    mode = deployed[0]
    config, env = knob(deployed, "market-analysis", "--degraded")
    degraded = restart(config, mode, "--only", "market-analysis", "--no-deps", env=env)
    assert degraded.returncode == 0, degraded.stderr
    assert "warning: market-analysis (degraded)" in degraded.stderr and "running and healthy" not in degraded.stderr

    config, env = knob(deployed, "dashboard", "--degraded")  # the dashboard answers HTTP 500: never serves
    dashboard = restart(config, mode, "--only", "dashboard", env=env)
    assert dashboard.returncode == 0, dashboard.stderr  # critical: false in the registry
    assert f"warning: the restart failed (dashboard: not ready {'after' if mode == 'native' else 'within'}" \
        in dashboard.stderr
    if mode == "native":
        assert "and was rolled back: dashboard started again the way they last ran healthy" in dashboard.stderr
        assert re.search(r"^dashboard\s+running", dashboard.stderr, re.M)  # as it last ran healthy
    else:
        assert "not running: dashboard (not rolled back: it failed with the very definition" in dashboard.stderr

    config, env = knob(deployed, "market-analysis", "--crash-at-start")
    crashed = restart(config, mode, "--only", "market-analysis", "--no-deps", env=env)
    assert crashed.returncode == 1, crashed.stderr
    failure = r"error: the restart failed \(market-analysis: (container \S+ )?exited with code 3"
    assert re.search(failure, crashed.stderr)
    assert re.search(rf"^market-analysis\s+{'running' if mode == 'native' else 'not rolled back'}", crashed.stderr, re.M)
    assert restart(deployed[1], mode).returncode == 0  # and healthy again, for the cases after this one


def test_stop_then_start_in_the_same_mode(deployed):
    mode, config = deployed
    stopped = run_script("stop-trading-system.py", "--mode", mode, "--config", str(config), timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    d = deployment(deployed)
    statuses = d.default.statuses([d.registry.service(n) for n in CORE])
    assert {s.state for s in statuses.values()} == {ServiceState.STOPPED}
    assert not type(d.default).detect(d.registry)
    assert restart(config, mode).returncode == 0
