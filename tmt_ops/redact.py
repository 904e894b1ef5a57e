"""Keep secrets out of console output and logs: values of secret-named variables, passwords in URLs."""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

# A webhook URL is a credential of its own (whoever has it posts as the desk): SLACK_WEBHOOK_URL is one.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|WEBHOOK", re.IGNORECASE)
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
        """The environment's secrets, those written into the registry's service env (a Registry), and the webhook
        URLs its notify: section names, whatever their variables are called."""
        webhooks = {os.environ.get(name, "") for name in registry.notify.variables}
        return cls(secret_values(os.environ, *(s.env for s in registry.services.values()))
                   | {url for url in webhooks if len(url) >= MIN_SECRET_LEN})

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
