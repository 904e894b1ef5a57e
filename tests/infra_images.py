"""The infrastructure images docker tests run: PostgreSQL and Redis built locally from Debian's packages.

No registry is reachable on the test machines, so docker-compose.yml's default infrastructure images
(timescale/timescaledb, redis:7-alpine) cannot be pulled; `bash .ci/setup-system.sh` builds these instead
(docker/infra/). The compose file takes them from TMT_POSTGRES_IMAGE / TMT_REDIS_IMAGE. Any test that starts
compose's postgres or redis uses `infra_environment(registry)` (or IMAGE_ENV with its own environment).
"""

from __future__ import annotations

import os
from typing import Mapping

import pytest

POSTGRES_IMAGE = "tmt-infra/postgres:15"
REDIS_IMAGE = "tmt-infra/redis:7"
IMAGE_ENV = {"TMT_POSTGRES_IMAGE": POSTGRES_IMAGE, "TMT_REDIS_IMAGE": REDIS_IMAGE}

# The compose file's default POSTGRES_HOST_AUTH_METHOD is scram-sha-256, and a new cluster needs a superuser
# password then (as with the official image). A test-only value; nothing outside loopback can reach it.
POSTGRES_PASSWORD = "tmt-test-password"
DATABASE = "trading_system"  # docker-compose.yml's POSTGRES_DB


def missing_images() -> list[str]:
    """The local infrastructure images the engine does not have."""
    import docker
    client = docker.from_env()
    missing = []
    for image in IMAGE_ENV.values():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    return missing


def require_images() -> None:
    """Skip (fail under TMT_REQUIRE_DOCKER=1, as in CI) when setup-system.sh has not built the images."""
    missing = missing_images()
    if missing:
        reason = f"missing local images {', '.join(missing)}: run `bash .ci/setup-system.sh` (as root)"
        if os.environ.get("TMT_REQUIRE_DOCKER") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def infra_environment(registry, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment for compose with postgres/redis from the local images: the registry's TMT_PORT_*
    variables (compose_environment), the image overrides and the test password; `extra` last (e.g.
    POSTGRES_HOST_AUTH_METHOD="trust"). No COMPOSE_PROFILES: name the services (`up -d postgres redis`),
    since the profile "infra" would also start kafka, grafana, ... whose images are not here."""
    from tmt_ops.compose.runner import compose_environment
    env = compose_environment(registry, os.environ if base is None else base)
    env.update(IMAGE_ENV)
    env["POSTGRES_PASSWORD"] = POSTGRES_PASSWORD
    env.update(extra)
    return env
