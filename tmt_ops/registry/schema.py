"""What a registry may say: every section's keys with their types and defaults, every number's bound, and the
forms of a reference (${VAR}) and a placeholder ({port}). The loader (loader.py), its rules (validate.py) and its
builders (build.py) read these; nothing else states them."""

from __future__ import annotations

import re

from ..bounds import Bound

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
    "env_file": ((str, list), []), "build": (dict, None), "swarm": (dict, None),
}
HEALTH_PROBE_KEYS = {"type": (str, "tcp"), "path": (str, None), "expect_status": ((int, list), 200),
                     "timeout": (NUMBER, None), "status_field": (str, None), "degraded_if": (dict, {})}
BUILD_KEYS = {"command": (list, REQUIRED), "inputs": (list, []), "timeout": (NUMBER, None)}
HOOK_KEYS = {"method": (str, "POST"), "path": (str, REQUIRED), "timeout": (NUMBER, 5)}  # pre_stop, post_start
SWARM_KEYS = {"replicas": (int, None), "placement": (list, []), "endpoint_mode": (str, None)}  # a service's swarm:
CONSTRAINT = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*")  # a placement constraint
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
