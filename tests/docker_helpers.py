"""Helpers of the docker tests: a registry with its own compose project and free ports, and teardown."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker
import pytest
from support import run_script, write_registry

from tmt_ops.compose import previous
from tmt_ops.compose.containers import container_labels, project_label
from tmt_ops.compose.project import Project
from tmt_ops.engine import Engine
from tmt_ops.compose.flavour import compose_command
from tmt_ops.compose.runner import compose_environment
from tmt_ops.registry import load_registry


TEST_PROJECT_PREFIX = "tmt-test-"  # write_registry's compose projects
IMAGE_TITLE = "org.opencontainers.image.title"  # docker/Dockerfile labels the simulator's image "tmt-sim"
CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]  # the shipped compose stack


@pytest.fixture(scope="module")
def stack_config(tmp_path_factory):
    """A registry (free ports, its own compose project) shared by a module's tests; its project is removed after."""
    config = write_registry(tmp_path_factory.mktemp("stack"))
    yield config
    down(config)


@pytest.fixture
def stack(stack_config):
    """The shared stack, running: started here unless an earlier test left it running and healthy, so the
    module's tests share one start in file order and each still runs alone."""
    if sorted(healthy_containers(stack_config)) != sorted(CORE):
        done = dr(stack_config, "start", timeout=300)
        assert done.returncode == 0, done.stderr
    return stack_config


def healthy_containers(config: Path) -> dict[str, str]:
    """compose service -> container id, of the project's running and healthy containers."""
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Id"]
            for c in Engine().containers(*container_labels(project_of(config)))
            if c["State"]["Running"] and (c["State"].get("Health") or {}).get("Status") == "healthy"}


def dr(config: Path, *args: str, **kw):
    """docker-restart.py --config CONFIG ARGS..."""
    return run_script("docker-restart.py", "--config", str(config), *args, **kw)


def down(config: Path, project: str | None = None, file: Path | None = None) -> None:
    """Teardown: remove this registry's compose project (or `project`), volumes included; nothing else."""
    registry = load_registry(config)
    project = project or registry.compose_project
    subprocess.run([*compose_command(), "-p", project, "-f", str(file or registry.compose_file), "down",
                    "--volumes", "--remove-orphans", "--timeout", "1"],
                   env={**compose_environment(registry), "COMPOSE_PROFILES": "*"},  # jobs' containers too
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    engine = Engine()
    for volume in engine.volumes(project_label(project)):  # Compose v1 creates every declared volume
        engine.remove("volumes", volume)
    assert not engine.container_ids(*container_labels(project)), "teardown left containers behind"
    previous.drop_all(Project(registry, project, file))  # the images a failed restart kept for a rollback
    remove_old_test_images()


def remove_old_test_images() -> None:
    """Each build re-tags tmt-sim:local (Compose v2 labels every image with its project; v1 builds its own),
    leaving the previous image dangling. Remove dangling simulator images of no project or of a test project
    with no container left; anything still in use stays (no force)."""
    client = docker.from_env()
    for image in client.images.list(filters={"dangling": True, "label": f"{IMAGE_TITLE}=tmt-sim"}):
        owner = image.labels.get("com.docker.compose.project", TEST_PROJECT_PREFIX)
        if owner.startswith(TEST_PROJECT_PREFIX) and not Engine().container_ids(project_label(owner)):
            try:
                client.images.remove(image.id)
            except docker.errors.APIError:  # in use, or already gone
                pass


def project_of(config: Path) -> str:
    return load_registry(config).compose_project
