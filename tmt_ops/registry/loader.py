"""config/services.yaml -> Registry: parse, expand ${VAR}, check each section, validate, build.

Every problem becomes one ConfigError line naming the file, the place and what is wrong.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..bounds import Bound, shown
from .. import modes
from ..errors import ConfigError
from ..files import FileProblem, TooLarge, read_regular
from ..redact import SECRET_NAME, URL_PASSWORD
from . import graph
from .model import (DEFINITION_KEYS, ENDPOINT_MODES, GROUPS, PLACEMENT_ATTRIBUTES, PLACEMENT_LABELS, PROBE_KINDS,
                    SERVICE_TYPES, Build, Dependency, HealSettings, HealthSettings, Hook, NotifySettings, Probe,
                    Registry, Service, SwarmSettings, Threshold, freeze, suggest)

REQUIRED = object()
NUMBER = (int, float)

# key -> (accepted types, default or REQUIRED). A default of None means "derived later".
PROJECT_KEYS = {
    "name": (str, "tmt"), "root": (str, "."), "default_mode": (str, "native"), "host": (str, "127.0.0.1"),
    "log_dir": (str, "logs"), "state_dir": (str, ".tmt-state"), "compose_file": (str, "docker-compose.yml"),
    "compose_project": (str, None), "swarm_stack": (str, None), "env_file": ((str, list), []),
}
DEFAULTS_KEYS = {
    "startup_timeout": (NUMBER, 60), "stop_grace": (NUMBER, 10), "stop_signal": (str, "SIGTERM"),
    "probe_timeout": (NUMBER, 2), "log_max_bytes": (int, 10 * 1024 * 1024), "log_backups": (int, 3),
    "compose_timeout": (NUMBER, 600),
}
HEALTH_KEYS = {
    "deadline": (NUMBER, 4), "state_change_rounds": (int, 2), "monitor_interval": (NUMBER, 30),
    "disk_paths": (list, ["/"]), "thresholds": (dict, {}),
}
HEAL_KEYS = {
    "after_rounds": (int, 2), "max_per_hour": (int, 3), "backoff_seconds": (NUMBER, 60),
    "backoff_max_seconds": (NUMBER, 900),
}
THRESHOLD_DEFAULTS = {"cpu_percent": (85, 95), "memory_percent": (85, 95), "disk_percent": (80, 90),
                      "load_per_cpu": (1.5, 3.0)}
SERVICE_KEYS = {
    "display_name": (str, None), "group": (str, REQUIRED), "host": (str, None), "port": (int, None),
    "type": (str, "service"),
    "critical": (bool, True), "managed": (bool, None), "command": (list, None), "cwd": (str, "."),
    "env": (dict, {}), "health": (dict, {}), "depends_on": (dict, {}), "startup_timeout": (NUMBER, None),
    "stop_signal": (str, None), "stop_grace": (NUMBER, None), "pre_stop": (dict, None),
    "post_start": (dict, None), "compose_service": (str, None), "backend": (str, None), "public": (bool, False),
    "env_file": ((str, list), []), "build": (dict, None),
    "swarm": (dict, None),
}
HEALTH_PROBE_KEYS = {"type": (str, "tcp"), "path": (str, None), "expect_status": ((int, list), 200),
                     "timeout": (NUMBER, None), "status_field": (str, None), "degraded_if": (dict, {})}
BUILD_KEYS = {"command": (list, REQUIRED), "inputs": (list, []), "timeout": (NUMBER, None)}
HOOK_KEYS = {"method": (str, "POST"), "path": (str, REQUIRED), "timeout": (NUMBER, 5)}  # pre_stop, post_start
SWARM_KEYS = {"replicas": (int, None), "placement": (list, []), "endpoint_mode": (str, None)}  # a service's swarm:
CONSTRAINT = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*")
NOTIFY_KEYS = {"slack": ((str, list), []), "webhook": ((str, list), [])}  # each: ${VAR} or a list of them
TOP_KEYS = {"version": (int, 1), "project": (dict, {}), "defaults": (dict, {}), "health": (dict, {}),
            "heal": (dict, {}), "notify": (dict, {}), "services": (dict, REQUIRED)}

# The bound of every number in the registry, by key: a key means the same wherever it appears (a service's
# startup_timeout and defaults.startup_timeout; a service's health.timeout and pre_stop.timeout). Far from any
# real value at both ends; what lies beyond is a typo, .inf, .nan or an attack. README.md lists them.
# A threshold's warning and critical take the bound of its metric; a percentage reaches 100 at most and a
# threshold fires at its value (>=), so 101 is how a threshold is switched off.
SECONDS = "seconds"
PERCENT = Bound(0, 101, "percent; 101: never")
BOUNDS = {
    "startup_timeout": Bound(0.1, 86400, SECONDS), "stop_grace": Bound(0.1, 3600, SECONDS),
    "probe_timeout": Bound(0.1, 600, SECONDS), "timeout": Bound(0.1, 600, SECONDS),
    "compose_timeout": Bound(1, 86400, SECONDS),
    "log_max_bytes": Bound(1024, 1 << 40, "bytes", integer=True), "log_backups": Bound(0, 100, integer=True),
    "deadline": Bound(0.1, 600, SECONDS), "monitor_interval": Bound(0.05, 86400, SECONDS),
    "state_change_rounds": Bound(1, 1000, integer=True),
    "after_rounds": Bound(1, 1000, integer=True), "max_per_hour": Bound(1, 1000, integer=True),
    "backoff_seconds": Bound(0.1, 86400, SECONDS), "backoff_max_seconds": Bound(0.1, 86400, SECONDS),
    "port": Bound(1, 65535, integer=True), "replicas": Bound(1, 1000, "tasks", integer=True),
    "cpu_percent": PERCENT, "memory_percent": PERCENT, "disk_percent": PERCENT,
    "load_per_cpu": Bound(0, 1000, "load per CPU"),
}

ENV_REF = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
VARIABLE_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # notify: a bare ${VAR}, no default
# {{ and }} are literal braces; any other brace must open or close a placeholder
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
PLACEHOLDERS = "{port}, {host}, {port:NAME} or {health_url:NAME}"
FILLED = re.compile(r"services\.[^.]+\.(command|env\..+)")  # where placeholders are filled (see expand)

# Limits far above any real registry (the shipped one is 7 KiB, 4 levels deep) that keep a hostile or broken
# file from exhausting memory, time or the stack: the file's size, its size once aliases are expanded (an
# "alias bomb" of nested *refs is a few hundred bytes), and its nesting.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 50
MERGE_TAG = "tag:yaml.org,2002:merge"


CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout, when tmt_ops runs from one


def config_places(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Where the registry is looked for when neither --config nor TMT_CONFIG names it, in order: here, the
    user's configuration, the host's, and (running from a source checkout) the checkout's own."""
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    places = [Path("config/services.yaml"), Path(xdg, "tmt-ops", "services.yaml"), Path("/etc/tmt-ops/services.yaml")]
    if (CHECKOUT / "restart-trading-system.py").is_file():
        places.append(CHECKOUT / "config" / "services.yaml")
    return places


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """TMT_CONFIG, else the first of config_places() that exists; a ConfigError naming every place looked at."""
    if environ.get("TMT_CONFIG"):
        return Path(environ["TMT_CONFIG"])
    places = config_places(environ)
    for place in places:
        if place.is_file():
            return place
    raise ConfigError(f"no registry found (looked at {', '.join(map(str, places))}): pass --config PATH, set "
                      "TMT_CONFIG, or put the starter registry in place with `tmt-ops init`")


