"""The Docker engine, asked directly: containers, volumes and networks by label, and a swarm's services,
tasks and nodes.

A local engine (unix socket, or plain tcp://) is asked with one HTTP/1.0 request per connection on a
plain socket (http10.py): importing the docker SDK (or even http.client) costs more than the whole of `docker
compose ps`, and `status` must be as quick. Any other engine (TLS, ssh://) goes through the docker SDK, imported
only then, built from the same endpoint (endpoint.py) the CLIs are pinned to.
"""

from __future__ import annotations

import json
import math
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .. import __version__, http10
from ..errors import ConfigError, OperationFailed, TmtError
from . import endpoint as endpoints

DEFAULT_ROOT = Path("/var/lib/docker")
USER_AGENT = f"tmt-ops/{__version__}"  # in the engine's own logs, which client asked
_ENGINE_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")


def engine_time(text: str | None) -> float | None:
    """Epoch seconds of an engine timestamp ('2026-11-24T00:19:07.425790881Z'); None for the zero time."""
    m = _ENGINE_TIME.fullmatch(text or "")
    if not m or m.group(1).startswith("0001"):
        return None
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return whole + float(f"0.{m.group(2) or 0}")


def label_filter(*labels: str) -> str:
    """The engine's `filters` query value for objects carrying every one of these "key=value" labels."""
    return quote(json.dumps({"label": list(labels)}))


