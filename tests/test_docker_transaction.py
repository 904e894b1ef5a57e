"""Docker mode's restart as a transaction, on a real engine: a service whose new image fails comes back on the
image it ran before."""

from __future__ import annotations

import docker
import pytest
import yaml

from docker_helpers import CORE, dr, down, healthy_containers, project_of, stack  # noqa: F401  (fixture)
from support import REPO, write_registry

from tmt_ops.compose import previous
from tmt_ops.compose.containers import container_labels
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
