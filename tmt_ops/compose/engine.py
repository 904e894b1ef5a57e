"""The Docker engine, asked directly: the containers, volumes and networks of one compose project.

A local engine (unix socket, or plain tcp://) is asked with one HTTP/1.0 request per connection on a
plain socket: importing the docker SDK (or even http.client) costs more than the whole of `docker compose
ps`, and `status` must be as quick. HTTP/1.0 keeps the answer simple: the engine sends the body whole
(never chunked) and closes. Any other DOCKER_HOST (TLS, ssh://) goes through the docker SDK, imported
only then.
"""

from __future__ import annotations

import json
import math
import os
import socket
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import ConfigError, OperationFailed

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class Engine:
    """Queries; stopping and removing one container (a stop step); removing what `down --volumes` leaves of a
    project (volumes of inactive profiles)."""

    def __init__(self, timeout: float = 10.0):
        self.address = engine_address()
        self.timeout = timeout
        url = urlsplit(self.address)
        self._plain = url.scheme == "unix" or url.scheme == "tcp" and not os.environ.get("DOCKER_TLS_VERIFY")
        self._url = url
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
        try:
            status, body = self._send(method, path) if self._plain else self._sdk_send(method, path)
        except Exception as exc:  # refused, no socket, timeout, SDK errors: the engine does not answer
            raise ConfigError(f"no Docker engine answers at {self.address} ({type(exc).__name__}: {exc}); "
                              "start it (e.g. `dockerd` or `systemctl start docker`) or point DOCKER_HOST "
                              "at a running engine") from None
        if status >= 400:
            raise OperationFailed(f"Docker engine: {method} {path.split('?')[0]} answered HTTP {status}: "
                                  f"{body[:200].decode('utf-8', 'replace').strip()}")
        return json.loads(body) if body.startswith((b"{", b"[")) else body.decode("utf-8", "replace")

    def _send(self, method: str, path: str) -> tuple[int, bytes]:
        with self._connect() as sock:
            length = "" if method == "GET" else "Content-Length: 0\r\n"  # POST and DELETE carry no body
            sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: docker\r\nAccept: application/json\r\n{length}\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    def _sdk_send(self, method: str, path: str) -> tuple[int, bytes]:
        if self._sdk is None:
            import docker  # slow import: only for engines the plain client cannot reach
            self._sdk = docker.from_env(timeout=int(self.timeout)).api
        response = self._sdk.request(method, self._sdk.base_url + path)
        return response.status_code, response.content

    # -- queries -----------------------------------------------------------------------------------------
    def ping(self) -> None:
        self._get("/_ping")

    def info(self) -> dict:
        return self._get("/info")

    @staticmethod
    def _project_filter(project: str) -> str:
        return quote(json.dumps({"label": [f"{PROJECT_LABEL}={project}"]}))

    def listed(self, project: str) -> list[dict]:
        """One list call: every container (running or not) of the project, as the list shows it."""
        return self._get(f"/containers/json?all=1&filters={self._project_filter(project)}")

    def container_ids(self, project: str) -> list[str]:
        return [c["Id"] for c in self.listed(project)]

    def containers(self, project: str) -> list[dict]:
        """Every container of the project, inspected (state, health, ports, restart count, exit code)."""
        found = []
        for cid in self.container_ids(project):
            try:
                found.append(self._get(f"/containers/{cid}/json"))
            except OperationFailed:  # removed between the list and the inspect
                continue
        return found

    def volumes(self, project: str) -> list[str]:
        return sorted(v["Name"] for v in self._get(f"/volumes?filters={self._project_filter(project)}")["Volumes"] or ())

    def remove(self, kind: str, name: str) -> None:
        """kind: "volumes", "networks" or "containers"."""
        self._request("DELETE", f"/{kind}/{quote(name)}")

    def stop(self, container: str, grace: float) -> None:
        """SIGTERM (the image's stop signal), `grace` seconds, then SIGKILL: the engine's own stop.
        (Already stopped: HTTP 304, fine.)"""
        Engine(timeout=grace + self.timeout)._request("POST", f"/containers/{quote(container)}/stop?t={math.ceil(grace)}")

    def networks(self, project: str) -> list[str]:
        return sorted(n["Name"] for n in self._get(f"/networks?filters={self._project_filter(project)}"))
