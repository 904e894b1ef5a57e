"""The service registry: config/services.yaml as validated, frozen objects."""

from .loader import default_config_path, load_registry
from .model import Dependency, HealSettings, HealthSettings, Hook, Probe, Registry, Service, Threshold

__all__ = ["Dependency", "HealSettings", "HealthSettings", "Hook", "Probe", "Registry", "Service", "Threshold",
           "default_config_path", "load_registry"]
