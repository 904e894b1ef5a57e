"""The registry's rules for a service, one named function each (process-compose's loader as its model): each gets
the service's name, its section (keys checked for type and bound, defaults filled), every service's sections,
and a `fail(problem)` that makes the one line naming the file and the service; each raises it or returns. A rule
may settle a sub-section it checks (health, build, hooks) for the builders to read.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .. import modes
from .model import GROUPS, PROBE_KINDS, SERVICE_TYPES, suggest

Fail = Callable[[str], Exception]
HOOKS = ("pre_stop", "post_start")


def kind_of(value: Any) -> str:
    for t, word in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "list"),
                    (dict, "mapping")):
        if isinstance(value, t):
            return word
    return "null" if value is None else type(value).__name__


def managed(spec: dict) -> bool:
    """Started by tmt-ops as a process on this host: said so, or its own backend runs processes, or by default a
    core service (unless another backend runs it)."""
    if spec["managed"] is not None:
        return spec["managed"]
    if spec["backend"] is not None:
        return modes.of_backend(spec["backend"]).runs == modes.PROCESSES
    return spec["group"] == "core"


def listed(value: str | list) -> list:
    return [value] if isinstance(value, str) else list(value)


def name_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(name)):
        raise fail("service names use lower-case letters, digits, '-' and '_'")


def group_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    if spec["group"] not in GROUPS:
        raise fail(f"group: must be one of {', '.join(GROUPS)}, got '{spec['group']}'{suggest(spec['group'], GROUPS)}")


def type_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    if spec["type"] not in SERVICE_TYPES:
        raise fail(f"type: must be one of {', '.join(SERVICE_TYPES)}, got '{spec['type']}'"
                   f"{suggest(spec['type'], SERVICE_TYPES)}")
    oneshot = spec["type"] == "oneshot"
    if spec["port"] is None and not oneshot:
        raise fail("missing required key 'port'")
    if oneshot and (spec["health"] or any(spec[hook] for hook in HOOKS)):
        raise fail("a oneshot job (type: oneshot) is done when it exits 0: it has no health probe, no pre_stop and "
                   "no post_start; remove them")


def backend_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    own = modes.own_backends()
    if spec["backend"] is not None and spec["backend"] not in own:
        raise fail(f"backend: must be one of {', '.join(own)}, got '{spec['backend']}'{suggest(spec['backend'], own)}")
    runs = modes.of_backend(spec["backend"]).runs if spec["backend"] else None
    if runs == modes.CONTAINERS and spec["managed"]:
        raise fail(f"backend: {spec['backend']} runs it in a container: drop managed: true (that is for a process on "
                   "this host)")
    if runs == modes.PROCESSES and spec["managed"] is False:
        raise fail(f"backend: {spec['backend']} and managed: false contradict each other: pick one")


def command_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    if managed(spec) and not spec["command"]:
        raise fail("a managed service needs a command (an argument list), or set managed: false")
    if spec["command"] is not None and not all(isinstance(a, (str, int, float)) for a in spec["command"]):
        raise fail("command: every argument must be a string")


def env_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    for key, value in spec["env"].items():
        if not isinstance(value, (str, int, float, bool)):
            raise fail(f"env.{key}: expected a string, got {kind_of(value)}")
    if not all(isinstance(f, str) and f for f in listed(spec["env_file"])):
        raise fail("env_file: a path, or a list of paths, of dotenv files")


def depends_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    for dep, kind in spec["depends_on"].items():
        if dep not in specs:
            raise fail(f"depends on unknown service '{dep}'{suggest(str(dep), specs)}")
        if dep == name:
            raise fail("depends on itself")
        if kind not in ("required", "optional"):
            raise fail(f"depends_on.{dep}: must be 'required' or 'optional', got {kind!r}")


def probe_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    """health (a section the loader has checked): its kind, path, statuses and body rules; settled."""
    probe = spec["health"]
    if probe["type"] not in PROBE_KINDS:
        raise fail(f"health.type: must be one of {', '.join(PROBE_KINDS)}, got '{probe['type']}'"
                   f"{suggest(probe['type'], PROBE_KINDS)}")
    if probe["type"] == "http" and not (probe["path"] or "").startswith("/"):
        raise fail("health.path: an http probe needs a path starting with '/'")
    statuses = probe["expect_status"] if isinstance(probe["expect_status"], list) else [probe["expect_status"]]
    if not statuses or not all(isinstance(c, int) and 100 <= c <= 599 for c in statuses):
        raise fail(f"health.expect_status: HTTP status codes (100-599), got {probe['expect_status']!r}")
    if (probe["status_field"] or probe["degraded_if"]) and probe["type"] != "http":
        raise fail("health.status_field and health.degraded_if read an http probe's answer: they go with type: http")
    for field, value in probe["degraded_if"].items():
        if not isinstance(value, (str, int, float, bool)):
            raise fail(f"health.degraded_if.{field}: expected a value the answer may hold (a word, a number, true or "
                       f"false), got {kind_of(value)}")
    spec["health"] = dict(probe, expect_status=tuple(statuses))


def build_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    build = spec["build"]
    if build is None:
        return
    if not build["command"] or not all(isinstance(a, (str, int, float)) for a in build["command"]):
        raise fail("build.command: an argument list of strings")
    if not all(isinstance(g, str) and g for g in build["inputs"]):
        raise fail("build.inputs: a list of file patterns (relative to the service's cwd)")


def hooks_rule(name: str, spec: dict, specs: dict, fail: Fail) -> None:
    for hook in HOOKS:
        if spec[hook] is not None and not spec[hook]["path"].startswith("/"):
            raise fail(f"{hook}.path: must start with '/'")


# Rules about what was written (a key present or absent) run before the loader fills a section's defaults;
# the others see every section filled.
WRITTEN_RULES = (name_rule, group_rule, type_rule)
SERVICE_RULES = (backend_rule, command_rule, env_rule, depends_rule, probe_rule, build_rule, hooks_rule)


def ports_rule(specs: dict, default_host: str, fail: Callable[[str, str], Exception]) -> None:
    """No two services on one address and port (a oneshot job listens on nothing)."""
    seen: dict[tuple[str, int], str] = {}
    for name, spec in specs.items():
        if spec["port"] is None:
            continue
        key = (spec["host"] or default_host, spec["port"])
        if key in seen:
            raise fail(f"service '{name}'", f"port {spec['port']} is already used by service '{seen[key]}'")
        seen[key] = name
