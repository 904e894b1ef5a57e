"""Which Docker engine to talk to, decided once, the way the docker CLI decides it, so that the toolkit's own
engine queries, the docker SDK and every CLI it runs (compose, `docker stack`, `docker service`) reach the
same engine.

The CLI's order: DOCKER_HOST (the "default" context, pointed elsewhere), else DOCKER_CONTEXT, else the
`currentContext` of $DOCKER_CONFIG/config.json (`docker context use`), else the local socket. A context is
read from its metadata store ($DOCKER_CONFIG/contexts/meta/<sha256 of its name>/meta.json) here, without the
docker SDK, whose import alone costs more than a whole `status`; the SDK is used (`from_context`) only for
engines the plain client cannot reach (TLS, ssh://).

Every CLI the toolkit runs gets the resolved choice pinned in its environment (DOCKER_CONTEXT=<name>, or
DOCKER_HOST as given), so a `docker context use` by someone else half-way through a run cannot split it
between two engines.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Mapping

from ..data import dataclass
from ..errors import ConfigError
from ..files import FileProblem, read_regular

DEFAULT_HOST = "unix:///var/run/docker.sock"
MAX_BYTES = 1024 * 1024  # the docker CLI's config.json and a context's meta.json are a few hundred bytes


@dataclass(frozen=True)
class Endpoint:
    host: str  # unix:///path, tcp://host:port, ssh://user@host
    context: str | None  # the context it comes from; None for DOCKER_HOST and the built-in default
    tls: bool  # TLS material is configured (DOCKER_TLS_VERIFY, or the context's TLS store)
    source: str  # how it was chosen, for messages: "DOCKER_HOST", "DOCKER_CONTEXT", "docker context use", "default"

    @property
    def plain(self) -> bool:
        """The toolkit's own stdlib client can reach it (a unix socket, or tcp without TLS)."""
        return self.host.startswith("unix://") or self.host.startswith("tcp://") and not self.tls

    def describe(self) -> str:
        via = f"context {self.context} ({self.source})" if self.context else self.source
        return f"{self.host} ({via})"

    def pin(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` for a docker CLI that must reach this very engine."""
        pinned = dict(env)
        if self.context is not None:
            pinned.pop("DOCKER_HOST", None)
            pinned["DOCKER_CONTEXT"] = self.context
        return pinned


def config_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _current_context(environ: Mapping[str, str]) -> tuple[str | None, str]:
    if environ.get("DOCKER_CONTEXT"):
        return environ["DOCKER_CONTEXT"], "DOCKER_CONTEXT"
    try:
        config = json.loads(read_regular(config_dir(environ) / "config.json", MAX_BYTES))
    except (OSError, ValueError, FileProblem):  # missing, unreadable or not JSON: as if no context was chosen
        return None, "default"
    name = config.get("currentContext") if isinstance(config, dict) else None
    return (name, "docker context use") if isinstance(name, str) and name else (None, "default")


def _context_endpoint(name: str, source: str, environ: Mapping[str, str]) -> Endpoint:
    import hashlib  # here: only a named context needs it, and it costs more than a status request
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir(environ) / "contexts" / "meta" / digest / "meta.json"
    try:
        data = json.loads(read_regular(meta, MAX_BYTES))
        host = data["Endpoints"]["docker"]["Host"]
    except FileNotFoundError:
        raise ConfigError(f"docker context '{name}' (chosen by {source}) does not exist: pick one that "
                          "`docker context ls` lists") from None
    except FileProblem as exc:
        raise ConfigError(f"docker context '{name}' ({source}): {exc}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"docker context '{name}' ({source}): cannot read {meta} ({type(exc).__name__}: {exc})"
                          ) from None
    tls = (config_dir(environ) / "contexts" / "tls" / digest / "docker").is_dir()
    return Endpoint(host, name, tls, source)


def resolve(environ: Mapping[str, str] = os.environ) -> Endpoint:
    if environ.get("DOCKER_HOST"):
        return Endpoint(environ["DOCKER_HOST"], None, bool(environ.get("DOCKER_TLS_VERIFY")), "DOCKER_HOST")
    name, source = _current_context(environ)
    if name is None or name == "default":
        return Endpoint(DEFAULT_HOST, None, False, source)
    return _context_endpoint(name, source, environ)


@functools.lru_cache(maxsize=None)
def current() -> Endpoint:
    """The engine of this run, resolved once (ConfigError for a context that does not exist)."""
    return resolve()


def possible(endpoint: Endpoint) -> bool:
    """An engine could be there at all: asking a socket that does not exist costs nothing to skip."""
    return not endpoint.host.startswith("unix://") or os.path.exists(endpoint.host[len("unix://"):])
