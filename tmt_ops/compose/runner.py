"""Running the compose CLI for one project: argument lists, the registry's ports in the environment, timeouts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Iterator, Mapping

from ..data import dataclass, replace
from ..engine import cli, endpoint
from ..engine.cli import last_line
from ..registry import Registry

PORT_VARIABLE_PREFIX = "TMT_PORT_"


def port_variable(compose_service: str) -> str:
    """TMT_PORT_<NAME>, upper-case, other characters as "_": the variable the compose file publishes it from."""
    return PORT_VARIABLE_PREFIX + re.sub(r"[^A-Z0-9]", "_", compose_service.upper())


def compose_environment(registry: Registry, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The caller's environment plus every registry service's port, so compose publishes what the registry says,
    pinned to the engine the toolkit asks (engine/endpoint.py)."""
    env = endpoint.current().pin(base)
    env.update({port_variable(s.compose_service): str(s.port) for s in registry.services.values() if s.port})
    return env


@dataclass(frozen=True)
class Compose:
    command: tuple[str, ...]  # ("docker", "compose") or ("docker-compose",)
    project: str
    file: Path
    env: Mapping[str, str]
    timeout: float  # the registry's compose_timeout: long enough for a real build
    overrides: tuple[Path, ...] = ()  # compose files read over `file` (`-f FILE -f OVERRIDE`)

    def argv(self, *args: str) -> list[str]:
        files = [word for path in (self.file, *self.overrides) for word in ("-f", str(path))]
        return [*self.command, "-p", self.project, *files, *args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Run to the end, output captured; a failure or a timeout is OperationFailed with compose's last words."""
        return cli.run(self.argv(*args), self.env, self.timeout, limit="defaults.compose_timeout in the registry",
                       shown=[*self.command, *args])

    def start(self, *args: str) -> "Background":
        """Start without waiting; stderr goes to a temporary file (a pipe nobody reads could fill and block)."""
        log = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(self.argv(*args), env=dict(self.env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)
        return Background(proc, log)


@contextlib.contextmanager
def overridden(compose: Compose, services: Mapping[str, Mapping[str, object]]) -> Iterator[Compose]:
    """`compose` with these keys set on these services, by a second compose file over its own: a private
    temporary file (JSON, which compose reads as YAML), removed once the block ends. No services: `compose`."""
    if not services:
        yield compose
        return
    with tempfile.NamedTemporaryFile("w", prefix="tmt-ops-override-", suffix=".yml", delete=False) as f:
        json.dump({"services": services}, f)
    try:
        yield replace(compose, overrides=(*compose.overrides, Path(f.name)))
    finally:
        os.unlink(f.name)


@dataclass(frozen=True)
class Background:
    """A compose command running while the caller watches the engine."""

    proc: subprocess.Popen
    log: IO[str]

    def poll(self) -> int | None:
        return self.proc.poll()

    def error_line(self) -> str:
        self.log.seek(0)
        return last_line(self.log.read())

    def finish(self, seconds: float) -> None:
        """Let it end by itself (what it started is ready), at most `seconds`, then stop it."""
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            pass
        self.stop()

    def stop(self) -> None:
        """Used when a service failed, or the start was interrupted, while compose still runs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