def load_registry(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None,
                  definitions: Mapping[str, Mapping] | None = None) -> Registry:
    """The registry at `path`; `definitions`: service -> a Service.definition to run it by instead of the one the
    file writes (the last definition it ran healthy with, for a rollback), checked like the file's own."""
    path = Path(path) if path is not None else default_config_path()
    return _Loader(path, os.environ if environ is None else environ, definitions or {}).load()


class _Loader:
    def __init__(self, path: Path, environ: Mapping[str, str], definitions: Mapping[str, Mapping]):
        self.path = path
        self.environ = environ
        self.definitions = definitions
        self.warnings: list[str] = []
        self.written: dict[str, dict] = {}  # service -> its definition as written, before ${VAR} expansion

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where + ': ' if where else ''}{problem}")

    # -- parse ----------------------------------------------------------------------------------------
    def load(self) -> Registry:
        try:  # never waiting on a FIFO, never reading a device or a huge file into memory
            text = read_regular(self.path, MAX_BYTES).decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: registry not found (pass --config PATH or set TMT_CONFIG)") from None
        except TooLarge:
            raise self.fail("", f"the file is larger than {MAX_BYTES >> 20} MiB, far more than any registry: "
                                "is --config (or TMT_CONFIG) the right file?") from None
        except FileProblem as exc:
            raise self.fail("", f"cannot read the registry: {exc.why} (is --config, or TMT_CONFIG, the right "
                                "file?)") from None
        except UnicodeDecodeError as exc:
            raise self.fail("", f"cannot read the registry: {exc}") from None
        parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            node = parser.get_single_node()
            data = None
            if node is not None:  # an empty file has none
                self.check_nodes(node)  # first: construction shares an alias's objects, expand() copies them
                data = parser.construct_document(node)
        except ValueError as exc:  # a scalar YAML resolves but Python cannot build: 2001-13-45, 5,000 digits
            raise self.fail("", f"a value that cannot be read ({str(exc).split(':')[0]})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "invalid YAML"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{self.path}: {where}: invalid YAML: {problem}") from None
        except RecursionError:  # the pure-Python composer recurses per level, before check_nodes can look
            raise self.too_deep("") from None
        finally:
            parser.dispose()
        if data is None:
            raise self.fail("", "the registry is empty (it needs at least a 'services:' section)")
        if not isinstance(data, dict):
            raise self.fail("", f"the registry must be a mapping with a 'services:' section, not {_kind(data)}")
        self.keep_definitions(data)
        return self.build(self.expand(data, ""))

    def keep_definitions(self, data: dict) -> None:
        """Swap in the definitions asked for, then note each service's definition as written (expand() copies
        what it expands, so these stay unexpanded)."""
        services = data.get("services")
        if not isinstance(services, dict):
            return  # build() says what is wrong
        for name, definition in self.definitions.items():
            spec = services.get(name)
            if not isinstance(spec, dict):
                raise self.fail(f"service '{name}'", "is no longer in the registry")
            for key in DEFINITION_KEYS:
                if definition.get(key) is None:
                    spec.pop(key, None)
                else:
                    spec[key] = definition[key]
        for name, spec in services.items():
            if isinstance(spec, dict):
                self.written[name] = {key: spec.get(key) for key in DEFINITION_KEYS}

    def check_nodes(self, root: yaml.Node) -> None:
        """Refuse duplicate keys, and a document that expands past MAX_BYTES or nests deeper than MAX_DEPTH.

        Sizes are of the document as expand() will copy it, each alias in full (a scalar counts its length,
        at least 1; a list or mapping 1 plus its items), memoised per node so that this takes linear time.
        """
        measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, levels of nesting inside)

        def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
            if depth > MAX_DEPTH:  # before recursing: this walk must not exhaust the stack either
                raise self.too_deep(_line(node))
            if id(node) not in measured:
                if isinstance(node, yaml.ScalarNode):
                    size, levels = max(1, len(node.value)), 0
                else:
                    items = node.value
                    if isinstance(node, yaml.MappingNode):
                        self.check_keys(node)
                        items = [n for pair in node.value for n in pair]
                    inside = [measure(item, depth + 1) for item in items]
                    size = 1 + sum(s for s, _ in inside)
                    levels = 1 + max((n for _, n in inside), default=0)
                if size > MAX_BYTES:
                    raise self.fail(_line(node), f"aliases (*name) expand the registry past {MAX_BYTES >> 20} MiB "
                                                 "here, like an alias bomb: write it with fewer aliases, not nested "
                                                 "repeats")
                if depth + levels > MAX_DEPTH:  # an alias used down here brings the levels inside it along
                    raise self.too_deep(_line(node))
                measured[id(node)] = (size, levels)
            return measured[id(node)]

        measure(root, 0)

    def check_keys(self, node: yaml.MappingNode) -> None:
        """A key given twice is an error (PyYAML keeps the last); merged keys (<<) may be overridden."""
        first_line: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
                continue
            same = (key.tag, key.value)
            if same in first_line:
                raise self.fail(_line(key), f"duplicate key '{key.value}' (its first value is on line "
                                            f"{first_line[same]}): remove one")
            first_line[same] = key.start_mark.line + 1

    def too_deep(self, where: str) -> ConfigError:
        return self.fail(where, f"nested more than {MAX_DEPTH} levels deep, far more than any registry: "
                                "check the brackets and indentation")

    def expand(self, value: Any, where: str) -> Any:
        """${VAR} and ${VAR:-default} from the environment in every string; $$ is a literal $."""
        if isinstance(value, dict):
            return {k: self.expand(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, where) for v in value]
        if not isinstance(value, str) or "$" not in value or where.split(".")[0] == "notify":
            return value  # notify: names variables, read when a message is sent (make_notify)

        def sub(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name is None:
                return "$"
            got = self.environ.get(name)
            if got:  # the environment's text is data: its braces reach the service as they are, never placeholders
                return got.replace("{", "{{").replace("}", "}}") if FILLED.fullmatch(where) else got
            if default is not None:
                return default
            self.warnings.append(f"{where}: ${{{name}}} is not set; using an empty value")
            return ""

        expanded = ENV_REF.sub(sub, value)
        if ENV_REF.fullmatch(value) and value != "$$" and not FILLED.fullmatch(where):
            return _typed(expanded)  # `port: ${PORT}` is the number the variable holds, as YAML would read it
        return expanded

    # -- sections ---------------------------------------------------------------------------------------
    def section(self, data: Any, keys: dict, where: str, bounds: Mapping[str, Bound] = BOUNDS) -> dict:
        """The mapping's keys checked against the table (unknown, missing, of the wrong type, a number out of its
        bound), with defaults for the keys it leaves out."""
        if not isinstance(data, dict):
            raise self.fail(where, f"must be a mapping, not {_kind(data)}")
        for key in data:
            if key not in keys:
                raise self.fail(where, f"unknown key '{key}'{suggest(str(key), keys)}")
        out = {}
        for key, (types, default) in keys.items():
            if key not in data or data[key] is None and default is not REQUIRED:
                if default is REQUIRED:
                    raise self.fail(where, f"missing required key '{key}'")
                out[key] = default
                continue
            value = data[key]
            if isinstance(value, bool) and bool not in _tuple(types) or not isinstance(value, types):
                raise self.fail(where, f"{key}: expected {_type_name(types)}, got {_kind(value)} {value!r}")
            self.check_number(value, bounds.get(key), where, key)
            out[key] = value
        return out

    def check_number(self, value: Any, bound: Bound | None, where: str, key: str) -> None:
        """A number within its key's bound (finite: NaN and .inf are outside every bound)."""
        if bound is None or isinstance(value, bool) or not isinstance(value, NUMBER):
            return
        problem = bound.problem(value)
        if problem:
            raise self.fail(where, f"{key}: {problem}")

    def signal_of(self, name: str, where: str) -> signal.Signals:
        full = name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()
        try:
            return signal.Signals[full]
        except KeyError:
            raise self.fail(where, f"stop_signal: unknown signal '{name}' (e.g. SIGTERM, SIGINT, SIGQUIT)") from None

    # -- build --------------------------------------------------------------------------------------------
    def build(self, data: dict) -> Registry:
        top = self.section(data, TOP_KEYS, "")
        if top["version"] != 1:
            raise self.fail("version", f"unsupported registry version {shown(top['version'])} (this toolkit reads 1)")
        project = self.section(top["project"], PROJECT_KEYS, "project")
        self.check_env_files(project["env_file"], "project")
        defaults = self.section(top["defaults"], DEFAULTS_KEYS, "defaults")
        if project["default_mode"] not in modes.modes():
            raise self.fail("project", f"default_mode: must be one of {', '.join(modes.modes())}, "
                                       f"got '{project['default_mode']}'")
        self.signal_of(defaults["stop_signal"], "defaults")

        root = (self.path.resolve().parent / project["root"]).resolve()
        if not root.is_dir():  # log and state directories would be created under it
            raise self.fail("project", f"root: {root} does not exist or is not a directory: fix project.root "
                                       f"(a relative root is relative to the registry's directory)")
        raw_services = top["services"]
        if not raw_services:
            raise self.fail("services", "no services are defined")
        specs = {name: self.section(spec, SERVICE_KEYS, f"service '{name}'") for name, spec in raw_services.items()}
        for name, spec in specs.items():
            self.check_service(name, spec, specs)
        self.check_ports(specs, project["host"])
        cycle = graph.find_cycle({n: list(s["depends_on"]) for n, s in specs.items()})
        if cycle:
            raise self.fail("services", f"dependency cycle: {' -> '.join(cycle)}")

        services = {name: self.make_service(name, spec, specs, project, defaults, root)
                    for name, spec in specs.items()}
        compose_names = [s.compose_service for s in services.values()]
        for s in services.values():
            if compose_names.count(s.compose_service) > 1:
                raise self.fail(f"service '{s.name}'", f"compose_service '{s.compose_service}' is used twice")
        return Registry(
            path=self.path, project=project["name"], root=root, default_mode=project["default_mode"],
            log_dir=root / project["log_dir"], state_dir=root / project["state_dir"],
            compose_file=root / project["compose_file"],
            compose_project=project["compose_project"] or project["name"],
            swarm_stack=self.stack_name(project["swarm_stack"] or project["compose_project"] or project["name"]),
            compose_timeout=float(defaults["compose_timeout"]), log_max_bytes=defaults["log_max_bytes"],
            log_backups=defaults["log_backups"], health=self.make_health(top["health"], root),
            heal=self.make_heal(top["heal"]), services=freeze(services), warnings=tuple(self.warnings),
            notify=self.make_notify(top["notify"]))

    def stack_name(self, name: str) -> str:
        """A swarm stack name the engine takes: its services are named STACK_SERVICE."""
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
            raise self.fail("project", f"swarm_stack: '{name}' is not a valid stack name (letters, digits, '_', '.', "
                                       "'-'; set project.swarm_stack)")
        return name

    def check_service(self, name: str, spec: dict, specs: dict) -> None:
        where = f"service '{name}'"
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(name)):
            raise self.fail(where, "service names use lower-case letters, digits, '-' and '_'")
        if spec["group"] not in GROUPS:
            raise self.fail(where, f"group: must be one of {', '.join(GROUPS)}, got '{spec['group']}'"
                                   f"{suggest(spec['group'], GROUPS)}")
        if spec["type"] not in SERVICE_TYPES:
            raise self.fail(where, f"type: must be one of {', '.join(SERVICE_TYPES)}, got '{spec['type']}'"
                                   f"{suggest(spec['type'], SERVICE_TYPES)}")
        oneshot = spec["type"] == "oneshot"
        if spec["port"] is None and not oneshot:
            raise self.fail(where, "missing required key 'port'")
        if oneshot and (spec["health"] or spec["pre_stop"] or spec["post_start"]):
            raise self.fail(where, "a oneshot job (type: oneshot) is done when it exits 0: it has no health probe, "
                                   "no pre_stop and no post_start; remove them")
        own = modes.own_backends()
        if spec["backend"] is not None and spec["backend"] not in own:
            raise self.fail(where, f"backend: must be one of {', '.join(own)}, got '{spec['backend']}'"
                                   f"{suggest(spec['backend'], own)}")
        runs = modes.of_backend(spec["backend"]).runs if spec["backend"] else None
        if runs == modes.CONTAINERS and spec["managed"]:
            raise self.fail(where, f"backend: {spec['backend']} runs it in a container: drop managed: true (that is "
                                   "for a process on this host)")
        if runs == modes.PROCESSES and spec["managed"] is False:
            raise self.fail(where, f"backend: {spec['backend']} and managed: false contradict each other: pick one")
        if _managed(spec) and not spec["command"]:
            raise self.fail(where, "a managed service needs a command (an argument list), "
                                   "or set managed: false")
        if spec["command"] is not None and not all(isinstance(a, (str, int, float)) for a in spec["command"]):
            raise self.fail(where, "command: every argument must be a string")
        for key, value in spec["env"].items():
            if not isinstance(value, (str, int, float, bool)):
                raise self.fail(where, f"env.{key}: expected a string, got {_kind(value)}")
        for dep, kind in spec["depends_on"].items():
            if dep not in specs:
                raise self.fail(where, f"depends on unknown service '{dep}'{suggest(str(dep), specs)}")
            if dep == name:
                raise self.fail(where, "depends on itself")
            if kind not in ("required", "optional"):
                raise self.fail(where, f"depends_on.{dep}: must be 'required' or 'optional', got {kind!r}")
        probe = self.section(spec["health"], HEALTH_PROBE_KEYS, f"{where}: health")
        if probe["type"] not in PROBE_KINDS:
            raise self.fail(where, f"health.type: must be one of {', '.join(PROBE_KINDS)}, got "
                                   f"'{probe['type']}'{suggest(probe['type'], PROBE_KINDS)}")
        if probe["type"] == "http" and not (probe["path"] or "").startswith("/"):
            raise self.fail(where, "health.path: an http probe needs a path starting with '/'")
        statuses = probe["expect_status"] if isinstance(probe["expect_status"], list) else [probe["expect_status"]]
        if not statuses or not all(isinstance(c, int) and 100 <= c <= 599 for c in statuses):
            raise self.fail(where, f"health.expect_status: HTTP status codes (100-599), got {probe['expect_status']!r}")
        if (probe["status_field"] or probe["degraded_if"]) and probe["type"] != "http":
            raise self.fail(where, "health.status_field and health.degraded_if read an http probe's answer: they go "
                                   "with type: http")
        for field, value in probe["degraded_if"].items():
            if not isinstance(value, (str, int, float, bool)) or value is None:
                raise self.fail(where, f"health.degraded_if.{field}: expected a value the answer may hold (a word, a "
                                       f"number, true or false), got {_kind(value)}")
        spec["health"] = dict(probe, expect_status=tuple(statuses))
        self.check_env_files(spec["env_file"], where)
        if spec["build"] is not None:
            spec["build"] = self.section(spec["build"], BUILD_KEYS, f"{where}: build")
            if not spec["build"]["command"] or not all(isinstance(a, (str, int, float)) for a in spec["build"]["command"]):
                raise self.fail(where, "build.command: an argument list of strings")
            if not all(isinstance(g, str) and g for g in spec["build"]["inputs"]):
                raise self.fail(where, "build.inputs: a list of file patterns (relative to the service's cwd)")
        for hook in ("pre_stop", "post_start"):
            if spec[hook] is not None:
                spec[hook] = self.section(spec[hook], HOOK_KEYS, f"{where}: {hook}")
                if not spec[hook]["path"].startswith("/"):
                    raise self.fail(where, f"{hook}.path: must start with '/'")
        if spec["stop_signal"] is not None:
            self.signal_of(spec["stop_signal"], where)

    def check_ports(self, specs: dict, default_host: str) -> None:
        seen: dict[tuple[str, int], str] = {}
        for name, spec in specs.items():
            if spec["port"] is None:  # a oneshot job listens on nothing
                continue
            key = (spec["host"] or default_host, spec["port"])
            if key in seen:
                raise self.fail(f"service '{name}'", f"port {spec['port']} is already used by service '{seen[key]}'")
            seen[key] = name

    def make_service(self, name: str, spec: dict, specs: dict, project: dict, defaults: dict, root: Path) -> Service:
        where = f"service '{name}'"
        host = spec["host"] or project["host"]

        def fill(text: str, field: str) -> str:
            def sub(match: re.Match) -> str:
                token, key = match.group(0), match.group(1)
                if token in ("{{", "}}"):
                    return token[0]
                if key is None:
                    raise self.fail(where, f"{field}: a lone '{token}': write '{token * 2}' for a literal '{token}'")
                if key == "port":
                    return str(spec["port"])
                if key == "host":
                    return host
                kind, _, other = key.partition(":")
                if kind not in ("port", "health_url") or not other:
                    name = other or "NAME"
                    forms = ("{port}", "{host}", f"{{port:{name}}}", f"{{health_url:{name}}}")
                    raise self.fail(where, f"{field}: unknown placeholder '{token}'{suggest(token, forms)}: use "
                                           f"{PLACEHOLDERS}, and {{{{ or }}}} for a literal brace")
                if other not in specs:
                    raise self.fail(where, f"{{{key}}}: unknown service '{other}'{suggest(other, specs)}")
                o = specs[other]
                if o["port"] is None:
                    raise self.fail(where, f"{{{key}}}: service '{other}' is a oneshot job: it has no port")
                if kind == "port":
                    return str(o["port"])
                if o["health"]["type"] != "http":
                    raise self.fail(where, f"{{{key}}}: service '{other}' has no http health probe")
                return f"http://{o['host'] or project['host']}:{o['port']}{o['health']['path']}"
            return PLACEHOLDER.sub(sub, text)

        cwd = (root / spec["cwd"]).resolve()
        command = _program(tuple(fill(str(a), "command") for a in spec["command"] or ()), cwd)
        probe = spec["health"]
        build = spec["build"]

        def hook(key: str) -> Hook | None:
            given = spec[key]
            return Hook(given["method"].upper(), given["path"], float(given["timeout"])) if given else None

        return Service(
            name=name, display_name=spec["display_name"] or name.replace("-", " ").replace("_", " ").title(),
            group=spec["group"], host=host, port=spec["port"], oneshot=spec["type"] == "oneshot",
            critical=spec["critical"],
            managed=_managed(spec), backend=spec["backend"],
            command=command, cwd=cwd,
            env=freeze({str(k): fill(_scalar(v), f"env.{k}") for k, v in spec["env"].items()}),
            probe=Probe(kind=probe["type"], path=probe["path"], expect_status=probe["expect_status"],
                        timeout=float(probe["timeout"] or defaults["probe_timeout"]), status_field=probe["status_field"],
                        degraded_if=tuple(probe["degraded_if"].items())),
            depends_on=tuple(Dependency(d, k == "required") for d, k in spec["depends_on"].items()),
            startup_timeout=float(spec["startup_timeout"] or defaults["startup_timeout"]),
            stop_signal=self.signal_of(spec["stop_signal"] or defaults["stop_signal"], where),
            stop_grace=float(spec["stop_grace"] or defaults["stop_grace"]),
            pre_stop=hook("pre_stop"), post_start=hook("post_start"),
            compose_service=spec["compose_service"] or name, public=spec["public"],
            definition=freeze(self.written.get(name, {})), secret_args=self.secret_args(name, spec["command"] or ()),
            env_files=(*(root / f for f in _listed(project["env_file"])), *(cwd / f for f in _listed(spec["env_file"]))),
            build=Build(_program(tuple(str(a) for a in build["command"]), cwd), cwd, tuple(build["inputs"]),
                        float(build["timeout"] or defaults["compose_timeout"])) if build else None,
            swarm=self.make_swarm(spec["swarm"], where, spec["type"] == "oneshot"))

    def check_env_files(self, given: Any, where: str) -> None:
        if not all(isinstance(f, str) and f for f in _listed(given)):
            raise self.fail(where, "env_file: a path, or a list of paths, of dotenv files")

    def make_swarm(self, data: Any, where: str, oneshot: bool) -> SwarmSettings:
        """A service's `swarm:` block: replicas, placement constraints (`ATTRIBUTE == VALUE` or `!=`, as swarm
        writes them: node.id, node.hostname, node.role, node.platform.os/arch, node.labels.KEY, engine.labels.KEY),
        endpoint_mode (vip or dnsrr). Checked here, so a typo is one line before anything is deployed, not a
        task that no node accepts."""
        if data is None:
            return SwarmSettings()
        where = f"{where}: swarm"
        given = self.section(data, SWARM_KEYS, where)
        if oneshot and given["replicas"] not in (None, 1):
            raise self.fail(where, "replicas: a oneshot job runs once: 1 replica (or leave it out)")
        mode = given["endpoint_mode"]
        if mode is not None and mode not in ENDPOINT_MODES:
            raise self.fail(where, f"endpoint_mode: must be one of {', '.join(ENDPOINT_MODES)}, got '{mode}'"
                                   f"{suggest(mode, ENDPOINT_MODES)}")
        placement = []
        for item in given["placement"]:
            match = CONSTRAINT.fullmatch(item) if isinstance(item, str) else None
            if match is None:
                raise self.fail(where, f"placement: {item!r} is not a constraint: write `ATTRIBUTE == VALUE` or "
                                       "`!=`, e.g. node.labels.db == true or node.role == manager")
            attribute, operator, value = match.groups()
            label = next((p for p in PLACEMENT_LABELS if attribute.startswith(p)), None)
            if attribute not in PLACEMENT_ATTRIBUTES and not (label and len(attribute) > len(label)):
                raise self.fail(where, f"placement: unknown attribute '{attribute}'"
                                       f"{suggest(attribute, PLACEMENT_ATTRIBUTES)} (one of "
                                       f"{', '.join(PLACEMENT_ATTRIBUTES)}, node.labels.KEY, engine.labels.KEY)")
            if attribute == "node.role" and value not in ("manager", "worker"):
                raise self.fail(where, f"placement: node.role is manager or worker, got '{value}'")
            placement.append(f"{attribute} {operator} {value}")
        return SwarmSettings(given["replicas"], tuple(placement), mode)

    def secret_args(self, name: str, expanded: list) -> tuple[int, ...]:
        """Positions of the service's command arguments that hold a secret: a ${VAR} of a secret-looking name
        was expanded into it, or it holds a URL password. Read from the command as written, so the positions
        are the same whether or not the variable is set now (a stop from cron, without it, still knows which
        arguments of the running service to mask)."""
        written = self.written.get(name, {}).get("command") or ()
        return tuple(i for i, (raw, now) in enumerate(zip(written, expanded))
                     if _names_a_secret(str(raw)) or URL_PASSWORD.search(str(raw)) or URL_PASSWORD.search(str(now)))

    def make_health(self, data: Any, root: Path) -> HealthSettings:
        h = self.section(data, HEALTH_KEYS, "health")
        if not all(isinstance(p, str) for p in h["disk_paths"]):
            raise self.fail("health", "disk_paths: expected a list of paths")
        keys = {k: (dict, {"warning": w, "critical": c}) for k, (w, c) in THRESHOLD_DEFAULTS.items()}
        given = self.section(h["thresholds"], keys, "health.thresholds")
        thresholds = {}
        for key, value in given.items():
            t = self.section(value, {"warning": (NUMBER, REQUIRED), "critical": (NUMBER, REQUIRED)},
                             f"health.thresholds.{key}", {"warning": BOUNDS[key], "critical": BOUNDS[key]})
            if t["warning"] > t["critical"]:
                raise self.fail(f"health.thresholds.{key}", "warning must not exceed critical")
            thresholds[key] = Threshold(float(t["warning"]), float(t["critical"]))
        return HealthSettings(deadline=float(h["deadline"]), state_change_rounds=h["state_change_rounds"],
                              monitor_interval=float(h["monitor_interval"]),
                              disk_paths=tuple(root / p for p in h["disk_paths"]), thresholds=freeze(thresholds))

    def make_heal(self, data: Any) -> HealSettings:
        h = self.section(data, HEAL_KEYS, "heal")
        if h["backoff_max_seconds"] < h["backoff_seconds"]:
            raise self.fail("heal", "backoff_max_seconds must not be less than backoff_seconds")
        return HealSettings(after_rounds=h["after_rounds"], max_per_hour=h["max_per_hour"],
                            backoff_seconds=float(h["backoff_seconds"]), backoff_max_seconds=float(h["backoff_max_seconds"]))


    def make_notify(self, data: Any) -> NotifySettings:
        """notify: {slack: ${VAR} or [${VAR}, ...], webhook: ...}: each a bare ${VAR} naming the variable that holds
        a webhook URL. A URL written into the registry (a secret in a file that is copied, committed, printed) or
        a default (${VAR:-https://...}, the same) is refused, without repeating it."""
        n = self.section(data, NOTIFY_KEYS, "notify")
        found = {}
        for key, value in n.items():
            names = []
            for item in value if isinstance(value, list) else [value]:
                match = VARIABLE_REF.fullmatch(item) if isinstance(item, str) else None
                if match is None:
                    shown = "another text (not shown: it may be a webhook URL)" if isinstance(item, str) else \
                        f"a {_kind(item)}"
                    raise self.fail("notify", f"{key}: expected ${{VAR}} references to the environment variables that "
                                              f"hold webhook URLs (e.g. ${{SLACK_WEBHOOK_URL}}), got {shown}")
                names.append(match.group(1))
            found[key] = tuple(names)
        return NotifySettings(**found)


