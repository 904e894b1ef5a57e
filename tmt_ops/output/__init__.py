"""Renderers of a health document (tmt_ops.health.document): text, json, nagios, prometheus, health+json. Every renderer
takes the document as plain data and knows nothing of how it was made.
"""

from __future__ import annotations

from typing import Any, Callable

from ..redact import Redactor

FORMATS = ("text", "json", "nagios", "prometheus", "health+json")


def redact_tree(value: Any, redactor: Redactor) -> Any:
    """Every string in a JSON-shaped value passed through the redactor (before rendering, so no format can
    leak a secret that a health body, an error or a command line carried)."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {k: redact_tree(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, redactor) for v in value]
    return value


def renderer(fmt: str) -> Callable[[dict], str]:
    """The plain-text renderer of a format (text without colour), imported only when asked for."""
    if fmt == "json":
        from .jsonout import render
    elif fmt == "nagios":
        from .nagios import render
    elif fmt == "prometheus":
        from .prometheus import render
    elif fmt == "health+json":
        from .healthjson import render
    else:
        from .text import render
    return render