class Refused(OperationFailed):
    """The engine answered with an error (HTTP 4xx or 5xx): `status` says which."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Engine:
    """Queries; stopping and removing one container (a compose stop step); removing a project's or stack's
    volumes and networks (clean); tagging an image and dropping the tag (a service's kept previous image)."""

    def __init__(self, timeout: float = 10.0, where: endpoints.Endpoint | None = None):
        self.endpoint = where or endpoints.current()
        self.address = self.endpoint.host
        self.timeout = timeout
        self._url = urlsplit(self.address)
        self._sdk = None

    # -- transport -------------------------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        if self._url.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self._url.path)
            except OSError:
                sock.close()
                raise
            return sock
        return socket.create_connection((self._url.hostname, self._url.port or 2375), timeout=self.timeout)

    def _get(self, path: str) -> Any:
        return self._request("GET", path)

    def _request(self, method: str, path: str) -> Any:
        body = self._request_bytes(method, path)
        return json.loads(body) if body.startswith((b"{", b"[")) else body.decode("utf-8", "replace")

    def _request_bytes(self, method: str, path: str) -> bytes:
        try:
            status, body = self._send(method, path) if self.endpoint.plain else self._sdk_send(method, path)
        except Exception as exc:  # refused, no socket, timeout, SDK errors: the engine does not answer
            raise ConfigError(f"no Docker engine answers at {self.endpoint.describe()} ({type(exc).__name__}: "
                              f"{exc}); start it (e.g. `dockerd` or `systemctl start docker`) or point DOCKER_HOST "
                              "or DOCKER_CONTEXT at a running engine") from None
        if status >= 400:
            raise Refused(status, f"Docker engine: {method} {path.split('?')[0]} answered HTTP {status}: "
                                  f"{_message(body)}")
        return body

    def _send(self, method: str, path: str) -> tuple[int, bytes]:
        with self._connect() as sock:  # POST and DELETE carry no body
            return http10.exchange(sock, method, path, "docker",
                                   headers=(f"User-Agent: {USER_AGENT}", "Accept: application/json"))

    def _sdk_send(self, method: str, path: str) -> tuple[int, bytes]:
        if self._sdk is None:
            import docker  # slow import: only for engines the plain client cannot reach
            timeout = int(self.timeout)
            client = (docker.DockerClient.from_context(self.endpoint.context, timeout=timeout)
                      if self.endpoint.context else docker.from_env(timeout=timeout))
            self._sdk = client.api
        response = self._sdk.request(method, self._sdk.base_url + path)
        return response.status_code, response.content

    # -- engine ------------------------------------------------------------------------------------------
    def ping(self) -> None:
        self._get("/_ping")

    def info(self) -> dict:
        return self._get("/info")

    def root_dir(self) -> Path:
        """Where the engine keeps images and volumes (its usual place when it cannot be asked: a nicety)."""
        try:
            return Path(self.info().get("DockerRootDir") or DEFAULT_ROOT)
        except TmtError:
            return DEFAULT_ROOT

    # -- containers, volumes, networks ---------------------------------------------------------------------
    def listed(self, *labels: str) -> list[dict]:
        """One list call: every container (running or not) with these labels, as the list shows it."""
        return self._get(f"/containers/json?all=1&filters={label_filter(*labels)}")

    def container_ids(self, *labels: str) -> list[str]:
        return [c["Id"] for c in self.listed(*labels)]

    def container(self, cid: str) -> dict | None:
        """One container inspected; None when it is gone."""
        try:
            return self._get(f"/containers/{quote(cid)}/json")
        except OperationFailed:
            return None

    def containers(self, *labels: str) -> list[dict]:
        """Every container with these labels, inspected (state, health, ports, restart count, exit code)."""
        return [c for c in map(self.container, self.container_ids(*labels)) if c is not None]

    def users(self, kind: str, name: str) -> list[dict]:
        """Every container (running or not) that uses this volume or network (kind: "volume", "network"), as
        the list shows it."""
        return self._get(f"/containers/json?all=1&filters={quote(json.dumps({kind: [name]}))}")

    def volumes(self, *labels: str) -> list[str]:
        return sorted(v["Name"] for v in self._get(f"/volumes?filters={label_filter(*labels)}")["Volumes"] or ())

    def networks(self, *labels: str) -> list[str]:
        return sorted(n["Name"] for n in self._get(f"/networks?filters={label_filter(*labels)}"))

    def network(self, name: str) -> dict | None:
        try:
            return self._get(f"/networks/{quote(name)}")
        except OperationFailed:
            return None

    def remove(self, kind: str, name: str) -> None:
        """kind: "volumes", "networks" or "containers"."""
        self._request("DELETE", f"/{kind}/{quote(name)}")

    def stop(self, container: str, grace: float) -> None:
        """SIGTERM (the image's stop signal), `grace` seconds, then SIGKILL: the engine's own stop.
        (Already stopped: HTTP 304, fine.)"""
        Engine(grace + self.timeout, self.endpoint)._request(
            "POST", f"/containers/{quote(container)}/stop?t={math.ceil(grace)}")

    def image(self, image: str) -> dict | None:
        """One image inspected (by name or id); None when there is none."""
        try:
            return self._get(f"/images/{quote(image, safe='/:@')}/json")
        except OperationFailed:
            return None

    def images(self, reference: str) -> list[dict]:
        """The images with a name that matches this pattern ("REPOSITORY:TAG", `*` as a wildcard)."""
        return self._get(f"/images/json?filters={quote(json.dumps({'reference': [reference]}))}")

    def distribution(self, image: str) -> str:
        """The digest of an image as its registry has it, asked by this engine (what `stack deploy --resolve-image
        always` records, and what every node then pulls); Refused when the registry does not have it or cannot
        be reached."""
        answer = self._get(f"/distribution/{quote(image, safe='/:@')}/json")
        return str(((answer or {}).get("Descriptor") or {}).get("digest", ""))

    def has_image(self, image: str) -> bool:
        return self.image(image) is not None

    def tag(self, image: str, repository: str, tag: str) -> None:
        self._request("POST", f"/images/{quote(image, safe=':')}/tag?repo={quote(repository)}&tag={quote(tag)}")

    def untag(self, reference: str) -> bool:
        """Drop one tag (False: there was none, or it is an image's last name and a container uses it: it stays until
        that container is gone). The image goes with its last tag unless a container uses it; nothing else is pruned
        (noprune: untagged parent images stay as they are)."""
        try:
            self._request("DELETE", f"/images/{quote(reference, safe='/:@')}?noprune=1")
        except Refused as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def logs(self, cid: str, tail: int) -> list[str]:
        """The last lines of a container's output (stdout and stderr); [] when it is gone."""
        try:
            body = self._request_bytes("GET", f"/containers/{quote(cid)}/logs?stdout=1&stderr=1&tail={tail}")
        except OperationFailed:
            return []
        return _demultiplexed(body).decode("utf-8", "replace").splitlines()

    # -- swarm -----------------------------------------------------------------------------------------------
    def services(self, *labels: str) -> list[dict]:
        """The swarm services with these labels (OperationFailed when this engine is no swarm manager)."""
        return self._get(f"/services?filters={label_filter(*labels)}")

    def tasks(self, service_ids: list[str]) -> list[dict]:
        """Every task (current and recent history) of these services."""
        if not service_ids:
            return []
        return self._get(f"/tasks?filters={quote(json.dumps({'service': service_ids}))}")

    def nodes(self) -> list[dict]:
        return self._get("/nodes")


def _message(body: bytes) -> str:
    """The engine's error message from its JSON body, else the body's start."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip()


def _demultiplexed(body: bytes) -> bytes:
    """A container log without a terminal comes in frames: 1 byte stream, 3 zero, 4 bytes length, then the data.
    (With a terminal it is the raw text: no frame header starts with anything but 0, 1 or 2.)"""
    if not body or body[0] not in (0, 1, 2) or body[1:4] != b"\0\0\0":
        return body
    out, i = [], 0
    while i + 8 <= len(body):
        size = int.from_bytes(body[i + 4:i + 8], "big")
        out.append(body[i + 8:i + 8 + size])
        i += 8 + size
    return b"".join(out)