def _names_a_secret(text: str) -> bool:
    """The text expands a ${VAR} whose name looks secret (OANDA_API_KEY, DB_PASSWORD, ...)."""
    return any(m.group(1) and SECRET_NAME.search(m.group(1)) for m in ENV_REF.finditer(text))


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _listed(value: str | list) -> list:
    return [value] if isinstance(value, str) else list(value)


def _program(command: tuple[str, ...], cwd: Path) -> tuple[str, ...]:
    """The rule for a command's program, as a shell in the service's directory would run it: `python` is the
    interpreter that runs tmt-ops; a relative path with a '/' (`.venv/bin/python`) is the service's cwd's (not
    resolved further: a virtual environment's python is a symlink that must stay one); a bare name is looked up
    on PATH when it starts."""
    if not command:
        return command
    program = command[0]
    if program in ("python", "python3"):
        program = sys.executable
    elif "/" in program and not os.path.isabs(program):
        program = os.path.normpath(cwd / program)
    return (program, *command[1:])


def _managed(spec: dict) -> bool:
    """Started natively by tmt-ops: said so, or backend: native, or by default a core service (unless another
    backend runs it)."""
    if spec["managed"] is not None:
        return spec["managed"]
    if spec["backend"] is not None:
        return modes.of_backend(spec["backend"]).runs == modes.PROCESSES
    return spec["group"] == "core"


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


NUMBERS = re.compile(r"[+-]?(\d+|\d*\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+)")


def _typed(text: str) -> Any:
    """The value of a key written as one ${VAR} reference, typed as YAML would type it written there: a decimal
    integer, a number, true or false; anything else stays text (and the key's type check says what is wrong).
    (Not YAML itself: it reads 0123 as octal.)"""
    if NUMBERS.fullmatch(text.strip()):
        number = float(text)
        return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else number
    return {"true": True, "false": False}.get(text.strip().lower(), text)


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


_NAMES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                           list: "a list", dict: "a mapping"}


def _type_name(types) -> str:
    if types == NUMBER:
        return "a number"
    return " or ".join(_NAMES[t] for t in _tuple(types))


_KINDS: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
                          dict: "mapping"}


def _kind(value: Any) -> str:
    for t, word in _KINDS.items():
        if isinstance(value, t):
            return word
    return "null" if value is None else type(value).__name__
