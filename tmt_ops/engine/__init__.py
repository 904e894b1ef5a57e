"""The Docker engine: which one (endpoint.py) and asking it directly (client.py); shared by the compose and swarm
backends and by system-health."""

from .client import Engine, engine_time, label_filter

__all__ = ["Engine", "engine_time", "label_filter"]
