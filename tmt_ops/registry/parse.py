"""Reading a registry file as YAML that cannot turn against the reader: each key once per mapping, a bounded size
once aliases are expanded (an "alias bomb" is refused at once), a bounded depth; and the text a value written as
one ${VAR} stands for, typed as YAML would type it written there."""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import ConfigError
from .schema import MAX_BYTES, MAX_DEPTH, MERGE_TAG


class YamlChecks:
    """The checks of the parsed node tree, before any object is made of it (a mixin of the loader: self.fail)."""

    def check_nodes(self, root: yaml.Node) -> None:
        """Refuse duplicate keys, and a document that expands past MAX_BYTES or nests deeper than MAX_DEPTH.

        Sizes are of the document as expand() will copy it, each alias in full (a scalar counts its length,
        at least 1; a list or mapping 1 plus its items), memoised per node so that this takes linear time.
        """
        measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, levels of nesting inside)

        def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
            if depth > MAX_DEPTH:  # before recursing: this walk must not exhaust the stack either
                raise self.too_deep(_line(node))
            if id(node) not in measured:
                if isinstance(node, yaml.ScalarNode):
                    size, levels = max(1, len(node.value)), 0
                else:
                    items = node.value
                    if isinstance(node, yaml.MappingNode):
                        self.check_keys(node)
                        items = [n for pair in node.value for n in pair]
                    inside = [measure(item, depth + 1) for item in items]
                    size = 1 + sum(s for s, _ in inside)
                    levels = 1 + max((n for _, n in inside), default=0)
                if size > MAX_BYTES:
                    raise self.fail(_line(node), f"aliases (*name) expand the registry past {MAX_BYTES >> 20} MiB "
                                                 "here, like an alias bomb: write it with fewer aliases, not nested "
                                                 "repeats")
                if depth + levels > MAX_DEPTH:  # an alias used down here brings the levels inside it along
                    raise self.too_deep(_line(node))
                measured[id(node)] = (size, levels)
            return measured[id(node)]

        measure(root, 0)

    def check_keys(self, node: yaml.MappingNode) -> None:
        """A key given twice is an error (PyYAML keeps the last); merged keys (<<) may be overridden."""
        first_line: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
                continue
            same = (key.tag, key.value)
            if same in first_line:
                raise self.fail(_line(key), f"duplicate key '{key.value}' (its first value is on line "
                                            f"{first_line[same]}): remove one")
            first_line[same] = key.start_mark.line + 1

    def too_deep(self, where: str) -> ConfigError:
        return self.fail(where, f"nested more than {MAX_DEPTH} levels deep, far more than any registry: "
                                "check the brackets and indentation")


NUMBERS = re.compile(r"[+-]?(\d+|\d*\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+)")


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _typed(text: str) -> Any:
    """The value of a key written as one ${VAR} reference, typed as YAML would type it written there: a decimal
    integer, a number, true or false; anything else stays text (and the key's type check says what is wrong).
    (Not YAML itself: it reads 0123 as octal.)"""
    if NUMBERS.fullmatch(text.strip()):
        number = float(text)
        return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else number
    return {"true": True, "false": False}.get(text.strip().lower(), text)
