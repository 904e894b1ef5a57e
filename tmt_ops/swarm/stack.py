"""One swarm stack of the registry: its name, the compose file it is deployed from, the engine's view of it,
and the docker CLI calls that change it (each names the stack or a service id found under its label)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from ..compose.project import Project
from ..data import replace
from ..engine import cli, endpoint
from ..errors import ConfigError, OperationFailed, TmtError
from ..registry import Registry, Service
from . import relay, state, stackfile

PUSH = "TMT_SWARM_PUSH"  # 1: push built images to their registry and let every node pull them by digest
SNAPSHOT_AGE = 0.5  # seconds a look at the stack is reused (one health round asks for it twice)
REMOVAL_WAIT = 20.0  # seconds a deploy waits for a `stack rm` under way to finish
PUSH_TRIES = 3


class Stack:
    def __init__(self, registry: Registry, name: str | None = None, compose_file: Path | None = None,
                 project_name: str | None = None) -> None:
        self.registry = registry
        self.name = name or registry.swarm_stack
        self.project = Project(registry, project_name, compose_file)  # the compose file, as compose reads it
        self.engine = self.project.engine
        self._lock = threading.Lock()
        self._snapshot: state.Snapshot | None = None
        self.label = state.stack_label(self.name)
        self.pushes = os.environ.get(PUSH) == "1"  # images go to their registry; tasks pull them by digest

    def service_name(self, compose_service: str) -> str:
        """STACK_SERVICE: the swarm service a compose service is deployed as."""
        return f"{self.name}_{compose_service}"

    # -- the compose file -------------------------------------------------------------------------------
    @functools.cached_property
    def model(self) -> dict:
        """`compose config` of the compose file, every profile included (a service named on the command line
        runs whatever its profile): the file as compose reads it, variables filled in."""
        compose = self.project.compose
        compose = replace(compose, env={**compose.env, "COMPOSE_PROFILES": "*"})
        v2 = compose.command[-1] == "compose"  # Compose v1 has no --format; its YAML reads the same
        try:
            done = compose.run("config", *(("--format", "json") if v2 else ()))
        except OperationFailed as exc:
            raise ConfigError(f"compose file {self.project.file} is not valid: {exc}") from None
        return yaml.load(done.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    def spec(self, service: Service) -> Mapping:
        return self.model["services"].get(service.compose_service) or {}

    # -- the engine's view ------------------------------------------------------------------------------
    @functools.cached_property
    def local_node(self) -> str | None:
        return self.swarm().get("NodeID") or None

    def snapshot(self, max_age: float = SNAPSHOT_AGE) -> state.Snapshot:
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._snapshot.taken_at > max_age:
                try:
                    self._snapshot = state.take(self.engine, self.name, list(self.project.declared))
                except OperationFailed as exc:
                    if "swarm manager" not in str(exc):
                        raise
                    raise ConfigError(self.not_a_manager(self.swarm())) from None
            return self._snapshot

    @functools.cached_property
    def present(self) -> set[str]:
        """The compose services the stack has deployed, whatever profile they came under, asked once; none when no
        swarm manager answers (what needs one says so)."""
        try:
            return {name[len(self.name) + 1:] for name in (s["Spec"]["Name"] for s in self.engine.services(self.label))
                    if name.startswith(f"{self.name}_")}
        except TmtError:
            return set()

    @functools.cache
    def swarm(self) -> dict:
        """The engine's swarm facts (LocalNodeState, ControlAvailable, Nodes, NodeID...), asked once."""
        return self.engine.info().get("Swarm") or {}

    @staticmethod
    def manages(swarm: dict) -> bool:
        return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))

    @staticmethod
    def not_a_manager(swarm: dict) -> str:
        return (f"the engine at {endpoint.current().describe()} is not a swarm manager (swarm: "
                f"{swarm.get('LocalNodeState') or 'inactive'}): run `docker swarm init` there, or point DOCKER_HOST "
                "or DOCKER_CONTEXT at a manager")

    # -- changes ------------------------------------------------------------------------------------------
    def docker(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """The docker CLI, pinned to the engine the toolkit asks (engine/endpoint.py)."""
        return cli.run(["docker", *args], endpoint.current().pin(os.environ), self.registry.compose_timeout,
                       limit="defaults.compose_timeout in the registry", stdin=stdin)

    def deploy(self, services: Iterable[Service], replicas: Mapping[str, int], rollout: str,
               pins: Mapping[str, str] | None = None) -> None:
        """Deploy these services, and only these, of the stack (created the first time); `pins`: service -> the node
        id it must stay on."""
        document = stackfile.wave_document(self.model, self.project.name, services, replicas, rollout, pins)
        self._deploy(document, "always" if self.pushes else "never")  # one node: its local images

    def deploy_relay(self) -> None:
        """The probe relay (relay.py) on this manager's node, on every network of the stack, from the image on
        this node (never pulled)."""
        document = stackfile.relay_document(self.model, self.project.name, relay.SERVICE, relay.service_spec(
            self.local_node, stackfile.all_networks(self.model), (state.ROLE_LABEL, state.RELAY_ROLE)))
        self._deploy(document, "never")

    def push(self, image: str) -> None:
        """`docker push` of one image, tried PUSH_TRIES times: a registry may fail a blob that another client
        uploads at the same moment (Debian's docker-registry answers 500 or "digest invalid"); the next try
        finds it there."""
        for attempt in range(1, PUSH_TRIES + 1):
            try:
                self.docker("push", "--quiet", image)
                return
            except OperationFailed:
                if attempt == PUSH_TRIES:
                    raise
                time.sleep(attempt)

    def _deploy(self, document: dict, resolve: str) -> None:
        text = json.dumps(document)
        deadline = time.monotonic() + REMOVAL_WAIT
        while True:
            try:
                self.docker("stack", "deploy", "--resolve-image", resolve, "--compose-file", "-", self.name,
                            stdin=text)
                return
            except OperationFailed as exc:
                # a `stack rm` still under way (the engine removes networks last): its network is going
                if "network" not in str(exc) or "not found" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def rollback(self, service_id: str) -> None:
        """Swarm's own rollback of one service to its previous spec, left to the swarm (the caller awaits it)."""
        self.docker("service", "rollback", "--detach", "--quiet", service_id)

    def scale_to_zero(self, service_ids: Iterable[str]) -> None:
        self.docker("service", "scale", "--detach", *(f"{sid}=0" for sid in service_ids))

    def remove(self) -> None:
        self.docker("stack", "rm", self.name)
