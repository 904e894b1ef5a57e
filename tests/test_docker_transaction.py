"""Docker mode's restart as a transaction, on a real engine: a service whose new image fails comes back on the
image it ran before; a paused container is found before anything stops; clean removes what exists, whatever
profile started it, and refuses up front what the engine would refuse half-way."""

from __future__ import annotations

import subprocess

import docker
import pytest
import yaml

from docker_helpers import CORE, dr, down, healthy_containers, project_of, stack  # noqa: F401  (fixture)
from infra_images import IMAGE_ENV, POSTGRES_PASSWORD, require_images
from support import REPO, run_script, write_registry

from tmt_ops.compose import previous
from tmt_ops.compose.containers import container_labels, project_label
from tmt_ops.engine import Engine

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def built():
    """Images (names or ids) the module's tests build: removed once the project's containers are gone."""
    images: list[str] = []
    yield images
    client = docker.from_env()
    for image in reversed(images):
        try:
            client.images.remove(image)
        except docker.errors.APIError:  # already gone
            pass


@pytest.fixture(scope="module")
def stack_config(tmp_path_factory, built):
    """The module's registry (its project removed after it, before the images it built)."""
    config = write_registry(tmp_path_factory.mktemp("stack"))
    yield config
    down(config)


def containers(config) -> dict[str, dict]:
    """compose service -> its container, inspected."""
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c
            for c in Engine().containers(*container_labels(project_of(config)))}


def ids(config) -> dict[str, str]:
    return {name: c["Id"] for name, c in containers(config).items()}


def compose_file_with(tmp_path, service: str, image: str, context) -> str:
    """The shipped compose file, with `service` built from `context` as `image` (the other builds as shipped)."""
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for spec in data["services"].values():
        if "build" in spec:
            spec["build"] = {"context": str(REPO / "tmt_sim"), "dockerfile": str(REPO / "docker" / "Dockerfile")}
    data["services"][service].update(image=image, build={"context": str(context)})
    path = tmp_path / "compose-variant.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_a_broken_image_is_rolled_back_to_the_previous_one(stack, built, tmp_path):
    """Its image rebuilt and broken (its tag moved: the image it ran is named by nothing else but the toolkit's
    tag), market-analysis fails; it and its dependents, stopped for it, come back on the images they ran."""
    project = project_of(stack)
    tag = f"{project}-market-analysis:test"
    context = tmp_path / "image"
    context.mkdir()
    compose = compose_file_with(tmp_path, "market-analysis", tag, context)
    (context / "Dockerfile").write_text("FROM tmt-sim:local\nLABEL tmt-test.variant=good\n")
    good = dr(stack, "--compose-file", compose, "restart", "market-analysis", "--no-deps", timeout=300)
    assert good.returncode == 0, good.stderr
    good_image = containers(stack)["market-analysis"]["Image"]
    built += [good_image, tag]
    kept = previous.reference(project, "market-analysis")
    assert Engine().image(kept) is None  # healthy: its previous image is no longer kept
    before = ids(stack)

    (context / "Dockerfile").write_text(f'FROM {tag}\nENTRYPOINT ["python3", "-c", "raise SystemExit(3)"]\n')
    done = dr(stack, "--compose-file", compose, "restart", "market-analysis", timeout=300)
    assert done.returncode == 1, done.stderr  # critical: its failed start fails the restart, rolled back or not
    assert "error: the restart failed (market-analysis: container " in done.stderr
    assert "exited with code 3" in done.stderr
    assert f"  market-analysis: its previous image {previous.short(good_image)} (kept " in done.stderr
    assert ("and was rolled back: market-analysis, execution-engine, dashboard started again the way they last ran "
            "healthy") in done.stderr
    after = containers(stack)
    assert sorted(healthy_containers(stack)) == sorted(CORE)
    assert after["market-analysis"]["Image"] == good_image != Engine().image(tag)["Id"]
    assert after["orchestrator"]["Id"] == before["orchestrator"]
    assert after["market-analysis"]["Config"]["Image"] == kept  # its image's only name, while it runs


@pytest.fixture
def paused_dashboard(stack):
    """The stack with its dashboard's container paused (`docker pause`): {service: container id} before."""
    before = ids(stack)
    subprocess.run(["docker", "pause", before["dashboard"]], check=True, capture_output=True)
    yield before
    subprocess.run(["docker", "unpause", before["dashboard"]], capture_output=True)  # unless it was replaced


