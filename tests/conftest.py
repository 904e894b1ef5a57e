import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import free_ports, kill_listeners, remove_cgroups, write_registry  # noqa: E402


def _engine_answers() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker
        docker.from_env(timeout=5).ping()
        return None
    except Exception as exc:  # any failure to reach the engine means "no engine" here
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"


def pytest_collection_modifyitems(config, items):
    docker_items = [i for i in items if "docker" in i.keywords]
    if not docker_items:
        return
    reason = _engine_answers()
    if reason is None:
        return
    if os.environ.get("TMT_REQUIRE_DOCKER") == "1":
        raise pytest.UsageError(f"TMT_REQUIRE_DOCKER=1 but {reason}")
    for item in docker_items:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def registry_file(tmp_path):
    """Factory: write_registry(tmp_path, ...) whose ports are freed of any leftover process at teardown."""
    written = []

    def make(**kwargs):
        path = write_registry(tmp_path, **kwargs)
        written.append(path)
        return path

    yield make
    import yaml
    for path in written:
        data = yaml.safe_load(path.read_text())
        kill_listeners(svc["port"] for svc in data["services"].values() if "port" in svc)
        remove_cgroups(Path(data["project"]["state_dir"]), data["services"])


@pytest.fixture
def ports():
    return free_ports
