"""JSON: the health document, pretty for one-shot runs, one line per document for streams (monitor)."""

from __future__ import annotations

import json


def render(document: dict, compact: bool = False) -> str:
    if compact:
        return json.dumps(document, separators=(",", ":"), default=str) + "\n"
    return json.dumps(document, indent=2, default=str) + "\n"
