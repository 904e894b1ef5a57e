"""The registry as validated, frozen objects, and the queries the scripts ask of it."""

from __future__ import annotations

import difflib
import signal
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

from ..data import dataclass, field
from ..errors import ConfigError
from . import graph

GROUPS = ("core", "infrastructure")
PROBE_KINDS = ("http", "tcp", "redis", "postgres", "kafka")
SERVICE_TYPES = ("service", "oneshot")  # oneshot: a job (a migration) that must exit 0 before its dependents start  # a service's own `backend:`, whatever the mode


@dataclass(frozen=True)
class Probe:
    """How to ask a service whether it is healthy."""

    kind: str  # one of PROBE_KINDS
    timeout: float
    path: str | None = None  # http only
    expect_status: tuple[int, ...] = (200,)  # http only
    # http only: the body field whose word decides (e.g. the orchestrator's system_health), instead of the
    # automatic shapes; and body values that mean degraded (trading_enabled: false)
    status_field: str | None = None
    degraded_if: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Build:
    """A command that makes what a service runs (npm run build), run before anything is stopped, and only when
    its inputs changed since it last succeeded."""

    command: tuple[str, ...]
    cwd: Path
    inputs: tuple[str, ...]  # glob patterns relative to cwd; none: it runs every time
    timeout: float


@dataclass(frozen=True)
class Dependency:
    name: str
    required: bool


