"""Keep secrets out of console output and logs: values of secret-named variables, passwords in URLs, and the
secret words of command lines.

Two ways, used together:
- by value (Redactor): every known secret string is masked wherever it appears. Known: the secret-named
  variables of the environment and of the registry's service env, and the secret words of command lines the
  toolkit knows (the registry's commands; the live processes its run records name).
- by rule (mask_argv), for any command line, whatever the environment holds (a stop run from cron, without
  the variable that held the secret, still masks it): the value of an option whose name looks secret
  (`--api-key VALUE`, `--api-key=VALUE`; a one-letter option such as `-p` is not secret by its name),
  `NAME=VALUE` words whose NAME looks secret, URL passwords, and argument positions known to be secret (where
  the registry expanded a secret-named ${VAR}: Service.secret_args, RunRecord.secret_args).
"""

from __future__ import annotations

import os
import re
from typing import Collection, Iterable, Iterator, Mapping, Sequence

# A webhook URL is a credential of its own (whoever has it posts as the desk): SLACK_WEBHOOK_URL is one.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|WEBHOOK", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
MASK = "***"
MIN_SECRET_LEN = 4  # shorter values ("1", "true") would mask ordinary words
OPTION = re.compile(r"-{1,2}[A-Za-z][\w.-]+")  # --api-key, -password; not -p (one letter: not named)
ASSIGNMENT = re.compile(r"(?P<name>-{0,2}[A-Za-z_][\w.-]*)=(?P<value>.+)", re.DOTALL)  # --api-key=V, API_KEY=V


def secret_values(*environs: Mapping[str, str]) -> set[str]:
    """Values of every secret-named variable, and passwords inside URL values, in these environments."""
    found: set[str] = set()
    for environ in environs:
        for name, value in environ.items():
            if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LEN:
                found.add(value)
            found |= _url_passwords(value)
    return found


def _url_passwords(text: str) -> set[str]:
    passwords = {m.group(0)[len(m.group("head")):-1] for m in URL_PASSWORD.finditer(text)}
    return {p for p in passwords if len(p) >= MIN_SECRET_LEN}


def _secret_option(word: str) -> bool:
    """An option named like a secret, whose value is the next word (`--api-key VALUE`)."""
    return OPTION.fullmatch(word) is not None and SECRET_NAME.search(word) is not None


def _secret_assignment(word: str) -> re.Match | None:
    found = ASSIGNMENT.fullmatch(word)
    return found if found is not None and SECRET_NAME.search(found.group("name")) else None


def _masked(argv: Sequence[str], secret_args: Collection[int]) -> Iterator[tuple[str, set[str]]]:
    """Each word masked by the rules (module docstring), with the secret strings it held."""
    for i, word in enumerate(argv):
        assignment = _secret_assignment(word)
        if i in secret_args and URL_PASSWORD.search(word):  # the URL stays readable: only its password goes
            yield URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", word), _url_passwords(word)
        elif i in secret_args or i > 0 and _secret_option(argv[i - 1]) and not word.startswith("-"):
            yield MASK, {word}
        elif assignment is not None:
            yield f"{assignment.group('name')}={MASK}", {assignment.group("value")}
        else:
            yield URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", word), _url_passwords(word)


def mask_argv(argv: Sequence[str], secret_args: Collection[int] = ()) -> list[str]:
    """The command line with its secret words masked, by the rules and at the positions secret_args."""
    return [word for word, _ in _masked(argv, secret_args)]


def command_line(argv: Sequence[str], secret_args: Collection[int] = ()) -> str:
    """mask_argv as one line of text, whatever the arguments hold (a `python -c` script has newlines)."""
    return " ".join(" ".join(mask_argv(argv, secret_args)).split())


def argv_secrets(argv: Sequence[str], secret_args: Collection[int] = ()) -> set[str]:
    """The secret strings of a command line, found by the same rules as mask_argv: for a Redactor, so that
    they are masked wherever else they appear (a wrapper's child may carry them inside one `sh -c` word)."""
    found = set().union(*(secrets for _, secrets in _masked(argv, secret_args)))
    return {s for s in found if len(s) >= MIN_SECRET_LEN}


class Redactor:
    """Masks known secret values and any URL password in text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    @classmethod
    def from_environment(cls, *extra: Mapping[str, str]) -> "Redactor":
        return cls(secret_values(os.environ, *extra))

    @classmethod
    def for_registry(cls, registry, known: Iterable[str] = ()) -> "Redactor":
        """The environment's secrets, those written into the registry's service env and env files, the secret
        words its commands' rules find (`--api-key` written into the registry), the webhook URLs its notify: names
        (whatever their variables are called), and `known` ones (records.secret_words: those of the live
        processes, started with values this environment may no longer hold). Not the whole words at the
        registry's secret positions: what the environment expanded into them is masked as itself, and the rest of
        the word stays readable (`/opt/***/bin/orchestrator`)."""
        from .registry.dotenv import readable_values  # the registry's files: only a registry's Redactor reads them
        commands = set().union(*(argv_secrets(s.command) for s in registry.services.values()))
        env_files = {f for s in registry.services.values() for f in s.env_files}
        webhooks = {os.environ.get(name, "") for name in registry.notify.variables}
        return cls(secret_values(os.environ, *(s.env for s in registry.services.values()),
                                 *(readable_values([f], os.environ) for f in env_files)) | commands | set(known)
                   | {url for url in webhooks if len(url) >= MIN_SECRET_LEN})

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
