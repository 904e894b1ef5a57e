"""The last definition each native service ran healthy with, kept in the state directory, so that a restart
whose new definition fails (a command that dies at once, a probe that never passes) starts the service again
the way it last ran healthy.

A definition is what the registry writes for it (Service.definition: command, cwd, env), with its ${VAR}
references unexpanded: the environment's values are read again when it is used, so no secret value is kept.
A secret written into the registry itself (a secret-named variable's literal value, a URL password, the value
of a secret-named option) is not kept either: the record says where it was, and a rollback takes it from the
current registry (a rollback that cannot, says so).
"""

from __future__ import annotations

import time
from typing import Any

from .. import statedir
from ..data import dataclass
from ..errors import ConfigError
from ..redact import MIN_SECRET_LEN, SECRET_NAME, URL_PASSWORD
from ..registry import Registry, Service, load_registry
from ..registry.schema import ENV_REF

KIND = "healthy"  # sub-directory of the state directory
MASKED = "***"


def _literal(text: Any) -> str:
    """What of a written value is not a ${VAR} reference (a reference's default is literal text)."""
    return ENV_REF.sub(lambda m: "$" if m.group(1) is None else (m.group(2) or ""), str(text))


def _secret_words(definition: dict) -> list[str]:
    """Where a literal secret is written in a definition: 'env.NAME' or 'command.N'."""
    found = []
    for key, value in (definition.get("env") or {}).items():
        literal = _literal(value)
        if SECRET_NAME.search(str(key)) and len(literal.strip()) >= MIN_SECRET_LEN or URL_PASSWORD.search(literal):
            found.append(f"env.{key}")
    previous = ""
    for n, word in enumerate(definition.get("command") or ()):
        literal = _literal(word)
        name = literal.split("=", 1)[0] if "=" in literal else ""
        if URL_PASSWORD.search(literal) or name and SECRET_NAME.search(name) or \
                previous.startswith("-") and SECRET_NAME.search(previous) and literal.strip():
            found.append(f"command.{n}")
        previous = literal
    return found


def keep(registry: Registry, service: Service) -> str | None:
    """Keep `service`'s definition as its last healthy one (its time: when it first ran healthy with it); a warning
    line when it cannot be written."""
    definition = {key: value for key, value in service.definition.items()}
    secret = _secret_words(definition)
    if secret:
        definition["env"] = dict(definition.get("env") or {})
        definition["command"] = list(definition.get("command") or ())
        for where in secret:
            field, _, key = where.partition(".")
            definition[field][int(key) if field == "command" else key] = MASKED
    try:
        kept = statedir.read(registry.state_dir, KIND, service.name) or {}
        if kept.get("definition") == definition and kept.get("secret") == secret:
            return None  # kept already (since the first healthy run with it): no write, no fsync
        statedir.write(registry.state_dir, KIND, service.name,
                       {"service": service.name, "at": time.time(), "definition": definition, "secret": secret})
    except statedir.StateError as exc:
        return f"{service.name}: cannot keep its healthy definition for a rollback ({exc})"
    return None


@dataclass(frozen=True)
class Kept:
    at: float
    definition: dict  # with the current registry's secrets filled in


def _kept(registry: Registry, service: Service) -> Kept | str | None:
    """The kept definition ready to load, a reason it cannot be used, or None when none is kept."""
    try:
        data = statedir.read(registry.state_dir, KIND, service.name)
    except statedir.StateError as exc:
        return str(exc)
    if data is None:
        return None
    try:
        at = statedir.number(data, "at", statedir.WALL_CLOCK)
        definition, secret = data["definition"], data.get("secret") or []
        if not isinstance(definition, dict) or not isinstance(secret, list):
            raise ValueError("damaged")
        env = definition.get("env")  # none written stays none: the registry's own is then the same definition
        definition = {"command": list(definition.get("command") or []) or None, "cwd": definition.get("cwd"),
                      "env": None if env is None else dict(env)}
        current = service.definition
        for where in secret:
            field, _, key = str(where).partition(".")
            if field == "env" and key in (current.get("env") or {}):
                definition["env"][key] = current["env"][key]
            elif field == "command" and key.isdigit() and int(key) < len(current.get("command") or ()) and \
                    int(key) < len(definition["command"] or ()):
                definition["command"][int(key)] = current["command"][int(key)]
            else:
                return f"its last healthy definition had a secret written at {where}, which the registry no longer has"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "its kept definition is damaged"
    return Kept(at, definition)


def restorable(registry: Registry, services: list[Service]) -> dict[str, tuple[Service, str, bool]]:
    """For each service: (the Service to start it again as it last ran healthy, a note saying which definition
    that is, whether that is the registry's own). Without a usable kept definition it is the registry's own, and
    the note says why."""
    result: dict[str, tuple[Service, str, bool]] = {}
    kept: dict[str, Kept] = {}
    for service in services:
        found = _kept(registry, service)
        if isinstance(found, Kept):
            kept[service.name] = found
        else:
            why = found or "no healthy run of it is on record"
            result[service.name] = (service, f"its registry definition ({why})", True)
    for name, k in kept.items():
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(k.at))
        try:
            rebuilt = load_registry(registry.path, definitions={name: k.definition}).services[name]
        except ConfigError as exc:
            service = registry.service(name)
            result[name] = (service, f"its registry definition (its last healthy one no longer loads: {exc})", True)
            continue
        same = dict(rebuilt.definition) == dict(registry.service(name).definition)
        result[name] = (rebuilt, f"its last healthy definition of {when}" + (", the registry's own" if same else ""),
                        same)
    return {s.name: result[s.name] for s in services}