@dataclass(frozen=True)
class Hook:
    """An HTTP call made to the service: before it is signalled (pre_stop, e.g. "stop taking orders"), or once it
    is started or restored and ready (post_start, e.g. "take orders again")."""

    method: str
    path: str
    timeout: float

    def describe(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINT_MODES = ("vip", "dnsrr")  # swarm: a virtual IP (needs the kernel's IPVS), or DNS round robin to the tasks
# What a swarm placement constraint may test: `ATTRIBUTE == VALUE` or `!=`, as `docker service create --constraint`
PLACEMENT_ATTRIBUTES = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
PLACEMENT_LABELS = ("node.labels.", "engine.labels.")


@dataclass(frozen=True)
class SwarmSettings:
    """How --mode swarm deploys a service, from the registry's `swarm:` block (each key overrides the compose
    file's `deploy:` block of the service; None: not said here)."""

    replicas: int | None = None
    placement: tuple[str, ...] = ()  # constraints, e.g. "node.labels.db == true": all must hold
    endpoint_mode: str | None = None  # ENDPOINT_MODES


DEFINITION_KEYS = ("command", "cwd", "env", "env_file")  # what a service runs, as written (${VAR} unexpanded)


@dataclass(frozen=True)
class Service:
    name: str
    display_name: str
    group: str
    host: str
    port: int | None  # None only for a oneshot job
    oneshot: bool  # a job, done when it exits 0; not probed, not a long-running service
    critical: bool
    managed: bool  # started as a process on this host (by default: core services)
    backend: str | None  # its own backend, whatever the mode ("compose": a container, e.g. infrastructure)
    command: tuple[str, ...]  # resolved: placeholders filled, `python` is the running interpreter
    cwd: Path
    env: Mapping[str, str]
    probe: Probe
    depends_on: tuple[Dependency, ...]
    startup_timeout: float
    stop_signal: signal.Signals
    stop_grace: float
    pre_stop: Hook | None
    compose_service: str
    public: bool  # swarm: its port may be published on every interface of every node (swarm cannot bind 127.0.0.1)
    post_start: Hook | None = None
    # How it is run, as the registry writes it (DEFINITION_KEYS; references such as ${OANDA_API_KEY} unexpanded,
    # so no secret value): kept once it ran healthy, to start it again that way when a new definition fails.
    definition: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    # positions in command that hold a secret (a secret-named ${VAR} went in, or a URL password): always masked
    # where the command line is shown, whether or not the variable is set now (redact.mask_argv)
    secret_args: tuple[int, ...] = ()
    swarm: SwarmSettings = field(default_factory=SwarmSettings)  # --mode swarm only
    env_files: tuple[Path, ...] = ()  # dotenv files read when it starts (the project's, then its own); env wins
    build: Build | None = None
    # Set by a backend's address() only: why no probe or hook made from here reaches this service (a swarm task on
    # another node with no probe relay, or none running). It is then probed and called nowhere: what answers at
    # any address here is not it.
    unreached: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The probe's URL for http probes, else a scheme-style address (redis://host:port)."""
        if self.probe.kind == "http":
            return f"http://{self.host}:{self.port}{self.probe.path}"
        return f"{self.probe.kind}://{self.host}:{self.port}"

    @property
    def required_deps(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.depends_on if d.required)


@dataclass(frozen=True)
class Threshold:
    warning: float
    critical: float


@dataclass(frozen=True)
class HealthSettings:
    deadline: float  # one round of probes, all at once, ends by then
    state_change_rounds: int  # monitor: a new state must hold this many rounds before it is reported
    monitor_interval: float
    disk_paths: tuple[Path, ...]
    thresholds: Mapping[str, Threshold]  # cpu_percent, memory_percent, disk_percent, load_per_cpu


@dataclass(frozen=True)
class HealSettings:
    """system-health.py --monitor --heal: when a managed service that stays down is restarted, and how often."""

    after_rounds: int  # down this many monitor rounds in a row before a heal
    max_per_hour: int  # attempts per service in any hour; past it, no more attempts and a critical finding
    backoff_seconds: float  # after an attempt, the next one waits this long, doubling with each attempt ...
    backoff_max_seconds: float  # ... up to this


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go beside the conventional variables (notify.py): the NAMES of environment variables
    holding webhook URLs, never a URL (a URL is a secret: it stays in the environment, like OANDA_API_KEY)."""

    slack: tuple[str, ...] = ()  # Slack incoming webhooks
    webhook: tuple[str, ...] = ()  # generic JSON webhooks

    @property
    def variables(self) -> tuple[str, ...]:
        return (*self.slack, *self.webhook)


@dataclass(frozen=True)
class Registry:
    path: Path
    project: str
    root: Path
    default_mode: str
    log_dir: Path
    state_dir: Path
    compose_file: Path
    compose_project: str
    swarm_stack: str  # the stack `--mode swarm` deploys the compose file as
    compose_timeout: float
    log_max_bytes: int
    log_backups: int
    health: HealthSettings
    heal: HealSettings
    services: Mapping[str, Service]  # in registry order
    warnings: tuple[str, ...] = field(default=())  # e.g. an unset ${VAR}; the CLI shows them
    notify: NotifySettings = field(default=NotifySettings())

    # -- lookups ---------------------------------------------------------------------------------
    def service(self, name: str) -> Service:
        """By its registry name, or by its compose service name."""
        try:
            return self.services[name]
        except KeyError:
            for service in self.services.values():
                if service.compose_service == name:
                    return service
            raise ConfigError(f"unknown service '{name}'{suggest(name, self.services)}; "
                              f"known: {', '.join(self.services)}") from None

    def select(self, names: Iterable[str] | None = None) -> list[Service]:
        """The named services (all when None), validated, in registry order."""
        if names is None:
            return list(self.services.values())
        wanted = {self.service(n).name for n in names}
        return [s for s in self.services.values() if s.name in wanted]

    def log_file(self, service: Service) -> Path:
        """Where a natively run service's stdout and stderr go."""
        return self.log_dir / f"{service.name}.log"

    @property
    def managed(self) -> list[Service]:
        return [s for s in self.services.values() if s.managed]

    # -- dependency graph -------------------------------------------------------------------------
    def _deps(self, services: Iterable[Service]) -> dict[str, list[str]]:
        return {s.name: [d.name for d in s.depends_on] for s in services}

    def start_waves(self, services: Iterable[Service] | None = None) -> list[list[Service]]:
        """Waves of services whose dependencies (among the selection) are all in earlier waves."""
        chosen = list(self.services.values()) if services is None else list(services)
        names = graph.start_waves(self._deps(chosen), list(self.services))
        return [[self.services[n] for n in wave] for wave in names]

    def stop_waves(self, services: Iterable[Service] | None = None) -> list[list[Service]]:
        return self.start_waves(services)[::-1]

    def dependents(self, names: Iterable[str]) -> list[Service]:
        """Transitive dependents of the named services (required or optional), in registry order."""
        found = graph.dependents(self._deps(self.services.values()), [self.service(n).name for n in names])
        return [s for s in self.services.values() if s.name in found]

    def dependents_each(self, names: Iterable[str]) -> dict[str, set[str]]:
        """Each named service's transitive dependents (names), the graph read once for all of them."""
        deps = self._deps(self.services.values())
        return {name: graph.dependents(deps, [name]) for name in names}

    def with_dependents(self, names: Iterable[str]) -> list[Service]:
        names = list(names)
        chosen = {s.name for s in self.select(names)} | {s.name for s in self.dependents(names)}
        return [s for s in self.services.values() if s.name in chosen]


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close match, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def freeze(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))
