"""Building the registry's objects from checked sections: a Service from its section (placeholders filled, the
program as its directory's, hooks, probe, build step, definition as written), the health, heal and notify
settings (a mixin of the loader: self.fail, self.section, self.written, self.warnings)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from ..redact import SECRET_NAME, URL_PASSWORD
from . import validate
from .model import (ENDPOINT_MODES, PLACEMENT_ATTRIBUTES, PLACEMENT_LABELS, Build, Dependency, HealSettings,
                    HealthSettings, Hook, NotifySettings, Probe, Service, SwarmSettings, Threshold, freeze, suggest)
from .schema import (BOUNDS, CONSTRAINT, ENV_REF, HEAL_KEYS, HEALTH_KEYS, NOTIFY_KEYS, NUMBER, PLACEHOLDER,
                     PLACEHOLDERS, REQUIRED, SWARM_KEYS, THRESHOLD_DEFAULTS, VARIABLE_REF)


class Builders:
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
            managed=validate.managed(spec), backend=spec["backend"],
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
            env_files=(*(root / f for f in validate.listed(project["env_file"])), *(cwd / f for f in validate.listed(spec["env_file"]))),
            build=Build(_program(tuple(str(a) for a in build["command"]), cwd), cwd, tuple(build["inputs"]),
                        float(build["timeout"] or defaults["compose_timeout"])) if build else None,
            swarm=self.make_swarm(spec["swarm"], where, spec["type"] == "oneshot"))

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
                        f"a {validate.kind_of(item)}"
                    raise self.fail("notify", f"{key}: expected ${{VAR}} references to the environment variables that "
                                              f"hold webhook URLs (e.g. ${{SLACK_WEBHOOK_URL}}), got {shown}")
                names.append(match.group(1))
            found[key] = tuple(names)
        return NotifySettings(**found)


def _names_a_secret(text: str) -> bool:
    """The text expands a ${VAR} whose name looks secret (OANDA_API_KEY, DB_PASSWORD, ...)."""
    return any(m.group(1) and SECRET_NAME.search(m.group(1)) for m in ENV_REF.finditer(text))


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


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
