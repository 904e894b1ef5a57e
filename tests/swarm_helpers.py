"""Helpers of the swarm tests: a registry whose stack is its own (free ports, a tmt-test-* stack name), what the
engine says about that stack, and a teardown that removes it and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import run_script, wait_for, write_registry

from tmt_ops.engine import Engine
from tmt_ops.registry import load_registry
from tmt_ops.swarm.state import STACK_LABEL

CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]


def stack_of(config: Path) -> str:
    return load_registry(config).swarm_stack


def services(config: Path, stack: str | None = None) -> dict[str, dict]:
    """compose service -> its swarm service, of this registry's stack (or `stack`)."""
    name = stack or stack_of(config)
    return {s["Spec"]["Name"][len(name) + 1:]: s for s in Engine().services(f"{STACK_LABEL}={name}")}


def running_tasks(config: Path, stack: str | None = None) -> dict[str, list[dict]]:
    """compose service -> its running tasks (newest first)."""
    found = services(config, stack)
    tasks = Engine().tasks([s["ID"] for s in found.values()])
    by_id = {s["ID"]: name for name, s in found.items()}
    out: dict[str, list[dict]] = {name: [] for name in found}
    for t in sorted(tasks, key=lambda t: t["CreatedAt"], reverse=True):
        if t["Status"]["State"] == "running" and t["DesiredState"] == "running":
            out[by_id[t["ServiceID"]]].append(t)
    return out


def task_ids(config: Path, stack: str | None = None) -> dict[str, str]:
    return {name: tasks[0]["ID"] for name, tasks in running_tasks(config, stack).items() if tasks}


def sw(config: Path, script: str, *args: str, **kw):
    """SCRIPT --config CONFIG --mode swarm ARGS... (docker-restart.py takes its command after the flags)."""
    kw.setdefault("timeout", 300)
    return run_script(script, "--config", str(config), "--mode", "swarm", *args, **kw)


def remove_stack(config: Path, stack: str | None = None) -> None:
    """Teardown: `docker stack rm` of this stack, then its volumes once its containers are gone."""
    name = stack or stack_of(config)
    subprocess.run(["docker", "stack", "rm", name], capture_output=True, timeout=60)
    engine = Engine()
    label = f"{STACK_LABEL}={name}"

    def gone() -> bool:
        if engine.listed(label):
            return False
        for network in engine.networks(label):  # `stack rm` tries once; a task's endpoint may still hold it
            subprocess.run(["docker", "network", "rm", network], capture_output=True, timeout=60)
        return not engine.networks(label)
    assert wait_for(gone, 60, 0.5), f"stack {name} left containers or networks behind"
    for volume in engine.volumes(label):
        engine.remove("volumes", volume)


@pytest.fixture(scope="module")
def swarm_config(tmp_path_factory):
    """A registry (free ports, its own stack) shared by a module's tests; its stack is removed after."""
    config = write_registry(tmp_path_factory.mktemp("swarm"))
    yield config
    remove_stack(config)


@pytest.fixture
def swarm_stack(swarm_config):
    """The shared stack, running: started here unless it already runs in full."""
    if sorted(task_ids(swarm_config)) != sorted(CORE):
        done = sw(swarm_config, "docker-restart.py", "start")
        assert done.returncode == 0, done.stderr
    return swarm_config
