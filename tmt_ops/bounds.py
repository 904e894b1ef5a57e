"""Every number the toolkit takes, from the registry or the command line, is finite and within a stated bound.

A number without a bound is a way to hang (a timeout of .inf, an interval of 1e400), to crash (NaN passes
every `<= 0` check; a huge integer overflows a float or a timer) or to exhaust the host. Each numeric key or
flag declares a Bound where its other facts live; this module is the one check and the one wording of its
problem: `must be a finite number from 0.1 to 86400 (seconds), got .inf`.
"""

from __future__ import annotations

import argparse
import math

from .data import dataclass


@dataclass(frozen=True)
class Bound:
    least: float
    most: float
    unit: str = ""  # "seconds", "percent", ... shown in the problem; "" for a plain count
    integer: bool = False  # a count: no fraction (the registry's own type check says so for its keys)

    @property
    def text(self) -> str:
        """'a finite number from 0.1 to 86400 (seconds)', 'an integer from 1 to 65535'."""
        kind = "an integer" if self.integer else "a finite number"
        return f"{kind} from {_plain(self.least)} to {_plain(self.most)}" + (f" ({self.unit})" if self.unit else "")

    def problem(self, value: float) -> str | None:
        """None when value is within the bound; else 'must be ..., got VALUE'. NaN fails every comparison."""
        if self.least <= value <= self.most:
            return None
        return f"must be {self.text}, got {shown(value)}"

    def argument(self, text: str) -> float | int:
        """An argparse `type`: the command-line text as a number within the bound (argparse turns the
        ArgumentTypeError into its usage error: one line)."""
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:  # not a number (or an integer of thousands of digits)
            value = None
        if value is None or self.problem(value):
            raise argparse.ArgumentTypeError(f"must be {self.text}, got {_clipped(text)}")
        return value


LONGEST = 24  # characters of a rejected number shown in its problem


def shown(value: float) -> str:
    """A number as the registry's YAML spells it: .inf, -.inf, .nan; otherwise as Python prints it (an
    integer of hundreds of digits as its first ones)."""
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return (".inf" if value > 0 else "-.inf") if math.isinf(value) else f"{value:g}"
    return str(value) if abs(value) < 10 ** LONGEST else f"{str(value)[:LONGEST]}... ({len(str(value))} digits)"


def _plain(limit: float) -> str:
    """A bound as written: 86400, 1099511627776, 0.05 (never 1e+06)."""
    return str(int(limit)) if limit == int(limit) else f"{limit:g}"


def _clipped(text: str) -> str:
    return text if len(text) <= LONGEST else f"{text[:LONGEST]}... ({len(text)} characters)"