def restart_dashboard(config, *args: str):
    return run_script("restart-trading-system.py", "--mode", "docker", "--config", str(config), "--only", "dashboard",
                      *args, timeout=300)


def test_a_paused_container_stops_a_restart_before_anything_stops(stack, paused_dashboard):
    refused = restart_dashboard(stack)
    assert refused.returncode == 1, refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.startswith("preflight: dashboard: container ")]
    assert len(lines) == 1, refused.stderr
    assert "is paused (docker pause): it would not stop" in lines[0] and "use --force" in lines[0]
    assert ids(stack) == paused_dashboard and containers(stack)["dashboard"]["State"]["Paused"]


def test_with_force_a_paused_container_is_stopped_and_the_restart_goes_through(stack, paused_dashboard):
    forced = restart_dashboard(stack, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "is paused (docker pause): --force: it is stopped all the same" in forced.stderr
    after = healthy_containers(stack)
    assert sorted(after) == sorted(CORE) and after["dashboard"] != paused_dashboard["dashboard"]
    assert {n: after[n] for n in CORE if n != "dashboard"} == {n: paused_dashboard[n] for n in CORE if n != "dashboard"}


def test_clean_refuses_up_front_a_volume_another_container_uses(stack):
    project = project_of(stack)
    volume = f"{project}_postgres-data"
    stranger = f"{project}-stranger"
    subprocess.run(["docker", "volume", "create", "--label", f"com.docker.compose.project={project}",
                    "--label", "com.docker.compose.volume=postgres-data", volume], check=True, capture_output=True)
    subprocess.run(["docker", "run", "-d", "--name", stranger, "-v", f"{volume}:/x", "python:3.11-slim",
                    "sleep", "300"], check=True, capture_output=True)
    try:
        before = ids(stack)
        done = dr(stack, "clean", "--yes", timeout=300)
        assert done.returncode == 1, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("clean: ")]
        assert lines == [f"clean: volume {volume} is used by container {stranger}, which is not project {project}'s: "
                         "the engine would refuse to remove it: remove that container first"], done.stderr
        assert "error: clean refused: nothing was stopped or removed" in done.stderr
        assert ids(stack) == before and sorted(healthy_containers(stack)) == sorted(CORE)
        assert Engine().volumes(project_label(project)) == [volume]
    finally:
        subprocess.run(["docker", "rm", "-f", stranger], capture_output=True)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True)


def test_clean_without_the_profile_that_started_the_infrastructure_removes_it_and_starts_it_again(tmp_path):
    """PostgreSQL and Redis started under the profile "infra" (by name: the other infrastructure images are not
    here, and the orchestrator does not wait for Kafka); clean without the profile removes them too (their
    volumes in use otherwise), and starts them again by name."""
    require_images()
    config = write_registry(tmp_path, edit=lambda data: data["services"]["orchestrator"]["depends_on"].pop("kafka"))
    env = {**IMAGE_ENV, "POSTGRES_PASSWORD": POSTGRES_PASSWORD}
    project = project_of(config)
    try:
        started = dr(config, "start", "postgres", "redis", *CORE, env={**env, "COMPOSE_PROFILES": "infra"},
                     timeout=300)
        assert started.returncode == 0, started.stderr
        before = ids(config)
        assert sorted(before) == sorted([*CORE, "postgres", "redis"])
        volumes = {name: docker.from_env().volumes.get(name).attrs["CreatedAt"]
                   for name in Engine().volumes(project_label(project))}
        assert sorted(volumes) == [f"{project}_postgres-data", f"{project}_redis-data"]

        done = dr(config, "clean", "--yes", env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        after = ids(config)
        assert sorted(after) == sorted(before) and not set(after.values()) & set(before.values())
        assert all(c["State"]["Running"] for c in containers(config).values())
        again = {name: docker.from_env().volumes.get(name).attrs["CreatedAt"]
                 for name in Engine().volumes(project_label(project))}
        assert sorted(again) == sorted(volumes) and all(again[n] != volumes[n] for n in volumes)  # new, empty
    finally:
        down(config)
