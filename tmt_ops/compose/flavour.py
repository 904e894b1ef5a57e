"""Which Compose answers here: `docker compose` (v2 plugin) first, else `docker-compose` (v1). Asked once."""

from __future__ import annotations

import functools
import os
import shlex
import subprocess

from ..errors import ConfigError

CANDIDATES = (("docker", "compose"), ("docker-compose",))
OVERRIDE = "TMT_COMPOSE"  # e.g. TMT_COMPOSE=docker-compose forces v1
PROBE_TIMEOUT = 30


def _answers(command: tuple[str, ...]) -> bool:
    try:
        return subprocess.run([*command, "version"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=PROBE_TIMEOUT).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=None)
def compose_command() -> tuple[str, ...]:
    override = os.environ.get(OVERRIDE, "").strip()
    candidates = (tuple(shlex.split(override)),) if override else CANDIDATES
    for command in candidates:
        if _answers(command):
            return command
    if override:
        raise ConfigError(f"{OVERRIDE}={override!r} does not answer `{override} version`: fix the command "
                          f"or unset {OVERRIDE} to use `docker compose` / `docker-compose`")
    raise ConfigError("neither `docker compose` (Compose v2) nor `docker-compose` (v1) answers: install the "
                      "Compose v2 plugin (package docker-compose-plugin) or docker-compose")
