"""The three-node swarm of .ci/multinode.sh (a manager and two workers, each a container of the host engine
running its own dockerd, plus a registry every node trusts), for the tests marked `multinode`.

Use it as a swarm client would: `multinode.script(...)` / `multinode.client([...])` run a command inside the
manager node's network namespace (`nsenter --net`, with this host's files) and DOCKER_HOST of the manager.
From there a manager task's address on the gateway bridge (docker_gwbridge) is the manager's own; from this
host the same address is on the host engine's docker_gwbridge, where a probe can reach another container
and pass. Workers' host-mode ports answer at their node addresses from both places.

The fixture `multinode` (session) hands out the harness when it is up and healthy; otherwise the test is
skipped with the reason, or fails when TMT_REQUIRE_DOCKER=1 (CI runs `bash .ci/multinode.sh up` first).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from support import REPO, wait_for

SCRIPT = REPO / ".ci" / "multinode.sh"
DIR = Path(os.environ.get("TMT_MULTINODE_DIR", "/run/tmt-multinode"))
ENV_FILE = DIR / "env"

# Fetch a URL, print its body; exit 1 (and say why on stderr) when nothing answers. Run where the client is.
FETCH = ("import sys, urllib.request\n"
         "try:\n"
         "    print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode(), end='')\n"
         "except Exception as exc:\n"
         "    sys.exit(f'{type(exc).__name__}: {exc}')\n")


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


@dataclass(frozen=True)
class Harness:
    settings: dict[str, str]

    # -- what .ci/multinode.sh wrote ----------------------------------------------------------------------
    @property
    def manager(self) -> str:
        return self.settings["TMT_MULTINODE_MANAGER"]

    @property
    def workers(self) -> list[str]:
        return self.settings["TMT_MULTINODE_WORKERS"].split()

    @property
    def nodes(self) -> list[str]:
        return [self.manager, *self.workers]

    @property
    def registry(self) -> str:
        """The registry as the nodes see it (registry:5000): image names to push and deploy."""
        return self.settings["TMT_MULTINODE_REGISTRY"]

    @property
    def registry_addr(self) -> str:
        """The registry's address on the harness's network, reachable from this host (its HTTP API)."""
        return self.settings["TMT_MULTINODE_REGISTRY_ADDR"]

    def _key(self, node: str) -> str:
        return node.removeprefix("tmt-mn-").upper()

    def host(self, node: str) -> str:
        """DOCKER_HOST of a node's engine (a unix socket on this host: no network involved)."""
        return self.settings[f"TMT_MULTINODE_{self._key(node)}_HOST"]

    def addr(self, node: str) -> str:
        """A node's address on the harness's network (where its host-mode ports answer)."""
        return self.settings[f"TMT_MULTINODE_{self._key(node)}_ADDR"]

    # -- the manager's network namespace --------------------------------------------------------------------
    def manager_pid(self) -> int:
        """The manager's dockerd as this host sees it (asked each time: a node started again has another)."""
        done = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", self.manager], capture_output=True,
                              text=True, timeout=30)
        pid = int(done.stdout.strip() or 0) if done.returncode == 0 else 0
        if pid <= 0:
            raise RuntimeError(f"{self.manager} does not run: bash .ci/multinode.sh up")
        return pid

    def client_env(self, env: dict | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_HOST")}
        return {**base, "NO_COLOR": "1", "DOCKER_HOST": self.host(self.manager), **(env or {})}

    def client(self, argv: list[str], *, env: dict | None = None, timeout: float = 120,
               **kw) -> subprocess.CompletedProcess:
        """Run argv as a swarm client: in the manager's network namespace, DOCKER_HOST of the manager."""
        kw.setdefault("capture_output", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(["nsenter", f"--net=/proc/{self.manager_pid()}/ns/net", "--", *argv], text=True,
                              env=self.client_env(env), timeout=timeout, **kw)

    def script(self, script: str, *args: str, env: dict | None = None, timeout: float = 300):
        """One of the toolkit's root scripts, run as a swarm client."""
        return self.client([sys.executable, str(REPO / script), *args], env=env, timeout=timeout)

    def fetch(self, url: str, timeout: float = 3.0, *, from_manager: bool = True) -> tuple[bool, str]:
        """(answered, body or why not) of an HTTP GET, made from the manager's namespace (else from this host)."""
        argv = [sys.executable, "-c", FETCH, url, str(timeout)]
        done = (self.client(argv, timeout=timeout + 30) if from_manager else
                subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30))
        return done.returncode == 0, done.stdout if done.returncode == 0 else done.stderr.strip()

    # -- the nodes' engines, from this host -------------------------------------------------------------------
    def docker(self, node: str, *args: str, check: bool = True, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess:
        """The docker CLI against one node's engine."""
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONTEXT"}
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=input,
                              env={**env, "DOCKER_HOST": self.host(node)},
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on {node} failed (exit {done.returncode}): "
                                 f"{done.stderr.strip()}")
        return done

    def remove_images(self, repository: str) -> None:
        """Teardown: every image of this repository (registry:5000/NAME) on every node, by id (a task's image is
        pulled by digest, untagged), and its tags in the harness's registry (blobs stay until a registry GC)."""
        for node in self.nodes:
            ids = sorted(set(self.docker(node, "image", "ls", "-q", repository, check=False).stdout.split()))
            if ids:
                self.docker(node, "rmi", "-f", *ids, check=False)
        name = repository.split("/", 1)[1]
        base = f"http://{self.registry_addr}/v2/{name}"
        accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
        try:
            tags = json.load(urllib.request.urlopen(f"{base}/tags/list", timeout=5)).get("tags") or []
            for tag in tags:
                with urllib.request.urlopen(urllib.request.Request(f"{base}/manifests/{tag}", headers=accept,
                                                                   method="HEAD"), timeout=5) as answer:
                    digest = answer.headers["Docker-Content-Digest"]
                urllib.request.urlopen(urllib.request.Request(f"{base}/manifests/{digest}", method="DELETE"),
                                       timeout=5).close()
        except (OSError, ValueError):  # not there (404), or already gone
            pass

    def node_states(self) -> dict[str, tuple[str, str]]:
        """hostname -> (status, availability), as the manager reports them."""
        out = self.docker(self.manager, "node", "ls", "--format", "{{json .}}").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["Hostname"]: (r["Status"], r["Availability"]) for r in rows}

    def problem(self) -> str | None:
        """Why the harness cannot be used now (None: it is up, three nodes Ready and Active)."""
        try:
            pid = self.manager_pid()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            return str(exc)
        if not Path(f"/proc/{pid}/ns/net").exists():
            return f"no network namespace at /proc/{pid}/ns/net"
        try:
            states = self.node_states()
        except (AssertionError, OSError, subprocess.SubprocessError, ValueError) as exc:
            return f"the manager does not answer as a swarm manager: {exc}"
        wanted = {n: ("Ready", "Active") for n in self.nodes}
        if states != wanted:
            return f"nodes are {states}, not {wanted}"
        return None

    def wait_node(self, node: str, status: str, timeout: float = 90) -> float:
        """Seconds until the manager reports `node` with this status (AssertionError when it does not)."""
        began = time.monotonic()
        ok = wait_for(lambda: self.node_states().get(node, ("?", "?"))[0] == status, timeout, 0.25)
        took = time.monotonic() - began
        assert ok, f"{node} is not {status} after {took:.0f}s: {self.node_states()}"
        return took

    @contextlib.contextmanager
    def node_stopped(self, node: str, timeout: float = 10) -> Iterator[None]:
        """Stop a worker's node container; start it again on the way out, whatever happened, and wait until
        its engine answers and the manager has it Ready again (the harness is left as it was found)."""
        assert node in self.workers, "only a worker is stopped: the manager holds the swarm"
        subprocess.run(["docker", "stop", "-t", str(int(timeout)), node], check=True, capture_output=True,
                       timeout=timeout + 60)
        try:
            yield
        finally:
            subprocess.run(["docker", "start", node], check=True, capture_output=True, timeout=60)
            assert wait_for(lambda: self.docker(node, "version", check=False, timeout=10).returncode == 0, 60, 0.2), \
                f"the engine of {node} does not answer after its start"
            self.wait_node(node, "Ready")


def find() -> Harness | str:
    """The harness when it is up and usable, else why not."""
    if os.geteuid() != 0:
        return "the harness needs root (nsenter into the manager's network namespace)"
    if not ENV_FILE.exists():
        return f"no {ENV_FILE}: the three-node harness is not up (bash .ci/multinode.sh up)"
    harness = Harness(read_env())
    why = harness.problem()
    return harness if why is None else f"the three-node harness is not usable: {why} (bash .ci/multinode.sh up)"


@pytest.fixture(scope="session")
def multinode() -> Harness:
    found = find()
    if isinstance(found, str):
        if os.environ.get("TMT_REQUIRE_DOCKER") == "1":
            pytest.fail(f"TMT_REQUIRE_DOCKER=1 but {found}", pytrace=False)
        pytest.skip(found)
    return found
