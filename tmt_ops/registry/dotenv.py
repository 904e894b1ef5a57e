"""env_file: variables in the dotenv format docker compose reads, the one the TMT services' `.env` files use.

- one `KEY=VALUE` a line (an `export ` before it is allowed); blank lines and lines starting with `#` are skipped;
- a bare `KEY` takes its value from the environment (left out when it is not set there);
- an unquoted value is trimmed, and ends at ` #` (a comment);
- a single-quoted value is taken as it is;
- a double-quoted value may span lines and knows the escapes \\n, \\t, \\" and \\\\;
- in unquoted and double-quoted values `${VAR}`, `${VAR:-default}` and `$VAR` are read from the variables above
  in the same file, else the environment (`$$` is a literal `$`).
A line that is none of these is an error naming the file and the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from ..errors import ConfigError
from ..files import FileProblem, read_regular

LIMIT = 1024 * 1024  # bytes: far more than any .env file
LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:(=)\s*(.*))?$", re.S)
REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def read(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of one env file (ConfigError naming it when it is missing, not a regular file, or not in
    the format)."""
    try:
        text = read_regular(path, LIMIT).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"env_file {path} does not exist (env_file in the registry)") from None
    except (FileProblem, UnicodeDecodeError) as exc:
        raise ConfigError(f"env_file {path}: {exc}") from None
    return parse(text, environ, str(path))


def parse(text: str, environ: Mapping[str, str], where: str = "env_file") -> dict[str, str]:
    found: dict[str, str] = {}
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        number, line = n + 1, lines[n]
        n += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            raise ConfigError(f"{where}, line {number}: expected KEY=VALUE, got {line.strip()[:60]!r}")
        key, assigned, value = match.groups()
        if not assigned:
            if key in environ:
                found[key] = environ[key]
            continue
        if value.startswith("'"):
            end = value.find("'", 1)
            if end < 0:
                raise ConfigError(f"{where}, line {number}: the quote that opens {key}'s value is not closed")
            found[key] = value[1:end]
        elif value.startswith('"'):
            while _closing(value) < 0 and n < len(lines):  # a double-quoted value may go on over lines
                value += "\n" + lines[n]
                n += 1
            end = _closing(value)
            if end < 0:
                raise ConfigError(f"{where}, line {number}: the quote that opens {key}'s value is not closed")
            raw = re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), value[1:end])
            found[key] = _interpolate(raw, found, environ)
        else:
            found[key] = _interpolate(re.split(r"\s+#", value, 1)[0].strip(), found, environ)
    return found


def _closing(value: str) -> int:
    """Where the double quote that closes value[0]'s is, or -1."""
    n = 1
    while n < len(value):
        if value[n] == "\\":
            n += 2
            continue
        if value[n] == '"':
            return n
        n += 1
    return -1


def _interpolate(text: str, found: Mapping[str, str], environ: Mapping[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(3)
        value = found.get(name, environ.get(name))
        return value if value else (m.group(2) or "")
    return REFERENCE.sub(sub, text)


def environment(files, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of a service's env files, in order (a later file's value wins); ConfigError as read()."""
    found: dict[str, str] = {}
    for path in files:
        found.update(read(path, {**environ, **found}))
    return found


def readable_values(files, environ: Mapping[str, str]) -> dict[str, str]:
    """environment(), but what cannot be read is left out (for masking what can be: the preflight says the rest)."""
    found: dict[str, str] = {}
    for path in files:
        try:
            found.update(read(path, {**environ, **found}))
        except ConfigError:
            continue
    return found
