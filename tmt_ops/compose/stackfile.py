"""What the compose file declares: its services active under COMPOSE_PROFILES, and which ones build."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import yaml

from ..errors import ConfigError
from ..files import FileProblem, read_regular

MAX_BYTES = 4 * 1024 * 1024  # a compose file is a few KiB; /dev/zero or a log given by mistake is not one


def declared_services(path: Path) -> dict[str, dict]:
    """Every service the compose file declares, whatever its profiles (a service named on compose's command
    line runs even when its profile is not active)."""
    try:
        text = read_regular(path, MAX_BYTES).decode("utf-8")  # never waiting on a FIFO
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise ConfigError(f"compose file {path} not found: pass --compose-file PATH or set project.compose_file "
                          "in the registry") from None
    except FileProblem as exc:
        raise ConfigError(f"compose file {path}: {exc.why}") from None
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:  # ValueError: a date such as 2001-13-45
        raise ConfigError(f"compose file {path}: cannot read it: {str(exc).splitlines()[0]}") from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not services:
        raise ConfigError(f"compose file {path}: it declares no services")
    return {name: spec or {} for name, spec in services.items()}


def active_services(declared: Mapping[str, dict], environ: Mapping[str, str] = os.environ) -> dict[str, dict]:
    """The declared services that a plain `up` starts: no profile, or a profile named in COMPOSE_PROFILES."""
    enabled = {p.strip() for p in environ.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
    return {name: spec for name, spec in declared.items()
            if not spec.get("profiles") or enabled & set(spec["profiles"]) or "*" in enabled}


def built(services: Mapping[str, dict]) -> list[str]:
    """One service per image to build: services that share a build and an image name share one build."""
    chosen: dict[object, str] = {}
    for name, spec in services.items():
        if "build" in spec:
            chosen.setdefault(spec.get("image") or name, name)
    return list(chosen.values())


def pulled(services: Mapping[str, dict]) -> list[str]:
    """Services whose image comes from a registry (no build section): the ones `pull` is for."""
    return [name for name, spec in services.items() if "build" not in spec]
