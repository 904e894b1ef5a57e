"""PostgreSQL and Redis really run in containers: docker-compose.yml's postgres and redis services, started from
the local images (.ci/setup-system.sh, tests/infra_images.py) on a test registry's free ports, each test in its
own compose project, removed with its volumes afterwards whatever happened.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import docker
import pytest

from infra_images import DATABASE, POSTGRES_IMAGE, POSTGRES_PASSWORD, REDIS_IMAGE, infra_environment, require_images
from support import REPO, wait_for, write_registry

from tmt_ops.probes import probe
from tmt_ops.registry import load_registry
from tmt_ops.states import Health

pytestmark = pytest.mark.docker

COMPOSE_FILE = REPO / "docker-compose.yml"
SERVICES = ("postgres", "redis")
STOP_SECONDS = 5  # a clean shutdown of an idle server takes well under a second
V2 = ("docker", "compose")
V1 = ("docker-compose",)

# The server's own lines at these levels, and the entrypoint's or a client program's errors. PostgreSQL logs
# a refused client at FATAL (a healthcheck or probe while the server starts or stops): not a fault of the
# server. Anything else is.
PG_PROBLEM = re.compile(r"\[\d+\] (PANIC|FATAL|ERROR|WARNING):|^\S+: error:|^Error:")
PG_REFUSALS = ("the database system is starting up", "the database system is shutting down")
HBA_ALL_HOSTS = "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = 'all'"
REDIS_PROBLEM = re.compile(r"error|fail|can't|cannot|unable|denied", re.IGNORECASE)


def answers(command: tuple[str, ...]) -> bool:
    if not shutil.which(command[0]):
        return False
    try:
        return subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Deployment:
    """docker-compose.yml's postgres and redis in a compose project of their own, on a test registry's ports."""

    def __init__(self, tmp_path: Path, command: tuple[str, ...] = V2, **env: str):
        self.registry = load_registry(write_registry(tmp_path))
        self.project = self.registry.compose_project
        assert self.project.startswith("tmt-test-")
        self.command = command
        self.env = infra_environment(self.registry, **env)
        self.client = docker.from_env()

    def compose(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.command, "-p", self.project, "-f", str(COMPOSE_FILE), *args], env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def container(self, service: str):
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]})
        assert len(found) == 1, f"{service}: {len(found)} containers"
        return found[0]

    def health(self, service: str) -> str:
        state = self.container(service).attrs["State"]
        return (state.get("Health") or {}).get("Status", state["Status"])

    def wait_healthy(self, *services: str, timeout: float = 90) -> None:
        """Compose v1 has no `up --wait`: the engine's healthcheck, polled."""
        ok = wait_for(lambda: all(self.health(s) == "healthy" for s in services), timeout, 0.5)
        assert ok, {s: (self.health(s), self.log(s)[-2000:]) for s in services}

    def log(self, service: str) -> str:
        return self.container(service).logs().decode("utf-8", "replace")

    def probe(self, service: str):
        return probe(self.registry.service(service), timeout=5)

    def psql(self, sql: str, *options: str) -> str:
        """One statement through `compose exec` (psql in the container, on its socket)."""
        done = self.compose("exec", "-T", *options, "postgres", "psql", "-U", "postgres", "-d", DATABASE,
                            "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql)
        return done.stdout.strip()

    def redis(self, *words: str) -> str:
        return self.compose("exec", "-T", "redis", "redis-cli", *words).stdout.strip()

    def down(self) -> None:
        """Teardown: the project's containers, volumes and network (by its label), and nothing else; checked."""
        env = {**self.env, "COMPOSE_PROFILES": "infra"}  # every infra service is in the model `down` works from
        subprocess.run([*self.command, "-p", self.project, "-f", str(COMPOSE_FILE), "down", "--volumes",
                        "--remove-orphans", "--timeout", "1"], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
        label = {"label": f"com.docker.compose.project={self.project}"}
        for container in self.client.containers.list(all=True, filters=label):  # compose failed: by force
            container.remove(force=True, v=True)
        for volume in self.client.volumes.list(filters=label):
            volume.remove(force=True)
        for network in self.client.networks.list(filters=label):
            network.remove()
        assert not self.client.containers.list(all=True, filters=label), "teardown left containers behind"
        assert not self.client.volumes.list(filters=label), "teardown left volumes behind"
        assert not self.client.networks.list(filters=label), "teardown left networks behind"


@pytest.fixture(scope="module", autouse=True)
def images():
    require_images()


@pytest.fixture
def deploy(tmp_path):
    """Factory of Deployments; every one is taken down (volumes included) at teardown, even after a failure."""
    made: list[Deployment] = []

    def make(command: tuple[str, ...] = V2, **env: str) -> Deployment:
        folder = tmp_path / str(len(made))
        folder.mkdir()
        made.append(Deployment(folder, command, **env))
        return made[-1]

    yield make
    for deployment in made:
        deployment.down()


def pg_problems(log: str, *expected: str) -> list[str]:
    """Lines of the log that say something went wrong, but refusals and what the test `expected` to fail."""
    allowed = PG_REFUSALS + expected
    return [line for line in log.splitlines() if PG_PROBLEM.search(line) and not any(a in line for a in allowed)]


def redis_shutdowns(log: str) -> list[str]:
    """The log lines of each shutdown: from the signal up to the next start (or the end of the log)."""
    sections: list[list[str]] = []
    current: list[str] | None = None
    for line in log.splitlines():
        if re.search(r"Received SIG\w+ scheduling shutdown", line):
            current = []
            sections.append(current)
        elif "Redis is starting" in line:
            current = None
        if current is not None:
            current.append(line)
    return ["\n".join(section) for section in sections]


def test_postgres_and_redis_start_keep_data_and_stop_cleanly(deploy):
    stack = deploy()
    started = time.monotonic()
    stack.compose("up", "-d", "--wait", *SERVICES)
    startup = time.monotonic() - started
    assert stack.container("postgres").image.tags == [POSTGRES_IMAGE]
    assert stack.container("redis").image.tags == [REDIS_IMAGE]
    assert {s: stack.health(s) for s in SERVICES} == {"postgres": "healthy", "redis": "healthy"}

    # From the host, on the registry's (published) ports. A client from outside the container is asked for
    # the password (scram-sha-256, the compose default); the probe does not answer it, on purpose.
    pg, redis = stack.probe("postgres"), stack.probe("redis")
    assert (pg.status, redis.status) == (Health.HEALTHY, Health.HEALTHY), (pg, redis, startup)
    assert "asks for a password" in pg.details
    assert redis.details == "PONG"

    # The image honoured POSTGRES_DB / POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_HOST_AUTH_METHOD.
    assert stack.psql("SELECT current_user || ' ' || current_database() || ' ' || pg_encoding_to_char(encoding) "
                      "FROM pg_database WHERE datname = current_database()") == f"postgres {DATABASE} UTF8"
    assert stack.psql(HBA_ALL_HOSTS) == "scram-sha-256"
    over_tcp = ["-e", f"PGPASSWORD={POSTGRES_PASSWORD}"]  # to the container's own address: not loopback-trusted
    ip = stack.container("postgres").attrs["NetworkSettings"]["Networks"]
    address = next(iter(ip.values()))["IPAddress"]
    assert stack.compose("exec", "-T", *over_tcp, "postgres", "psql", "-h", address, "-U", "postgres", "-d",
                         DATABASE, "-X", "-A", "-t", "-c", "SELECT 1").stdout.strip() == "1"
    wrong = stack.compose("exec", "-T", "-e", "PGPASSWORD=wrong", "postgres", "psql", "-h", address, "-U",
                          "postgres", "-d", DATABASE, "-c", "SELECT 1", check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    assert stack.psql("SELECT setting FROM pg_settings WHERE name = 'listen_addresses'") == "*"
    assert stack.psql("SELECT setting FROM pg_settings WHERE name = 'data_directory'") == "/var/lib/postgresql/data"
    assert stack.redis("CONFIG", "GET", "dir").splitlines() == ["dir", "/data"]

    # Data survives a restart of the container (the data volume), and the restart was a clean shutdown.
    stack.psql("CREATE TABLE trades (id int PRIMARY KEY, instrument text)")
    stack.psql("INSERT INTO trades VALUES (1, 'EUR_USD'), (2, 'GBP_USD')")
    assert stack.redis("SET", "tmt:last", "EUR_USD") == "OK"
    stack.compose("restart", "-t", str(STOP_SECONDS), *SERVICES)
    stack.compose("up", "-d", "--wait", *SERVICES)  # restart does not wait for the healthchecks
    assert stack.psql("SELECT instrument FROM trades ORDER BY id") == "EUR_USD\nGBP_USD"
    assert stack.redis("GET", "tmt:last") == "EUR_USD"
    assert stack.probe("postgres").status == Health.HEALTHY
    log = stack.log("postgres")
    assert "received fast shutdown request" in log  # compose's stop signal: the image's SIGINT
    assert "database system was interrupted" not in log and "automatic recovery" not in log, log

    # SIGTERM: each ends by itself within seconds (exit 0, not the engine's SIGKILL), cleanly.
    stack.compose("kill", "-s", "SIGTERM", *SERVICES)
    stopped = wait_for(lambda: all(stack.container(s).attrs["State"]["Status"] == "exited" for s in SERVICES),
                       STOP_SECONDS, 0.1)
    states = {s: stack.container(s).attrs["State"] for s in SERVICES}
    assert stopped, {s: state["Status"] for s, state in states.items()}
    assert {s: state["ExitCode"] for s, state in states.items()} == {"postgres": 0, "redis": 0}
    assert not any(state["OOMKilled"] for state in states.values())

    log = stack.log("postgres")
    assert pg_problems(log, 'password authentication failed for user "postgres"') == [], log  # the wrong one
    shutdown = log[log.rindex("received smart shutdown request"):]
    assert shutdown.rstrip().endswith("database system is shut down"), shutdown
    log = stack.log("redis")
    shutdowns = redis_shutdowns(log)
    assert len(shutdowns) == 2, log  # the restart's and SIGTERM's
    for shutdown in shutdowns:
        assert "DB saved on disk" in shutdown and shutdown.rstrip().endswith("ready to exit, bye bye..."), shutdown
        assert not REDIS_PROBLEM.search(shutdown), shutdown


def test_trust_lets_clients_in_without_a_password(deploy):
    stack = deploy(POSTGRES_HOST_AUTH_METHOD="trust", POSTGRES_PASSWORD="")
    stack.compose("up", "-d", "--wait", "postgres")
    result = stack.probe("postgres")
    assert (result.status, result.details) == (Health.HEALTHY, "accepting connections"), result
    assert stack.psql(HBA_ALL_HOSTS) == "trust"
    assert pg_problems(stack.log("postgres")) == []


def test_a_new_cluster_without_password_is_refused_like_the_official_image(deploy):
    """The compose defaults (scram-sha-256, POSTGRES_PASSWORD empty) cannot initialise a cluster: the container
    says why and exits 1, as the official image does, rather than run a database nobody can log in to."""
    stack = deploy(POSTGRES_PASSWORD="")
    stack.compose("up", "-d", "postgres")
    assert wait_for(lambda: stack.container("postgres").attrs["State"]["Status"] == "exited", 30, 0.2)
    assert stack.container("postgres").attrs["State"]["ExitCode"] == 1
    assert "superuser password is not specified" in stack.log("postgres")


@pytest.mark.skipif(not answers(V1), reason="Compose v1 (docker-compose) is not installed")
def test_compose_v1_starts_them_too(deploy):
    stack = deploy(V1)
    stack.compose("up", "-d", *SERVICES)  # v1 has no --wait
    stack.wait_healthy(*SERVICES)
    assert {s: stack.probe(s).status for s in SERVICES} == {"postgres": Health.HEALTHY, "redis": Health.HEALTHY}
    stack.psql("CREATE TABLE t (x int)")  # exec works the same
    assert stack.psql("SELECT count(*) FROM t") == "0"
    assert stack.redis("PING") == "PONG"
    stack.compose("stop", "-t", str(STOP_SECONDS), *SERVICES)
    assert {s: stack.container(s).attrs["State"]["ExitCode"] for s in SERVICES} == {"postgres": 0, "redis": 0}
    assert pg_problems(stack.log("postgres")) == []
