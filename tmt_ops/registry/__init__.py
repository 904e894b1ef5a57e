"""The service registry: config/services.yaml as validated, frozen objects."""

from .loader import default_config_path, load_registry
from .model import Build, Dependency, HealSettings, HealthSettings, Hook, Probe, Registry, Service, Threshold

__all__ = ["Build", "Dependency", "HealSettings", "HealthSettings", "Hook", "Probe", "Registry", "Service", "Threshold",
           "default_config_path", "load_registry"]
