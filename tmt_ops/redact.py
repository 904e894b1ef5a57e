"""Keep secrets out of console output and logs: values of secret-named variables, passwords in URLs."""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
MASK = "***"
MIN_SECRET_LEN = 4  # shorter values ("1", "true") would mask ordinary words


def secret_values(*environs: Mapping[str, str]) -> set[str]:
    """Values of every secret-named variable, and passwords inside URL values, in these environments."""
    found: set[str] = set()
    for environ in environs:
        for name, value in environ.items():
            if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LEN:
                found.add(value)
            for m in URL_PASSWORD.finditer(value):
                password = m.group(0)[len(m.group("head")):-1]
                if len(password) >= MIN_SECRET_LEN:
                    found.add(password)
    return found


class Redactor:
    """Masks known secret values and any URL password in text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    @classmethod
    def from_environment(cls, *extra: Mapping[str, str]) -> "Redactor":
        return cls(secret_values(os.environ, *extra))

    @classmethod
    def for_registry(cls, registry) -> "Redactor":
        """The environment's secrets and those written into the registry's service env (a Registry)."""
        return cls.from_environment(*(s.env for s in registry.services.values()))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
