import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The simulated services become ready in the real ones' times (1-3 s each); the suite runs them faster, so its
# hundreds of stack starts stay within CI's time. Tests of timing itself set it back ("" = the real order).
os.environ.setdefault("TMT_SIM_START_DELAY", "0.3")
# An operator's shell may carry the desk's real webhooks (the TMT convention): the tests' restarts must never post
# there. Tests that notify set their own, pointing at a local receiver.
for _webhook in ("SLACK_WEBHOOK_URL", "TMT_WEBHOOK_URL"):
    os.environ.pop(_webhook, None)

from health_stack import Infra, Stack  # noqa: E402
from monitor_support import Monitor  # noqa: E402
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


# -- the health tests: real infrastructure and the simulated stack, a monitor process --------------------------
@pytest.fixture(scope="module")
def infra(tmp_path_factory):
    """PostgreSQL, Redis (where installed) and the Kafka stand-in on free ports, for a module's tests."""
    servers = Infra(tmp_path_factory.mktemp("infra"))
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory, infra):
    stack = Stack(tmp_path_factory.mktemp("healthy"), infra)
    try:
        stack.wait()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(tmp_path, infra):
    made = []

    def make(**kw):
        s = Stack(tmp_path, infra, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def monitors():
    """Factory: Monitor(...), a system-health.py --monitor / --serve process, killed at teardown if still there."""
    started = []

    def start(*args, **kw):
        m = Monitor(*args, **kw)
        started.append(m)
        return m

    yield start
    for m in started:
        m.kill()
