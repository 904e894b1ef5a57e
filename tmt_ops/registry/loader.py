"""config/services.yaml -> Registry: parse, expand ${VAR}, check each section, validate, build.

Every problem becomes one ConfigError line naming the file, the place and what is wrong.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..bounds import Bound, shown
from .. import modes
from ..errors import ConfigError
from ..files import FileProblem, TooLarge, read_regular
from . import graph, validate
from .build import Builders
from .model import DEFINITION_KEYS, Registry, freeze, suggest
from .parse import YamlChecks, _typed
from .schema import (BOUNDS, BUILD_KEYS, DEFAULTS_KEYS, ENV_REF, FILLED, HEALTH_PROBE_KEYS, HOOK_KEYS, MAX_BYTES,
                     NUMBER, PROJECT_KEYS, REQUIRED, SERVICE_KEYS, TOP_KEYS)

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


class _Loader(YamlChecks, Builders):
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
            raise self.fail("", f"the registry must be a mapping with a 'services:' section, not {validate.kind_of(data)}")
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
            raise self.fail(where, f"must be a mapping, not {validate.kind_of(data)}")
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
                raise self.fail(where, f"{key}: expected {_type_name(types)}, got {validate.kind_of(value)} {value!r}")
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
        if not all(isinstance(f, str) and f for f in validate.listed(project["env_file"])):
            raise self.fail("project", "env_file: a path, or a list of paths, of dotenv files")
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
        validate.ports_rule(specs, project["host"], self.fail)
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
        """The rules about what was written, its sub-sections checked as sections (keys, types, bounds, defaults),
        then every other rule of validate.py."""
        where = f"service '{name}'"
        for rule in validate.WRITTEN_RULES:
            rule(name, spec, specs, lambda problem: self.fail(where, problem))
        spec["health"] = self.section(spec["health"], HEALTH_PROBE_KEYS, f"{where}: health")
        if spec["build"] is not None:
            spec["build"] = self.section(spec["build"], BUILD_KEYS, f"{where}: build")
        for hook in validate.HOOKS:
            if spec[hook] is not None:
                spec[hook] = self.section(spec[hook], HOOK_KEYS, f"{where}: {hook}")
        for rule in validate.SERVICE_RULES:
            rule(name, spec, specs, lambda problem: self.fail(where, problem))
        if spec["stop_signal"] is not None:
            self.signal_of(spec["stop_signal"], where)


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


_NAMES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                           list: "a list", dict: "a mapping"}


def _type_name(types) -> str:
    if types == NUMBER:
        return "a number"
    return " or ".join(_NAMES[t] for t in _tuple(types))
